"""Facts are checked before they are facts (DESIGN "Facts"): a row dated after the fetch's New
York date or before its series began, a value or attribute outside its series' band, percentiles
out of order, or two different values for one date in one answer is refused with a
``source-failed`` naming the row and the bound, and the good rows of the same answer still land.
The engine holds back a fact dated ahead of its time, so a log written before these checks, which
may hold a 2099 row, still fires on a later real spike, live and in replay.

Sources are polled against real local servers on 127.0.0.1 serving the real payloads with
hostile rows added; the daemon is the real one (``app.build_daemon``) on an injected clock."""
from __future__ import annotations

import copy
import dataclasses
import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from watchdog import app
from watchdog.cli import cli
from watchdog.model.config import FiscalDataConfig, FredConfig, NyFedConfig
from watchdog.engine.fold import Engine
from watchdog.model.errors import ImportFailed
from watchdog.model.events import OBSERVATION_RECORDED, SOURCE_FAILED, Observation, new_observation
from watchdog.sources.history import iter_file_events, iter_history_events
from watchdog.tuning.replay import audit, replay
from watchdog.rules.ruleset import load_rules
from watchdog.market.series import SERIES, Band, implausible
from watchdog.sources.fiscaldata.live import FiscalDataSource
from watchdog.sources.fred.live import FredSource
from watchdog.sources.nyfed.rates import NyFedSource
from watchdog.sources.nyfed.operations import NyFedOperationsSource
from watchdog.store import SqliteEventStore, iter_events
from watchdog.model.timefmt import NEW_YORK, parse_utc
from fakes import Clock, FakeFed, refrates_body, serve
from killharness import RULE
from test_daemon import CANARY, write_config

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc)       # 10:00 New York, 2024-06-07


# ---- the contract, as data, and its one check ----

def test_each_series_declares_its_contract_once_as_frozen_data():
    sofr = SERIES["sofr"]
    assert sofr.first_date == date(2018, 4, 3) and sofr.lead_days == 0
    assert sofr.band == Band(Decimal(-1), Decimal(25))
    assert sofr.ordered == ("p1", "p25", "value", "p75", "p99")
    assert SERIES["iorb"].lead_days == 31                       # announced before effective
    assert SERIES["reserves"].band == Band(Decimal(0), Decimal(50000))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sofr.first_date = date(1900, 1, 1)                     # type: ignore[misc]
    assert all(spec.first_date > date(1900, 1, 1) for spec in SERIES.values())


@pytest.mark.parametrize("series, day, value, attributes, today, reason", [
    ("sofr", "2099-01-02", "5.33", {}, date(2024, 6, 7),
     "date 2099-01-02 is after 2024-06-07, the New York date it became known"),
    ("sofr", "2024-06-05", "99999", {}, None,
     "value 99999 is above the plausible maximum 25 % (at least -1, at most 25 %)"),
    ("sofr", "2024-06-05", "-7.5", {}, None,
     "value -7.5 is below the plausible minimum -1 % (at least -1, at most 25 %)"),
    ("sofr", "2024-06-05", "5.33", {"p99": "1E+25"}, None,
     "p99 1.000000E+25 is above the plausible maximum 50 % (at least -5, at most 50 %)"),
    ("sofr", "2024-06-05", "5.33", {"volume": "-1912"}, None,
     "volume -1912 is not above the plausible minimum 0 USD bn (more than 0, at most 50000 USD bn)"),
    ("sofr", "2024-06-05", "5.33", {"volume": "0"}, None,
     "volume 0 is not above the plausible minimum 0 USD bn (more than 0, at most 50000 USD bn)"),
    ("sofr", "2024-06-05", "5.33", {"p25": "5.32", "p75": "5.31"}, None,
     "value 5.33 is above p75 5.31: out of order (must be p1 <= p25 <= value <= p75 <= p99)"),
    ("sofr", "2017-12-29", "1.5", {}, None, "date 2017-12-29 is before sofr began (2018-04-03)"),
    ("iorb", "2024-08-01", "5.4", {}, date(2024, 6, 7),
     "date 2024-08-01 is after 2024-06-07 by more than 31 days, the New York date it became known"),
    ("onrrp", "2024-06-05", "-3", {}, None,
     "value -3 is below the plausible minimum 0 USD bn (at least 0, at most 50000 USD bn)"),
    ("onrrp", "2024-06-05", "400", {"mmf": "-1"}, None,
     "mmf -1 is below the plausible minimum 0 USD bn (at least 0, at most 50000 USD bn)"),
])
def test_implausible_names_the_field_its_value_and_the_broken_bound(series, day, value, attributes,
                                                                    today, reason):
    assert implausible(series, date.fromisoformat(day), Decimal(value), attributes,
                       today=today) == reason


