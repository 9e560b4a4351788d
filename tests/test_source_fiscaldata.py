"""Treasury Fiscal Data (DTS operating cash balance -> `tga`): the pure parser on the real page
and on pages built from copies of its rows for the two older schema eras, and the source
against a local aiohttp server on 127.0.0.1 (pagination, HTTP failures, retries, timeouts)."""
from __future__ import annotations

import asyncio
import copy
import json
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.model.config import FiscalDataConfig
from watchdog.model.events import OBSERVATION_RECORDED, SOURCE_FAILED, NewEvent, canonical_json
from watchdog.sources.fiscaldata.live import ENDPOINT, FiscalDataSource, parse_operating_cash_balance
from fakes import serve as serve_routes

FIXTURES = Path(__file__).parent / "fixtures" / "fiscaldata"
PAGE = "operating_cash_balance_2025-07-07_2025-07-11.json"
URL = ("https://api.fiscaldata.treasury.gov" + ENDPOINT
       + "?filter=record_date:gte:2025-07-07&sort=record_date")
NOW = datetime(2025, 7, 16, 18, 0, tzinfo=timezone.utc)


def fixture() -> dict:
    return json.loads((FIXTURES / PAGE).read_bytes())


def body_of(data: dict) -> bytes:
    return json.dumps(data).encode()


def parse(body: bytes, fetched_at=None):
    return parse_operating_cash_balance(body, fetched_at=fetched_at, source_url=URL)


def values(events: list[NewEvent]) -> dict[str, str]:
    return {e.payload["date"]: e.payload["value"] for e in events}


def real_row(**changes) -> dict:
    """A copy of a real row (2025-07-07, TGA Opening Balance) with some fields changed."""
    row = copy.deepcopy(fixture()["data"][0])
    row.update(changes)
    return row


def page_of(rows: list[dict]) -> bytes:
    data = fixture()
    data["data"] = rows
    data["meta"]["count"] = data["meta"]["total-count"] = len(rows)
    return body_of(data)


# ---- the pure parser ----

def test_real_page_gives_each_days_closing_balance_in_billions_published_t_plus_1_at_16_et():
    parsed = parse((FIXTURES / PAGE).read_bytes())
    assert parsed.bad_rows == [] and parsed.body_error is None
    assert values(parsed.events) == {
        "2025-07-07": "332.482", "2025-07-08": "343.047", "2025-07-09": "311.048",
        "2025-07-10": "288.395", "2025-07-11": "282.363"}
    monday = parsed.events[0]
    assert monday.key == "obs/tga/2025-07-07"
    assert monday.published_at == "2025-07-08T20:00:00.000000Z"           # 16:00 EDT on T+1
    assert parsed.events[-1].published_at == "2025-07-14T20:00:00.000000Z"  # Friday -> Monday
    assert monday.payload == {
        "series": "tga", "date": "2025-07-07", "value": "332.482", "unit": "USD bn",
        "source": "fiscaldata", "attributes": {},
        "provenance": {"url": URL, "raw_value": "332482", "raw_unit": "millions of dollars",
                       "account_type": "Treasury General Account (TGA) Closing Balance",
                       "field": "open_today_bal"}}


def test_closing_balance_is_the_next_days_opening_balance():
    # Why open_today_bal of the closing row is the close: it is where the next day opens, and
    # it equals opening + deposits - withdrawals (313162 + 38702 - 19382 = 332482).
    rows = fixture()["data"]
    opening = {r["record_date"]: r["open_today_bal"] for r in rows
               if r["account_type"] == "Treasury General Account (TGA) Opening Balance"}
    closing = values(parse((FIXTURES / PAGE).read_bytes()).events)
    days = sorted(closing)
    for day, next_day in zip(days, days[1:]):
        assert Decimal(closing[day]) * 1000 == Decimal(opening[next_day]), day


def test_live_publication_time_is_capped_at_the_fetch():
    fetched = datetime(2025, 7, 8, 19, 0, tzinfo=timezone.utc)  # 15:00 ET, before the nominal
    events = parse((FIXTURES / PAGE).read_bytes(), fetched_at=fetched).events
    assert events[0].published_at == "2025-07-08T19:00:00.000000Z"


