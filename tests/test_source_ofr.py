"""OFR Financial Stress Index: the pure parser on the real CSV (by header name, exact decimals,
the eight components), the source against a local aiohttp server on 127.0.0.1 serving that real
file (lookback window, bad rows, bad header, oversized and slow answers, conditional requests,
backfill, revisions), the history import, and how the catalogue schedules and judges the new
series (OFR FSI daily at T+2; the QT caps, step series, never stale)."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from fakes import Site, fixture
from helpers import failures, observations

from watchdog.app import build_sources
from watchdog.daemon.schedule import plan_poll
from watchdog.market.series import FSI_ATTRIBUTES, SERIES, implausible, nominal_publication_text
from watchdog.market.staleness import judge
from watchdog.model.config import Config, OfrConfig, load_config
from watchdog.model.events import OBSERVATION_RECORDED, OBSERVATION_REVISED
from watchdog.model.numbers import norm
from watchdog.sources.history import import_paths, iter_file_events
from watchdog.sources.ofr.live import ENDPOINT, OfrSource, parse_fsi
from watchdog.sources.registry import SOURCE_NAMES
from watchdog.store import MemoryEventStore

REPO = Path(__file__).resolve().parent.parent
CSV_NAME = "ofr/fsi_2000-01-03_2025-09-11.csv"
BODY = fixture(CSV_NAME)
HEADER = ("Date,OFR FSI,Credit,Equity valuation,Safe assets,Funding,Volatility,United States,"
          "Other advanced economies,Emerging markets")
URL = "https://www.financialresearch.gov" + ENDPOINT
# Monday 2025-09-15, 12:00 New York: the file's last row (Thursday 2025-09-11) is public since
# 11:00 (T+2 SIFMA business days).
NOW = datetime(2025, 9, 15, 16, 0, tzinfo=timezone.utc)
WINDOW_START = date(2025, 8, 16)            # NOW's New York date less the default 30 days
ATTRIBUTE_OF = dict(zip(HEADER.split(",")[2:], FSI_ATTRIBUTES))


def file_rows() -> list[dict[str, str]]:
    """The real file read by the csv module, independently of the parser."""
    return list(csv.DictReader(io.StringIO(BODY.decode("utf-8"))))


def parse(body: bytes = BODY, since: date | None = WINDOW_START, fetched_at=NOW, today=None):
    return parse_fsi(body, fetched_at=fetched_at, source_url=URL, since=since, today=today)


def with_rows(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


# ---- the pure parser on the real file ----

def test_the_real_file_parses_into_every_trading_day_exactly():
    parsed = parse(since=None, fetched_at=None, today=date(2025, 9, 15))
    assert parsed.reasons() == [] and parsed.missing_columns == []
    assert len(parsed.events) == 6496
    by_date = {e.payload["date"]: e.payload for e in parsed.events}
    # every value and component equals the file's text as a Decimal
    for row in file_rows():
        payload = by_date[row["Date"]]
        assert payload["value"] == norm(Decimal(row["OFR FSI"]))
        assert payload["attributes"] == {attr: norm(Decimal(row[header]))
                                         for header, attr in ATTRIBUTE_OF.items()}
    assert by_date["2000-01-03"]["value"] == "2.14"
    assert by_date["2000-01-03"]["attributes"]["equity_valuation"] == "-0.051"
    assert by_date["2008-10-10"]["value"] == "29.32"                    # the file's peak
    assert by_date["2020-03-18"]["value"] == "9.486"                    # the dash for cash
    assert by_date["2020-03-18"]["attributes"]["funding"] == "0.233"
    assert by_date["2020-03-18"]["attributes"]["equity_valuation"] == "2.064"
    assert by_date["2022-04-29"]["attributes"]["funding"] == "-0.00009076749291912794"  # e-05
    assert by_date["2022-01-03"]["value"] == "-2.537443708510041"       # full float precision


def test_a_poll_records_the_lookback_window_with_the_funding_component():
    parsed = parse()
    assert parsed.reasons() == []
    dates = [e.payload["date"] for e in parsed.events]
    assert dates[0] == "2025-08-18" and dates[-1] == "2025-09-11" and len(dates) == 19
    last = parsed.events[-1]
    assert last.type == OBSERVATION_RECORDED and last.key == "obs/ofr_fsi/2025-09-11"
    p = last.payload
    assert (p["series"], p["value"], p["unit"], p["source"]) == ("ofr_fsi", "-2.445", "index", "ofr")
    assert p["attributes"] == {"credit": "-1.066", "equity_valuation": "-0.372", "safe_assets": "-0.28",
                               "funding": "-0.154", "volatility": "-0.572", "united_states": "-1.226",
                               "other_advanced": "-0.867", "emerging": "-0.352"}
    assert p["provenance"] == {"url": URL, "raw_value": "-2.445", "raw_unit": "index"}
    # Thursday + 2 SIFMA business days, 11:00 EDT; live, never after the fetch
    assert last.published_at == "2025-09-15T15:00:00.000000Z" == nominal_publication_text("ofr_fsi", date(2025, 9, 11))
    capped = parse(fetched_at=NOW - timedelta(hours=2))
    assert capped.events[-1].published_at == "2025-09-15T14:00:00.000000Z"


def test_columns_are_found_by_name_not_position():
    rows = [line.split(",") for line in BODY.decode().splitlines()]
    order = [5, 9, 1, 3, 2, 8, 7, 6, 4, 0]                  # Date first is not required either
    moved = "\n".join(",".join(row[i] for i in order) for row in rows).encode() + b"\n"
    renamed = moved.replace(b"OFR FSI", b"ofr  fsi", 1)      # case and blanks do not matter
    assert [e.payload for e in parse(renamed).events] == [e.payload for e in parse().events]


def test_an_unknown_column_is_ignored_and_a_missing_component_is_left_out_and_named():
    body = with_rows("2025-09-11,-2.445,-0.154,7", header="Date,OFR FSI,Funding,Brand new")
    parsed = parse(body)
    [event] = parsed.events
    assert event.payload["attributes"] == {"funding": "-0.154"}
    assert parsed.missing_columns == ["Credit", "Equity valuation", "Safe assets", "Volatility",
                                      "United States", "Other advanced economies", "Emerging markets"]


def test_us_dates_are_accepted_and_empty_cells_are_gaps_not_errors():
    body = with_rows("9/10/2025,-2.31,-1.059,-0.361,-0.281,,-0.5,-1.136,-0.828,-0.346",
                     "09/11/2025,,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",
                     "2025-09-12,-2.5,NA,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352")
    parsed = parse(body, today=date(2025, 9, 16))
    assert parsed.reasons() == []
    assert [e.payload["date"] for e in parsed.events] == ["2025-09-10", "2025-09-12"]
    assert "funding" not in parsed.events[0].payload["attributes"]
    assert parsed.events[0].payload["attributes"]["credit"] == "-1.059"
    assert "credit" not in parsed.events[1].payload["attributes"]


def test_malformed_rows_are_named_by_line_and_the_good_rows_kept():
    good = "2025-09-11,-2.445,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352"
    body = with_rows(
        "2025-09-02,abc,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",      # line 2
        "2025-09-03,-2.4,-1.066,-0.372,-0.28,1e999,-0.572,-1.226,-0.867,-0.352",  # line 3
        "2025-13-04,-2.4,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",    # line 4
        "2025-09-05,-2.4,-1.066",                                                    # line 5
        "2025-09-08,1.234.5,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",  # line 6
        "2025-09-09,150,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",     # line 7
        "2025-09-10,-2.3,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",    # line 8
        "2025-09-10,-2.4,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",    # line 9
        "2025-09-16,-2.4,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",    # line 10
        "1999-12-31,-2.4,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352",    # line 11
        good)                                                                        # line 12
    parsed = parse(body, since=None)
    assert [e.payload["date"] for e in parsed.events] == ["2025-09-11"]
    reasons = parsed.bad_rows
    assert len(reasons) == 10
    for line, text in [(2, "OFR FSI: not a decimal number: 'abc'"), (3, "Funding: implausible magnitude"),
                       (4, "Date: not a valid date: '2025-13-04'"), (5, "expected 10 cells like the header, got 3"),
                       (6, "OFR FSI: not a decimal number: '1.234.5'"),
                       (7, "value 150 is above the plausible maximum 100 index"),
                       (8, "given 2 different values in one answer"), (9, "given 2 different values"),
                       (10, "date 2025-09-16 is after 2025-09-15"),
                       (11, "date 1999-12-31 is before ofr_fsi began (2000-01-03)")]:
        assert any(r.startswith(f"line {line} (") and text in r for r in reasons), (line, reasons)


def test_rows_before_the_lookback_are_not_read_past_their_date():
    old_and_bad = "2025-08-01,abc,-1.066,-0.372,-0.28,-0.154,-0.572,-1.226,-0.867,-0.352"
    parsed = parse(with_rows(old_and_bad, "2025-08-04,1,2", "2025-09-11,-2.445,,,,,,,,"))
    assert parsed.bad_rows == [] and [e.payload["value"] for e in parsed.events] == ["-2.445"]
    assert parse(with_rows("08/01/202x,1,,,,,,,,")).bad_rows[0].startswith("line 2 (08/01/202x): Date")


@pytest.mark.parametrize("body, reason", [
    (b"", "empty body"),
    (b"\n\n", "empty body"),
    (b"<!DOCTYPE html><html><body>Maintenance</body></html>\n", "looks like HTML"),
    (b"\xff\xfeD\x00a\x00", "not UTF-8"),
    (with_rows("2025-09-11,-2.445", header="Date,FSI"), "no 'OFR FSI' column"),
    (with_rows("-2.445", header="OFR FSI"), "no 'Date' column"),
    (with_rows("2025-09-11,-2.445,1,2", header="Date,OFR FSI,Funding,funding"), "header names 'funding' more than once"),
    (BODY[:len(BODY) // 2], "truncated"),
    (BODY.rstrip(b"\n"), "does not end with a line end"),
])
def test_a_body_that_is_not_the_fsi_csv_is_one_reason(body, reason):
    parsed = parse(body)
    assert parsed.events == [] and parsed.bad_rows == []
    assert reason in parsed.body_error


# ---- the source against a local server ----

async def source_on(aiohttp_server, routes=None, **options) -> tuple[OfrSource, Site]:
    site = await Site(routes if routes is not None else {ENDPOINT: BODY}).serve(aiohttp_server)
    table = {"base_url": site.base, "retries": 0, "timeout": "5s", **options}
    [source] = build_sources(Config.model_validate({"sources": {"ofr": table}}), {})
    return source, site


async def poll(source, now=NOW):
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


async def test_the_source_polls_the_real_file_and_records_the_lookback_only(aiohttp_server):
    source, site = await source_on(aiohttp_server)
    events = await poll(source)
    assert failures(events) == []
    assert [e.payload["date"] for e in events] == [e.payload["date"] for e in parse().events]
    assert all(e.published_at <= "2025-09-15T16:00:00.000000Z" for e in events)
    assert events[-1].payload["provenance"]["url"] == site.base + ENDPOINT
    assert site.paths() == [ENDPOINT]
    source, _ = await source_on(aiohttp_server, lookback_days=5)
    assert [e.payload["date"] for e in await poll(source)] == ["2025-09-10", "2025-09-11"]


async def test_a_bad_row_is_a_failure_naming_its_line_and_the_others_land(aiohttp_server):
    row = b"\n2025-09-10,-2.31,-1.059,-0.361,-0.281,-0.109,"
    broken = BODY.replace(row, row.replace(b"-2.31", b"minus 2.31"), 1)
    source, site = await source_on(aiohttp_server, {ENDPOINT: broken})
    events = await poll(source)
    assert len(observations(events)) == 18
    [failure] = failures(events)
    assert failure["reason"] == "financial stress index: 1 bad row(s) rejected, 18 recorded"
    assert failure["bad_rows"] == ["line 6496 (2025-09-10): OFR FSI: not a decimal number: 'minus 2.31'"]
    assert failure["recorded_rows"] == 18 and failure["url"] == site.base + ENDPOINT


async def test_a_bad_header_is_one_failure_and_nothing_recorded(aiohttp_server):
    source, _ = await source_on(aiohttp_server, {ENDPOINT: BODY.replace(b"OFR FSI", b"FSI", 1)})
    events = await poll(source)
    assert observations(events) == []
    [failure] = failures(events)
    assert failure["reason"].startswith("financial stress index: bad response body: not the OFR FSI "
                                        "CSV: no 'OFR FSI' column in the header 'Date,FSI,Credit")


async def test_a_renamed_component_records_the_rows_and_says_which_column_is_gone(aiohttp_server):
    source, _ = await source_on(aiohttp_server, {ENDPOINT: BODY.replace(b",Funding,", b",Funding stress,", 1)})
    events = await poll(source)
    assert len(observations(events)) == 19
    assert all("funding" not in e.payload["attributes"] for e in observations(events))
    [failure] = failures(events)
    assert failure["reason"] == ("financial stress index: the header lacks the column(s) 'Funding': "
                                 "19 row(s) recorded without those components")


async def test_an_answer_over_max_body_is_refused_naming_the_cap(aiohttp_server):
    source, _ = await source_on(aiohttp_server, max_body="100kB")      # the real file is 496 kB
    [failure] = failures(await poll(source))
    assert "the 100,000-byte cap" in failure["reason"]
    assert '[sources.ofr] max_body = "100kB"' in failure["reason"]


async def test_a_slow_answer_times_out_as_a_failure(aiohttp_server):
    source, site = await source_on(aiohttp_server, timeout="1s")
    site.misbehave("slow", path=ENDPOINT, seconds=5)
    events = await poll(source)
    assert observations(events) == []
    [failure] = failures(events)
    assert failure["reason"] == "financial stress index: timeout after 1s"
    site.release()


async def test_an_http_error_and_a_refused_connection_are_failures_not_exceptions(aiohttp_server):
    source, site = await source_on(aiohttp_server)
    site.misbehave("status", path=ENDPOINT, status=503, body="Service Unavailable")
    [failure] = failures(await poll(source))
    assert failure["reason"] == "financial stress index: HTTP 503: Service Unavailable"
    broken = OfrSource(OfrConfig(base_url="http://127.0.0.1:9", retries=0, timeout="2s"))
    [failure] = failures(await poll(broken))
    assert failure["url"] == "http://127.0.0.1:9" + ENDPOINT


async def test_an_unchanged_file_is_asked_conditionally_after_a_complete_poll(aiohttp_server):
    asked = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(body=BODY, headers={"ETag": '"v1"'}, content_type="text/csv")

    source, _ = await source_on(aiohttp_server, {ENDPOINT: answer})
    assert len(observations(await poll(source))) == 19
    assert await poll(source) == []                   # 304: nothing new, nothing failed
    assert asked == [None, '"v1"']
    # backfill never asks conditionally
    async with aiohttp.ClientSession() as session:
        assert len(await source.backfill(session, date(2025, 9, 1), NOW)) == 9
    assert asked[-1] is None


async def test_after_a_poll_with_a_bad_row_the_next_asks_for_the_whole_file(aiohttp_server):
    asked = []
    broken = BODY.replace(b"\n2025-09-10,-2.31,", b"\n2025-09-10,x,", 1)

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.headers.get("If-None-Match"))
        return web.Response(body=broken, headers={"ETag": '"v1"'}, content_type="text/csv")

    source, _ = await source_on(aiohttp_server, {ENDPOINT: answer})
    assert failures(await poll(source)) and failures(await poll(source))
    assert asked == [None, None]


async def test_backfill_keeps_nominal_times_and_a_changed_value_is_a_revision(aiohttp_server):
    source, site = await source_on(aiohttp_server)
    async with aiohttp.ClientSession() as session:
        events = await source.backfill(session, date(2025, 1, 1), datetime(2026, 1, 5, tzinfo=timezone.utc))
    assert failures(events) == [] and events[0].payload["date"] == "2025-01-01"  # a holiday row
    assert all(e.published_at == nominal_publication_text("ofr_fsi", date.fromisoformat(e.payload["date"]))
               for e in events)
    store = MemoryEventStore()
    assert len(store.append(await poll(source))) == 19
    assert store.append(await poll(source)) == []         # the same facts again: nothing
    site.routes[ENDPOINT] = BODY.replace(b"\n2025-09-10,-2.31,", b"\n2025-09-10,-2.32,", 1)
    [revised] = store.append(await poll(source))
    assert revised.type == OBSERVATION_REVISED
    assert (revised.payload["value"], revised.payload["previous_value"]) == ("-2.32", "-2.31")


# ---- config, registry, the catalogue's calendar ----

def test_the_table_is_strict_and_the_shipped_config_enables_the_source():
    assert OfrConfig().base_url == "https://www.financialresearch.gov" and OfrConfig().lookback_days == 30
    with pytest.raises(Exception, match="extra"):
        Config.model_validate({"sources": {"ofr": {"url": "https://example.org"}}})
    assert "ofr" in SOURCE_NAMES
    shipped = load_config(str(REPO / "deploy" / "watchdog.toml"))
    assert "ofr" in {source.name for source in build_sources(shipped, {})}


def test_the_fsi_is_polled_at_t_plus_2_and_judged_daily_while_qt_caps_hold_until_changed():
    assert OfrSource.series == ("ofr_fsi",)
    spec = SERIES["ofr_fsi"]
    assert (spec.unit, spec.join, spec.calendar, spec.publish_lag, spec.publish_at) == (
        "index", "market", "sifma", 2, (11, 0))
    plan = plan_poll(OfrSource.series, {"ofr_fsi": date(2025, 9, 11)}, NOW, revision_poll=None)
    assert plan.at == datetime(2025, 9, 16, 15, tzinfo=timezone.utc)   # Friday's row, Tuesday 11:00
    late = plan_poll(OfrSource.series, {"ofr_fsi": date(2025, 9, 10)}, NOW, revision_poll=None)
    assert (late.reason, late.at) == ("late", NOW)                      # Thursday's is due
    fresh = judge("ofr_fsi", ["2025-09-10", "2025-09-11"], NOW)
    # 12:00 EDT: Thursday's row is public since 11:00, due (with the 2 h grace) at 13:00
    assert (fresh.cadence, fresh.due, fresh.stale) == ("daily", date(2025, 9, 10), False)
    assert fresh.judged_by == "sifma calendar, 2h grace"
    stale = judge("ofr_fsi", ["2025-09-10", "2025-09-11"], datetime(2025, 9, 16, 18, tzinfo=timezone.utc))
    assert (stale.due, stale.stale) == (date(2025, 9, 12), True)        # due 11:00, 2 h grace
    for series in ("qt_cap_treasury", "qt_cap_mbs"):
        held = judge(series, ["2025-04-01", "2025-12-01"], datetime(2026, 9, 5, tzinfo=timezone.utc))
        assert (held.cadence, held.stale) == ("administered", None)


def test_the_bands_hold_the_shipped_extremes_and_refuse_the_absurd():
    assert implausible("ofr_fsi", date(2008, 10, 10), Decimal("29.32"), {"funding": "9.582"}) is None
    assert implausible("ofr_fsi", date(2007, 2, 22), Decimal("-5.334")) is None
    assert implausible("ofr_fsi", date(2021, 6, 1), Decimal("-21")) == (
        "value -21 is below the plausible minimum -20 index (at least -20, at most 100 index)")
    assert implausible("ofr_fsi", date(2021, 6, 1), Decimal("1"), {"funding": "101"}) == (
        "funding 101 is above the plausible maximum 100 index (at least -20, at most 100 index)")
    assert implausible("qt_cap_treasury", date(2022, 9, 1), Decimal(60), today=date(2022, 5, 4)) is None
    assert implausible("qt_cap_mbs", date(2025, 12, 1), Decimal(0)) is None
    assert "below the plausible minimum 0" in implausible("qt_cap_mbs", date(2025, 12, 1), Decimal(-1))


# ---- the shipped history ----

def test_the_history_file_imports_6496_days_idempotently():
    path = REPO / "data" / "history" / CSV_NAME
    events = list(iter_file_events(path))
    assert len(events) == 6496
    first, last = events[0], events[-1]
    assert (first.payload["date"], first.payload["value"]) == ("2000-01-03", "2.14")
    assert first.published_at == "2000-01-05T16:00:00.000000Z"          # Monday + 2, 11:00 EST
    assert first.payload["provenance"] == {"file": CSV_NAME, "raw_value": "2.14", "raw_unit": "index"}
    assert (last.payload["date"], last.payload["attributes"]["funding"]) == ("2025-09-11", "-0.154")
    # the same events as the live parser reads from the same bytes (provenance aside)
    live = parse(since=None, fetched_at=None, today=date(2025, 9, 15)).events
    assert [(e.key, e.published_at, e.payload["value"], e.payload["attributes"]) for e in events] == [
        (e.key, e.published_at, e.payload["value"], e.payload["attributes"]) for e in live]
    store = MemoryEventStore()
    assert import_paths(store, [path]) == {str(path): (6496, 6496)}
    assert import_paths(store, [path]) == {str(path): (6496, 0)}