def test_edges_are_inside_and_an_administered_rate_may_be_announced_ahead():
    assert implausible("sofr", date(2024, 6, 7), Decimal(25), {"p99": "50", "p1": "-5"},
                       today=date(2024, 6, 7)) is None
    assert implausible("effr", date(2024, 6, 6), Decimal(-1), {"volume": "0.001"}) is None
    assert implausible("onrrp", date(2019, 11, 25), Decimal(0)) is None      # unused: a fact
    assert implausible("iorb", date(2024, 6, 8), Decimal("5.4"), today=date(2024, 6, 7)) is None
    assert implausible("sofr", date(2024, 6, 8), Decimal("5.4"), today=date(2024, 6, 7)) is not None


def _new_york_date(utc: str) -> date:
    return parse_utc(utc).astimezone(NEW_YORK).date()


def test_every_fact_of_the_shipped_history_is_plausible_when_it_was_known():
    """The bands were chosen so that no shipped fact is refused: each one passes, judged on the
    New York date it was published (the store caps published_at at recorded_at)."""
    conn = sqlite3.connect(f"file:{REPO / 'events.db.example'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT payload, published_at FROM events "
                            "WHERE type LIKE 'observation-%'").fetchall()
    finally:
        conn.close()
    assert len(rows) > 20000
    refused = []
    for text, published in rows:
        p = json.loads(text)
        reason = implausible(p["series"], date.fromisoformat(p["date"]), Decimal(p["value"]),
                             p.get("attributes") or {}, today=_new_york_date(published))
        if reason:
            refused.append((p["series"], p["date"], reason))
    assert refused == []


def test_shipped_history_files_pass_the_importers_contract():
    # the day the example log is recorded at (Makefile EXAMPLE_RECORDED_AT): the FOMC rows
    # effective 2026-09-17 are within an administered rate's lead
    checked = sum(1 for _ in iter_history_events(REPO / "data" / "history", today=date(2026, 9, 5)))
    assert checked == sum(1 for _ in iter_history_events(REPO / "data" / "history"))


# ---- NY Fed reference rates: a hostile answer against a local server ----

def sofr_fixture_rows() -> list[dict]:
    return json.loads((FIXTURES / "nyfed/sofr_search_2024-06-01_2024-06-06.json").read_bytes(),
                      parse_float=str, parse_int=str)["refRates"]


def hostile_sofr_answer() -> bytes:
    rows = sofr_fixture_rows()                      # 2024-06-06 .. 2024-06-03, newest first
    day = rows[0]

    def like(date_text: str, **changes) -> dict:
        return {**day, "effectiveDate": date_text, **changes}
    rows += [
        like("2099-01-02"),                                         # row 5: from the future
        like("2024-05-31", percentRate="99999"),                    # row 6
        like("2024-05-30", percentRate="-7.5"),                     # row 7
        like("2024-05-29", percentPercentile99="1E+25"),            # row 8
        like("2024-05-28", volumeInBillions="-1912"),               # row 9
        {**rows[1], "percentRate": "5.31"},                         # row 10: 2024-06-05 again
    ]
    return refrates_body(rows)


async def poll_into(store: SqliteEventStore, source, now: datetime) -> None:
    async with aiohttp.ClientSession() as session:
        store.append(await source.poll(session, now))


def logged(store: SqliteEventStore, kind: str) -> list[dict]:
    return [e.payload for e in iter_events(store) if e.type == kind]


