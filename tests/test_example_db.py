"""events.db.example is the real shipped history, rebuilt deterministically from data/history."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from watchdog.sources.history import import_paths
from watchdog.store import SqliteEventStore, verify_file

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "events.db.example"
# The head of the example log shipped before the balance-sheet, TGA, macro and speech files were
# added: new files are appended to the registry, so that log is a prefix of this one.
EARLIER_HEAD = (14741, "0f7177a041cd925bf827f2d4f78012b99905cd0a13cc763a0d73fa60c666b075")


@pytest.fixture(scope="module")
def conn():
    conn = sqlite3.connect(f"file:{EXAMPLE}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_example_log_verifies_and_is_rebuilt_to_the_same_chain_head(tmp_path):
    seq, head = verify_file(EXAMPLE)
    fixed = datetime(2026, 9, 5, tzinfo=timezone.utc)        # Makefile EXAMPLE_RECORDED_AT
    store = SqliteEventStore(tmp_path / "rebuilt.db", now=lambda: fixed)
    import_paths(store, [REPO / "data" / "history"])
    assert store.head() == (seq, head)
    # Importing the same files again adds nothing.
    counts = import_paths(store, [REPO / "data" / "history"])
    assert [added for _, added in counts.values()] == [0]
    assert store.head() == (seq, head)
    store.close()


def test_the_earlier_example_log_is_a_prefix_of_this_one(conn):
    seq, digest = EARLIER_HEAD
    assert conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone() == (digest,)
    assert verify_file(EXAMPLE, head_hash=digest)[0] > seq


def test_example_log_holds_the_spot_values_in_normalised_units(conn):
    def value(series, date):
        return conn.execute("SELECT json_extract(payload, '$.value'), published_at FROM events "
                            "WHERE key = ?", (f"obs/{series}/{date}",)).fetchone()
    assert value("sofr", "2019-09-17") == ("5.25", "2019-09-18T12:00:00.000000Z")
    assert value("effr", "2019-09-17")[0] == "2.3"
    assert value("iorb", "2019-09-19") == ("1.8", "2019-09-18T18:00:00.000000Z")
    assert value("sofr", "2025-10-31")[0] == "4.22"
    assert value("reserves", "2019-09-18") == ("1394.122", "2019-09-19T20:30:00.000000Z")
    assert value("onrrp", "2025-10-31") == ("51.802", "2025-10-31T17:15:00.000000Z")
    assert value("tga", "2025-10-31") == ("926.328", "2025-11-03T21:00:00.000000Z")
    assert value("tga", "2025-10-30")[0] == "1000.632"
    assert value("gdp", "2019-04-01") == ("21337.898", "2019-07-26T12:30:00.000000Z")  # first print


EXPECTED_SERIES = {"sofr", "tgcr", "bgcr", "effr", "obfr", "iorb", "fftarget_upper", "fftarget_lower",
                   "onrrp", "reserves", "fed_assets", "tga", "m2", "gdp"}


def test_example_log_holds_every_imported_series_and_the_speeches(conn):
    counts = dict(conn.execute(
        "SELECT json_extract(payload, '$.series'), count(*) FROM events "
        "WHERE type = 'observation-recorded' GROUP BY 1").fetchall())
    assert EXPECTED_SERIES <= set(counts)
    assert set(counts) == EXPECTED_SERIES | {"onrrp_rate", "srf_rate", "tga_weekly_avg",
                                             "ofr_fsi", "qt_cap_treasury", "qt_cap_mbs"}
    assert conn.execute("SELECT count(*) FROM events WHERE type = 'observation-revised'").fetchone() == (0,)
    speeches = dict(conn.execute(
        "SELECT json_extract(payload, '$.institution'), count(*) FROM events "
        "WHERE type = 'speech-recorded' GROUP BY 1").fetchall())
    assert speeches == {"Board of Governors": 444, "New York Fed": 79}
    # The log holds facts only, each published no later than the log learned it.
    assert conn.execute("SELECT count(*) FROM events WHERE published_at > recorded_at").fetchone() == (0,)
    assert {t for (t,) in conn.execute("SELECT DISTINCT type FROM events")} == {
        "observation-recorded", "speech-recorded"}


def test_example_log_has_obfr_from_the_nyfed_export(conn):
    row = conn.execute("SELECT json_extract(payload, '$.value'), json_extract(payload, '$.attributes.p99'), "
                       "published_at FROM events WHERE key = 'obs/obfr/2026-08-03'").fetchone()
    count = conn.execute("SELECT count(*) FROM events WHERE key LIKE 'obs/obfr/%'").fetchone()[0]
    assert row == ("3.63", "3.69", "2026-08-04T13:00:00.000000Z") and count == 148


def test_every_firing_and_resolved_transition_of_the_example_replay_names_its_inputs():
    """DESIGN: every non-flagged transition names its inputs — threshold rules their series,
    staleness rules the series' last value, composites their member rules."""
    from watchdog.tuning.replay import replay
    from watchdog.rules.ruleset import load_rules
    store = SqliteEventStore(Path(__file__).resolve().parent.parent / "events.db.example", readonly=True)
    try:
        moved = [t for t in replay(store, load_rules([str(Path(__file__).resolve().parent.parent / "rules")]))
                 if t.state in ("firing", "resolved")]
    finally:
        store.close()
    assert len(moved) > 150
    assert [(t.rule, t.state, t.date) for t in moved if not t.inputs] == []
    kinds = {t.rule: set(t.inputs) for t in moved}
    assert kinds["effr-stale"] == {"effr"} and kinds["funding-stress"] >= {"sofr-over-iorb"}