def test_each_schema_era_yields_its_closing_balance():
    # Real balances from the website export: 2021-09-30 opened at 173745 and 2021-10-01 opened
    # at 215160; 2022-04-15 opened at 602292 and 2022-04-18 opened at 578473, closed 841253.
    type_of_account = {"sub_table_name": "Type of account", "src_line_nbr": "1"}
    rows = [
        real_row(record_date="2021-09-30", account_type="Federal Reserve Account",
                 open_today_bal="173745", close_today_bal="215160", **type_of_account),
        real_row(record_date="2021-09-30", account_type="Supplementary Financing Program Account",
                 open_today_bal="0", close_today_bal="0"),
        real_row(record_date="2022-04-15", account_type="Treasury General Account (TGA)",
                 open_today_bal="602292", close_today_bal="578473", **type_of_account),
        real_row(record_date="2022-04-15", account_type="Short-Term Cash Investments (Table V)",
                 open_today_bal="0", close_today_bal="0"),
        real_row(record_date="2022-04-18", open_today_bal="578473"),
        real_row(record_date="2022-04-18", account_type="Total TGA Deposits (Table II)",
                 open_today_bal="284332"),
        real_row(record_date="2022-04-18",
                 account_type="Treasury General Account (TGA) Closing Balance",
                 open_today_bal="841253"),
    ]
    parsed = parse(page_of(rows))
    assert parsed.bad_rows == []
    assert values(parsed.events) == {"2021-09-30": "215.16", "2022-04-15": "578.473",
                                     "2022-04-18": "841.253"}
    fields = [e.payload["provenance"]["field"] for e in parsed.events]
    assert fields == ["close_today_bal", "close_today_bal", "open_today_bal"]


def test_mixed_good_and_bad_rows_record_the_good_days_and_name_the_bad():
    data = fixture()
    data["data"][3]["open_today_bal"] = "33x482"                  # 2025-07-07 closing row
    data["data"][7]["account_type"] = "TGA Closing Balance (renamed)"  # 2025-07-08
    data["data"][9]["record_date"] = "07/09/2025"                 # a 2025-07-09 deposits row
    # A second, unreadable closing row puts 2025-07-10 in doubt: it is not recorded.
    data["data"].append(real_row(record_date="2025-07-10", close_today_bal="null",
                                 account_type="Treasury General Account (TGA) Closing Balance",
                                 open_today_bal="null"))
    data["data"].append(real_row(record_date="2025-07-11", open_today_bal="1",
                                 account_type="Treasury General Account (TGA) Closing Balance"))
    parsed = parse(body_of(data))
    assert values(parsed.events) == {"2025-07-09": "311.048"}
    assert parsed.bad_rows == [
        "row 4 (2025-07-07): open_today_bal: not a number: '33x482'",
        "row 10 (07/09/2025): record_date: not a date (YYYY-MM-DD): '07/09/2025'",
        "row 21 (2025-07-10): open_today_bal and close_today_bal: null, so no closing balance",
        "2025-07-08: no TGA closing balance among the account types: "
        "'Treasury General Account (TGA) Opening Balance', 'Total TGA Deposits (Table II)', "
        "'Total TGA Withdrawals (Table II) (-)', 'TGA Closing Balance (renamed)'",
        "2025-07-11: conflicting closing balances: "
        "'Treasury General Account (TGA) Closing Balance' 282363, "
        "'Treasury General Account (TGA) Closing Balance' 1",
    ]


def test_an_old_era_row_with_a_null_close_is_named_not_read_from_the_opening():
    rows = [real_row(record_date="2021-09-30", account_type="Federal Reserve Account",
                     open_today_bal="173745", close_today_bal="null")]
    parsed = parse(page_of(rows))
    assert parsed.events == []
    assert parsed.bad_rows == ["row 1 (2021-09-30): close_today_bal: null, so no closing balance"]


def test_a_filled_close_on_the_new_closing_row_must_agree_with_the_opening_field():
    agree = real_row(account_type="Treasury General Account (TGA) Closing Balance",
                     open_today_bal="332482", close_today_bal="332482")
    differ = dict(agree, record_date="2025-07-08", close_today_bal="1")
    parsed = parse(page_of([agree, differ]))
    assert values(parsed.events) == {"2025-07-07": "332.482"}
    assert parsed.bad_rows == ["row 2 (2025-07-08): conflicting closing balances: "
                               "open_today_bal='332482', close_today_bal='1'"]