async def test_a_nyfed_answer_with_hostile_rows_records_the_good_rows_and_names_each_refusal(
        aiohttp_server, tmp_path):
    base, _ = await serve(aiohttp_server, {"/api/rates/secured/sofr/search.json": hostile_sofr_answer()})
    store = SqliteEventStore(tmp_path / "events.db", now=lambda: NOW)
    await poll_into(store, NyFedSource(NyFedConfig(base_url=base, rates=["sofr"])), NOW)
    assert [(p["date"], p["value"]) for p in logged(store, OBSERVATION_RECORDED)] == [
        ("2024-06-03", "5.35"), ("2024-06-04", "5.33"), ("2024-06-06", "5.33")]
    [failure] = logged(store, SOURCE_FAILED)
    assert failure["source"] == "nyfed" and failure["recorded_rows"] == 3
    assert failure["reason"] == "sofr search: 7 bad row(s) rejected, 3 recorded"
    bound = "(at least -1, at most 25 %)"
    assert failure["bad_rows"] == [
        "row 2 (SOFR 2024-06-05): sofr 2024-06-05 given 2 different values in one answer: "
        "this row value 5.33, row 10 (SOFR 2024-06-05) value 5.31: both refused",
        "row 5 (SOFR 2099-01-02): date 2099-01-02 is after 2024-06-07, the New York date it "
        "became known",
        f"row 6 (SOFR 2024-05-31): value 99999 is above the plausible maximum 25 % {bound}",
        f"row 7 (SOFR 2024-05-30): value -7.5 is below the plausible minimum -1 % {bound}",
        "row 8 (SOFR 2024-05-29): p99 1.000000E+25 is above the plausible maximum 50 % "
        "(at least -5, at most 50 %)",
        "row 9 (SOFR 2024-05-28): volume -1912 is not above the plausible minimum 0 USD bn "
        "(more than 0, at most 50000 USD bn)",
        "row 10 (SOFR 2024-06-05): sofr 2024-06-05 given 2 different values in one answer: "
        "this row value 5.31, row 2 (SOFR 2024-06-05) value 5.33: both refused"]
    store.close()


async def test_the_same_row_twice_in_one_answer_is_one_fact_not_a_conflict(aiohttp_server):
    rows = sofr_fixture_rows()
    base, _ = await serve(aiohttp_server, {"/api/rates/secured/sofr/search.json":
                                        refrates_body(rows + [dict(rows[1])])})
    async with aiohttp.ClientSession() as session:
        events = await NyFedSource(NyFedConfig(base_url=base, rates=["sofr"])).poll(session, NOW)
    assert [e.type for e in events] == [OBSERVATION_RECORDED] * 4


async def test_a_backfill_refuses_rows_dated_after_the_fetch_too(aiohttp_server):
    base, _ = await serve(aiohttp_server, {"/api/rates/secured/sofr/search.json": hostile_sofr_answer()})
    async with aiohttp.ClientSession() as session:
        events = await NyFedSource(NyFedConfig(base_url=base, rates=["sofr"])).backfill(
            session, date(2024, 6, 1), NOW)
    assert not [e for e in events if e.type == OBSERVATION_RECORDED and e.payload["date"] > "2024-06-07"]
    assert any("2099-01-02 is after 2024-06-07" in row
               for e in events if e.type == SOURCE_FAILED for row in e.payload["bad_rows"])


# ---- the other sources ----

async def test_fred_refuses_a_future_row_an_absurd_rate_and_a_date_given_twice(aiohttp_server,
                                                                               tmp_path):
    body = (b"observation_date,SOFR\n2024-06-03,5.35\n2024-06-04,5.33\n2024-06-04,5.34\n"
            b"2024-06-05,-7.5\n2024-06-06,5.33\n2099-01-02,5.33\n")
    base, _ = await serve(aiohttp_server, {"/graph/fredgraph.csv": body})
    store = SqliteEventStore(tmp_path / "events.db", now=lambda: NOW)
    source = FredSource(FredConfig(base_url=base, csv_base_url=base, series={"sofr": "SOFR"},
                                   retries=0), env={})
    await poll_into(store, source, NOW)
    assert [p["date"] for p in logged(store, OBSERVATION_RECORDED)] == ["2024-06-03", "2024-06-06"]
    [failure] = logged(store, SOURCE_FAILED)
    assert failure["bad_rows"] == [
        "line 3 (SOFR 2024-06-04): sofr 2024-06-04 given 2 different values in one answer: "
        "this row value 5.33, line 4 (SOFR 2024-06-04) value 5.34: both refused",
        "line 4 (SOFR 2024-06-04): sofr 2024-06-04 given 2 different values in one answer: "
        "this row value 5.34, line 3 (SOFR 2024-06-04) value 5.33: both refused",
        "line 5 (SOFR 2024-06-05): value -7.5 is below the plausible minimum -1 % "
        "(at least -1, at most 25 %)",
        "line 7 (SOFR 2099-01-02): date 2099-01-02 is after 2024-06-07, the New York date it "
        "became known"]
    store.close()


