"""events.db.example is the real shipped history, rebuilt deterministically from data/history."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from watchdog.importer import import_paths
from watchdog.store import SqliteEventStore, verify_file

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "events.db.example"


def test_example_log_verifies_and_is_rebuilt_to_the_same_chain_head(tmp_path):
    seq, head = verify_file(EXAMPLE)
    fixed = datetime(2026, 9, 5, tzinfo=timezone.utc)        # Makefile EXAMPLE_RECORDED_AT
    store = SqliteEventStore(tmp_path / "rebuilt.db", now=lambda: fixed)
    import_paths(store, [REPO / "data" / "history"])
    assert store.head() == (seq, head)
    store.close()


def test_example_log_holds_the_spot_values_in_normalised_units():
    conn = sqlite3.connect(f"file:{EXAMPLE}?mode=ro", uri=True)

    def value(series, date):
        row = conn.execute("SELECT json_extract(payload, '$.value'), published_at FROM events "
                           "WHERE key = ?", (f"obs/{series}/{date}",)).fetchone()
        return row
    assert value("sofr", "2019-09-17") == ("5.25", "2019-09-18T12:00:00.000000Z")
    assert value("effr", "2019-09-17")[0] == "2.3"
    assert value("iorb", "2019-09-19") == ("1.8", "2019-09-18T18:00:00.000000Z")
    assert value("sofr", "2025-10-31")[0] == "4.22"
    conn.close()