@pytest.mark.parametrize("mangle, reason", [
    (lambda d: [r.update(acct_type=r.pop("account_type")) for r in d["data"]],
     "no row has the field 'account_type' (row fields: 'record_date', 'close_today_bal', "
     "'open_today_bal', 'open_month_bal', 'open_fiscal_year_bal', 'table_nbr', 'table_nm', "
     "'sub_table_name', 'src_line_nbr', 'record_fiscal_year', 'record_fiscal_quarter', "
     "'record_calendar_year', 'record_calendar_quarter', 'record_calendar_month', "
     "'record_calendar_day', 'acct_type')"),
    (lambda d: d.update(rows=d.pop("data")),
     "no 'data' field in the JSON object (top-level fields: 'meta', 'links', 'rows')"),
    (lambda d: d["meta"]["dataFormats"].update(open_today_bal="$1,000"),
     "open_today_bal is given in '$1,000', expected millions ('$1,000,000'): "
     "refusing to guess the unit"),
    (lambda d: d["meta"].pop("total-pages"),
     "meta.total-pages is 'None', not a page count: cannot tell whether more pages follow"),
    (lambda d: d.pop("meta"),
     "no 'meta' object (got a JSON null): cannot tell how many pages there are"),
])
def test_a_changed_envelope_is_one_reason_not_a_reason_per_row(mangle, reason):
    data = fixture()
    mangle(data)
    parsed = parse(body_of(data))
    assert (parsed.events, parsed.body_error) == ([], reason)


@pytest.mark.parametrize("body, reason", [
    (b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>",
     "not JSON: the body looks like HTML/XML, starting "
     "'<html><head><title>503 Service Temporarily Unavailable</titl'"),
    ((FIXTURES / PAGE).read_bytes()[:1000],
     "not JSON: truncated after 1000 characters (Unterminated string starting at)"),
    (b"", "empty body where JSON was expected"),
])
def test_html_truncated_or_empty_bodies_are_one_reason(body, reason):
    parsed = parse(body)
    assert (parsed.events, parsed.body_error) == ([], reason)


# ---- the source against a local server ----

def paginating(rows: list[dict], seen: list[dict], fail_page: int | None = None):
    """A Fiscal Data stand-in that pages ``rows`` as the real API does (links are fragments)."""
    async def handler(request):
        seen.append(dict(request.query))
        number, size = int(request.query["page[number]"]), int(request.query["page[size]"])
        if number == fail_page:
            return web.Response(status=500, text="Internal Server Error")
        data = fixture()
        data["data"] = rows[(number - 1) * size: number * size]
        pages = math.ceil(len(rows) / size)
        data["meta"].update({"count": len(data["data"]), "total-count": len(rows),
                             "total-pages": pages})
        data["links"]["self"] = f"&page%5Bnumber%5D={number}&page%5Bsize%5D={size}"
        return web.Response(body=body_of(data), content_type="application/json")
    return handler


async def serve(aiohttp_server, handler) -> str:
    """The shared local site answering the endpoint with ``handler``: its URL."""
    base, _ = await serve_routes(aiohttp_server, {ENDPOINT: handler})
    return base


def config(base: str, **kw) -> FiscalDataConfig:
    return FiscalDataConfig(base_url=base, **{"retries": 0, **kw})


async def run(source: FiscalDataSource, now: datetime = NOW, since: date | None = None):
    async with aiohttp.ClientSession() as session:
        if since is None:
            return await source.poll(session, now)
        return await source.backfill(session, since, now)


def failures(events):
    return [e.payload for e in events if e.type == SOURCE_FAILED]


def observations(events):
    return [e for e in events if e.type == OBSERVATION_RECORDED]


async def test_poll_asks_the_lookback_window_sorted_and_follows_every_page(aiohttp_server):
    seen: list[dict] = []
    base = await serve(aiohttp_server, paginating(fixture()["data"], seen))
    events = await run(FiscalDataSource(config(base, page_size=10, lookback_days=9)))
    assert failures(events) == []
    assert seen == [{"filter": "record_date:gte:2025-07-07", "sort": "record_date",
                     "page[number]": str(n), "page[size]": "10"} for n in (1, 2)]
    # 2025-07-09's four rows straddle the two pages and still make one observation.
    assert values(observations(events)) == {
        "2025-07-07": "332.482", "2025-07-08": "343.047", "2025-07-09": "311.048",
        "2025-07-10": "288.395", "2025-07-11": "282.363"}
    urls = {e.payload["date"]: e.payload["provenance"]["url"] for e in observations(events)}
    assert "page%5Bnumber%5D=2" in urls["2025-07-11"]


async def test_a_failing_later_page_keeps_only_the_days_read_in_full(aiohttp_server):
    seen: list[dict] = []
    base = await serve(aiohttp_server, paginating(fixture()["data"], seen, fail_page=2))
    events = await run(FiscalDataSource(config(base, page_size=10)))
    [failure] = failures(events)
    assert failure["reason"] == "operating cash balance page 2: HTTP 500: Internal Server Error"
    assert "page%5Bnumber%5D=2" in failure["url"]
    # Page 1 ends half-way through 2025-07-09: that day waits for the next poll.
    assert values(observations(events)) == {"2025-07-07": "332.482", "2025-07-08": "343.047"}