async def test_fiscal_data_refuses_a_negative_balance_and_a_statement_from_the_future(
        aiohttp_server, tmp_path):
    page = json.loads((FIXTURES / "fiscaldata/operating_cash_balance_2025-07-07_2025-07-11.json")
                      .read_bytes())
    closing = "Treasury General Account (TGA) Closing Balance"
    for row in page["data"]:
        if row["record_date"] == "2025-07-08" and row["account_type"] == closing:
            row["open_today_bal"] = "-5000"
    page["data"] += [{**row, "record_date": "2099-07-10"} for row in copy.deepcopy(page["data"])
                     if row["record_date"] == "2025-07-11"]
    path = "/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance"
    base, _ = await serve(aiohttp_server, {path: json.dumps(page).encode()})
    store = SqliteEventStore(tmp_path / "events.db", now=lambda: NOW)
    monday = datetime(2025, 7, 14, 14, 0, tzinfo=timezone.utc)
    await poll_into(store, FiscalDataSource(FiscalDataConfig(base_url=base, retries=0)), monday)
    assert [p["date"] for p in logged(store, OBSERVATION_RECORDED)] == [
        "2025-07-07", "2025-07-09", "2025-07-10", "2025-07-11"]
    [failure] = logged(store, SOURCE_FAILED)
    assert failure["bad_rows"] == [
        "2025-07-08: value -5 is below the plausible minimum 0 USD bn (at least 0, at most 50000 USD bn)",
        "2099-07-10: date 2099-07-10 is after 2025-07-14, the New York date it became known"]
    store.close()


async def test_nyfed_operations_refuse_an_operation_dated_in_the_future(aiohttp_server, tmp_path):
    data = json.loads((FIXTURES / "nyfed/rp_all_all_results_last_500.json").read_bytes())
    operations = data["repo"]["operations"]
    latest = operations[0]                        # RP 042123 1, ON RRP of 2023-04-21
    operations.insert(0, {**latest, "operationId": "RP 042199 1", "operationDate": "2099-04-21",
                          "lastUpdated": "2099-04-21 13:15:49"})
    base, _ = await serve(aiohttp_server, {"/api/rp/results/search.json": json.dumps(data).encode()})
    store = SqliteEventStore(tmp_path / "events.db", now=lambda: NOW)
    now = datetime(2023, 4, 21, 18, 0, tzinfo=timezone.utc)
    await poll_into(store, NyFedOperationsSource(NyFedConfig(base_url=base, retries=0,
                                                             operations=True)), now)
    recorded = {(p["series"], p["date"]) for p in logged(store, OBSERVATION_RECORDED)}
    assert ("onrrp", "2023-04-21") in recorded and ("onrrp", "2099-04-21") not in recorded
    [failure] = logged(store, SOURCE_FAILED)
    assert failure["bad_rows"] == [
        "onrrp 2099-04-21 (RP 042199 1): date 2099-04-21 is after 2023-04-21, the New York date "
        "it became known"]
    store.close()


# ---- history files: the same contract ----

def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("row, reason", [
    ('{"effectiveDate": "2099-01-02", "type": "SOFR", "percentRate": 5.33}',
     "sofr 2099-01-02: date 2099-01-02 is after 2026-09-05, the New York date it became known"),
    ('{"effectiveDate": "2024-06-05", "type": "SOFR", "percentRate": 99999}',
     "sofr 2024-06-05: value 99999 is above the plausible maximum 25 %"),
    ('{"effectiveDate": "2024-06-05", "type": "SOFR", "percentRate": 5.33, '
     '"percentPercentile25": 5.4, "percentPercentile75": 5.35}',
     "sofr 2024-06-05: p25 5.4 is above value 5.33: out of order"),
    ('{"effectiveDate": "2015-06-05", "type": "SOFR", "percentRate": 0.1}',
     "sofr 2015-06-05: date 2015-06-05 is before sofr began (2018-04-03)"),
])
def test_an_implausible_history_row_is_refused_naming_file_line_and_bound(tmp_path, row, reason):
    path = _write(tmp_path, "sofr_rate_percentiles_x.json",
                  '{"refRates": [\n{"effectiveDate": "2024-06-04", "type": "SOFR", "percentRate": 5.33},\n'
                  f'{row}\n]}}\n')
    with pytest.raises(ImportFailed) as caught:
        list(iter_file_events(path, today=date(2026, 9, 5)))
    assert str(caught.value).startswith(f"{path}:3: {reason}"), str(caught.value)


def test_watchdog_import_refuses_a_row_dated_after_today_in_one_line(tmp_path):
    path = _write(tmp_path, "SOFR.csv", "observation_date,SOFR\n2024-06-04,5.33\n2099-01-02,5.33\n")
    result = CliRunner().invoke(cli, ["import", "--db", str(tmp_path / "events.db"), str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: sofr 2099-01-02: date 2099-01-02 is after " in result.output
    assert "Traceback" not in result.output


# ---- the engine: a log written before these checks ----

SPIKE_RULES = RULE          # sofr-over-iorb above 10 bp, recovering below 5 (killharness)


def fact(series: str, day: str, value: str, published: str, source: str = "nyfed"):
    obs = Observation(series=series, date=day, value=value, unit="%", source=source)
    return new_observation(obs, published)


def old_log(path: Path) -> SqliteEventStore:
    """What the daemon recorded before the sources refused future rows: a 2099 SOFR row offered
    with 2024-06-03's answer became a fact (published_at capped at its fetch), then real days,
    the last one a 42 bp spike."""
    clock = Clock(datetime(2024, 6, 4, 14, 0, tzinfo=timezone.utc))
    store = SqliteEventStore(path, now=clock)
    store.append([fact("iorb", "2024-06-01", "5.4", "2024-06-01T04:00:00.000000Z", "fred"),
                  fact("sofr", "2024-06-03", "5.33", "2024-06-04T12:00:00.000000Z"),
                  fact("sofr", "2099-01-02", "5.33", "2024-06-04T14:00:00.000000Z")])
    for day, value, published in (("2024-06-04", "5.33", "2024-06-05T12:00:00.000000Z"),
                                  ("2024-06-05", "5.34", "2024-06-06T12:00:00.000000Z"),
                                  ("2024-06-06", "5.82", "2024-06-07T12:00:00.000000Z")):
        clock.set(parse_utc(published) + timedelta(hours=2))        # polled at 10:00 New York
        store.append([fact("sofr", day, value, published)])
    return store


def test_a_logged_2099_fact_does_not_freeze_the_rule_in_replay_or_the_live_fold(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(SPIKE_RULES)
    ruleset = load_rules([str(rules)])
    store = old_log(tmp_path / "events.db")
    replayed = [(t.state, t.date, t.value) for t in replay(store, ruleset)]
    assert replayed == [("firing", "2024-06-06", "42")]
    engine = Engine(ruleset)                      # the daemon's and audit's fold: seq order
    live = []
    for event in iter_events(store):
        live += engine.tick(event.recorded_at) + engine.feed(event, now=event.recorded_at)
    assert [(t.state, t.date, t.value) for t in live] == replayed
    assert [e.payload["date"] for _, _, e in engine.held] == ["2099-01-02"]     # kept, not evaluated
    assert "2099-01-02" not in engine.data.dates["sofr"]
    store.close()


def test_a_fact_dated_a_day_early_is_evaluated_once_engine_time_reaches_its_date(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(SPIKE_RULES)
    engine = Engine(load_rules([str(rules)]))
    store = SqliteEventStore(tmp_path / "events.db", now=lambda: NOW)
    rows = store.append([
        fact("iorb", "2024-06-01", "5.4", "2024-06-01T04:00:00.000000Z", "fred"),
        fact("sofr", "2024-06-04", "5.33", "2024-06-05T12:00:00.000000Z"),
        # a buggy feed dated the 06-06 spike a day early: known 2024-06-05 10:00 New York
        fact("sofr", "2024-06-06", "5.82", "2024-06-05T14:00:00.000000Z"),
        fact("sofr", "2024-06-05", "5.34", "2024-06-06T12:00:00.000000Z")])
    out = {}
    for row in rows[:3]:
        out[row.key] = engine.apply(row, now=row.published_at)
    assert out["obs/sofr/2024-06-06"] == [] and [e.seq for _, _, e in engine.held] == [3]
    assert engine.data.dates["sofr"] == ["2024-06-04"]           # held back: not data yet
    out[rows[3].key] = engine.apply(rows[3], now=rows[3].published_at)
    # the next fact is applied at 2024-06-06 08:00 New York: the held 06-06, whose date engine
    # time has now reached, goes with it in date order -- 06-05, then 06-06: nothing passed over
    moved = out["obs/sofr/2024-06-05"]
    assert [(t.state, t.date, t.value, t.cause_seq) for t in moved] == [("firing", "2024-06-06", "42", 3)]
    assert engine.held == [] and engine.states["sofr-over-iorb"].last_date == "2024-06-06"
    store.close()


# ---- the real daemon ----

FUTURE_ROW = "2099-01-02"       # the fake NY Fed offers a SOFR row of this date in every answer


async def run_once(config_path: Path, clock: Clock) -> None:
    daemon = app.build_daemon(app.resolve_config(str(config_path)), env={"FRED_TEST_KEY": CANARY},
                              now=clock, http=False)
    await daemon.run_once()


def alerts(store: SqliteEventStore) -> list[tuple[str, str, str]]:
    return [(e.payload["rule"], e.payload["state"], e.payload["date"]) for e in iter_events(store)
            if e.type in ("alert-firing", "alert-resolved")]


async def test_a_later_real_spike_fires_after_a_future_dated_row_was_offered(aiohttp_server,
                                                                             tmp_path):
    fed = FakeFed(sofr={"2024-06-03": "5.33", "2024-06-04": "5.33", FUTURE_ROW: "5.33"},
                  iorb={"2024-06-01": "5.40"})
    server = await aiohttp_server(fed.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))   # for = "2bd"
    db = tmp_path / "events.db"
    clock = Clock(datetime(2024, 6, 5, 14, 0, tzinfo=timezone.utc))
    await run_once(config_path, clock)
    fed.sofr.update({"2024-06-05": "5.75", "2024-06-06": "5.75"})             # 35 bp, two days
    clock.set(datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc))
    await run_once(config_path, clock)

    store = SqliteEventStore(db, readonly=True)
    try:
        assert [p["date"] for p in logged(store, OBSERVATION_RECORDED) if p["series"] == "sofr"] == [
            "2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]
        refusals = [row for p in logged(store, SOURCE_FAILED) for row in p["bad_rows"]]
        assert refusals == [
            "row 1 (SOFR 2099-01-02): date 2099-01-02 is after 2024-06-05, the New York date it "
            "became known",
            "row 1 (SOFR 2099-01-02): date 2099-01-02 is after 2024-06-07, the New York date it "
            "became known"]
        assert_the_spike_fired_once(store, tmp_path / "rules")
    finally:
        store.close()


def assert_the_spike_fired_once(store, rules) -> None:
    """Live, audit and replay agree: the 2024-06-06 spike fired, once."""
    assert alerts(store) == [("sofr-over-iorb", "firing", "2024-06-06")]
    assert audit(store).differences == []
    assert [(t.state, t.date) for t in replay(store, load_rules([str(rules)]))
            if t.state != "pending"] == [("firing", "2024-06-06")]


async def test_the_daemon_on_a_log_already_holding_a_2099_fact_still_fires(aiohttp_server, tmp_path):
    db = tmp_path / "events.db"
    store = SqliteEventStore(db, now=lambda: datetime(2024, 6, 4, 14, 0, tzinfo=timezone.utc))
    store.append([fact("iorb", "2024-06-01", "5.4", "2024-06-01T04:00:00.000000Z", "fred"),
                  fact("sofr", "2024-06-03", "5.33", "2024-06-04T12:00:00.000000Z"),
                  fact("sofr", "2099-01-02", "5.33", "2024-06-04T14:00:00.000000Z")])
    store.close()
    fed = FakeFed(sofr={"2024-06-03": "5.33", "2024-06-04": "5.33", "2024-06-05": "5.75",
                        "2024-06-06": "5.75", FUTURE_ROW: "5.33"}, iorb={"2024-06-01": "5.40"})
    server = await aiohttp_server(fed.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    await run_once(config_path, Clock(datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc)))

    store = SqliteEventStore(db, readonly=True)
    try:
        assert_the_spike_fired_once(store, tmp_path / "rules")
    finally:
        store.close()