async def test_backfill_starts_at_since_and_keeps_nominal_publication_times(aiohttp_server):
    seen: list[dict] = []
    base = await serve(aiohttp_server, paginating(fixture()["data"], seen))
    later = datetime(2026, 1, 5, tzinfo=timezone.utc)
    events = await run(FiscalDataSource(config(base)), later, since=date(2021, 6, 1))
    assert seen[0]["filter"] == "record_date:gte:2021-06-01" and len(seen) == 1
    assert observations(events)[0].published_at == "2025-07-08T20:00:00.000000Z"


async def test_429_with_retry_after_is_waited_out_then_the_page_is_read(aiohttp_server):
    seen: list[dict] = []
    pages = paginating(fixture()["data"], seen)
    busy = [web.Response(status=429, text="slow down", headers={"Retry-After": "1"})]

    async def handler(request):
        return busy.pop() if busy else await pages(request)

    waits: list[float] = []

    async def sleep(seconds):
        waits.append(seconds)

    base = await serve(aiohttp_server, handler)
    events = await run(FiscalDataSource(config(base, retries=1), sleep=sleep))
    assert failures(events) == [] and len(observations(events)) == 5
    assert waits == [1.0]


async def test_http_500_and_timeout_are_failure_events(aiohttp_server):
    async def broken(request):
        return web.Response(status=500, text="Internal Server Error")
    base = await serve(aiohttp_server, broken)
    [failure] = failures(await run(FiscalDataSource(config(base))))
    assert failure["reason"] == "operating cash balance page 1: HTTP 500: Internal Server Error"

    release = asyncio.Event()

    async def slow(request):
        try:
            await asyncio.wait_for(release.wait(), 10)
        except asyncio.TimeoutError:
            pass
        return web.Response(body=(FIXTURES / PAGE).read_bytes())
    base = await serve(aiohttp_server, slow)
    try:
        events = await run(FiscalDataSource(config(base, timeout="1s")))
    finally:
        release.set()
    assert observations(events) == []
    assert [f["reason"] for f in failures(events)] == [
        "operating cash balance page 1: timeout after 1s"]


async def test_html_page_served_with_200_is_a_bad_body_failure(aiohttp_server):
    async def html(request):
        return web.Response(text="<!DOCTYPE html><html><title>Maintenance</title></html>",
                            content_type="text/html")
    base = await serve(aiohttp_server, html)
    [failure] = failures(await run(FiscalDataSource(config(base))))
    assert failure["reason"] == (
        "operating cash balance page 1: bad response body: not JSON: the body looks like "
        "HTML/XML, starting '<!DOCTYPE html><html><title>Maintenance</title></html>'")


async def test_mixed_rows_from_the_server_record_the_good_and_name_the_bad(aiohttp_server):
    rows = fixture()["data"]
    rows[3]["open_today_bal"] = "--"
    base = await serve(aiohttp_server, paginating(rows, []))
    events = await run(FiscalDataSource(config(base)))
    [failure] = failures(events)
    assert failure["bad_rows"] == ["row 4 (2025-07-07): open_today_bal: not a number: '--'"]
    assert failure["recorded_rows"] == len(observations(events)) == 4


# ---- fuzzing: no body makes the parser raise, and whatever it records can be hashed ----

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
leaves = (st.none() | st.booleans() | st.integers() | st.text(max_size=10)
          | st.sampled_from(["null", "", "2025-07-07", "9999-12-31", "1E+999999", "\ud800",
                             "Treasury General Account (TGA) Closing Balance",
                             "Federal Reserve Account", "$1,000"]))
json_like = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)
dts_rows = st.lists(st.dictionaries(
    st.sampled_from(["record_date", "account_type", "open_today_bal", "close_today_bal"]),
    leaves), max_size=8)


def assert_hashable(parsed) -> None:
    for event in parsed.events:
        canonical_json(event.payload).encode("utf-8")
    for reason in parsed.reasons():
        reason.encode("utf-8")


@FUZZ
@given(body=st.binary(max_size=300))
def test_fuzz_parser_never_raises_on_arbitrary_bytes(body):
    assert_hashable(parse(body, fetched_at=NOW))


@FUZZ
@given(document=json_like, rows=dts_rows, meta=json_like)
def test_fuzz_parser_never_raises_on_json_like_structures(document, rows, meta):
    for data in (document, {"data": rows, "meta": meta}, {"data": rows, "meta": {
            "total-pages": 1, "dataFormats": meta}}):
        assert_hashable(parse(json.dumps(data).encode()))


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_parser_never_raises_on_csv_text(text):
    header = "Record Date,Type of Account,Opening Balance Today\n"
    assert_hashable(parse(("\ufeff" + header + text).encode("utf-8", "surrogatepass")))
