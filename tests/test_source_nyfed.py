"""NY Fed reference rates: the pure parser on the real payloads, and the source against a local
aiohttp server on 127.0.0.1 serving those payloads (and the ways a real server fails)."""
from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from watchdog.model.config import NyFedConfig
from watchdog.model.events import OBSERVATION_RECORDED, NewEvent, canonical_json
from watchdog.sources.nyfed.rates import NyFedSource, parse_reference_rates
from fakes import serve
from helpers import by_key, failures, observations

FIXTURES = Path(__file__).parent / "fixtures" / "nyfed"
SOFR = "sofr_search_2024-06-01_2024-06-06.json"
EFFR = "effr_search_2023-01-01_2023-06-06.json"
OBFR = "obfr_search_2024-06-01_2024-06-06.json"
ALL_LATEST = "rates_all_latest_2023-04-17.json"
URL = "https://markets.newyorkfed.org/api/rates/secured/sofr/search.json"

# 2024-06-07 14:00 UTC = 10:00 New York: after SOFR (08:00 ET) and EFFR (09:00 ET) publication.
NOW = datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(body: bytes, fetched_at: datetime | None = None):
    return parse_reference_rates(body, fetched_at=fetched_at, source_url=URL)


def sofr_rows() -> list[dict]:
    """The real SOFR rows as text-preserving dicts (numbers kept as their JSON text)."""
    return json.loads(fixture(SOFR), parse_float=str, parse_int=str)["refRates"]


def body_of(rows: list[dict]) -> bytes:
    """Write rows back as the API does: numeric text becomes a JSON number again, so the
    parser sees real numbers and only deliberately broken values stay strings."""
    text = json.dumps({"refRates": rows})
    return re.sub(r'"(-?\d+(?:\.\d+)?)"', r"\1", text).encode()


# ---- the parser on real payloads ----

def test_sofr_search_gives_one_observation_per_day_with_exact_values():
    events, reasons = parse(fixture(SOFR))
    assert reasons == []
    assert sorted(e.payload["date"] for e in events) == [
        "2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]
    day = by_key(events)["obs/sofr/2024-06-03"].payload
    assert day["series"] == "sofr" and day["source"] == "nyfed" and day["unit"] == "%"
    assert day["value"] == "5.35"
    assert day["attributes"] == {"p1": "5.29", "p25": "5.32", "p75": "5.4", "p99": "5.44",
                                 "volume": "1912"}


def test_provenance_keeps_the_raw_text_and_the_url_while_the_value_is_normalised():
    events, _ = parse(fixture(SOFR))
    day = by_key(events)["obs/sofr/2024-06-06"].payload
    assert day["attributes"]["p75"] == "5.4"
    assert day["provenance"] == {"url": URL, "raw_value": "5.33", "raw_unit": "percent",
                                 "revision_indicator": ""}


def test_effr_rows_carry_the_target_range_and_good_friday_is_an_effr_business_day():
    events, reasons = parse(fixture(EFFR))
    assert reasons == []
    day = by_key(events)["obs/effr/2023-06-06"].payload
    assert day["value"] == "5.08"
    assert day["attributes"] == {"p1": "5.05", "p25": "5.06", "p75": "5.08", "p99": "5.3",
                                 "volume": "144", "target_from": "5", "target_to": "5.25"}
    # EFFR follows the Fed calendar: Good Friday 2023-04-07 is published on Monday at 09:00 ET.
    good_friday = by_key(events)["obs/effr/2023-04-07"]
    assert good_friday.published_at == "2023-04-10T13:00:00.000000Z"


def test_obfr_search_is_parsed_without_target_attributes():
    events, reasons = parse(fixture(OBFR))
    assert reasons == []
    day = by_key(events)["obs/obfr/2024-06-06"].payload
    assert day["value"] == "5.32" and day["attributes"]["volume"] == "285"
    assert "target_from" not in day["attributes"]


def test_all_latest_keys_each_row_on_its_own_date_and_skips_sofrai():
    events, reasons = parse(fixture(ALL_LATEST))
    assert reasons == []  # SOFRAI has no percentRate: skipped silently, not a bad row
    assert sorted(by_key(events)) == [
        "obs/bgcr/2023-04-14", "obs/effr/2023-04-14", "obs/obfr/2023-04-14",
        "obs/sofr/2023-04-14", "obs/tgcr/2023-04-14"]
    assert by_key(events)["obs/sofr/2023-04-14"].payload["value"] == "4.8"
    assert by_key(events)["obs/tgcr/2023-04-14"].payload["attributes"]["volume"] == "516"


def test_published_at_is_the_nominal_publication_time_for_history():
    events, _ = parse(fixture(SOFR), fetched_at=None)
    assert by_key(events)["obs/sofr/2024-06-06"].published_at == "2024-06-07T12:00:00.000000Z"
    # Friday's SOFR is published on Monday.
    latest, _ = parse(fixture(ALL_LATEST))
    assert by_key(latest)["obs/sofr/2023-04-14"].published_at == "2023-04-17T12:00:00.000000Z"
    assert by_key(latest)["obs/effr/2023-04-14"].published_at == "2023-04-17T13:00:00.000000Z"


def test_published_at_is_capped_at_the_fetch_time_when_fetched_before_the_nominal_time():
    early = datetime(2024, 6, 7, 11, 30, 15, 250000, tzinfo=timezone.utc)  # 07:30 ET
    events, _ = parse(fixture(SOFR), fetched_at=early)
    keyed = by_key(events)
    assert keyed["obs/sofr/2024-06-06"].published_at == "2024-06-07T11:30:15.250000Z"
    # Older days were already public at their nominal time: not moved.
    assert keyed["obs/sofr/2024-06-05"].published_at == "2024-06-06T12:00:00.000000Z"


def test_events_are_valid_canonical_json_with_no_floats():
    events, _ = parse(fixture(EFFR))
    for event in events:
        text = canonical_json(event.payload)
        assert json.loads(text) == event.payload
        assert all(isinstance(v, str) for v in event.payload["attributes"].values())


# ---- the parser on broken payloads ----

def test_html_error_page_is_one_reason_and_no_events():
    body = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>"
    events, reasons = parse(body)
    assert events == []
    assert len(reasons) == 1
    assert reasons[0].startswith("not JSON: the body looks like HTML/XML")
    assert "502 Bad Gateway" in reasons[0]


def test_truncated_json_is_reported_as_truncated():
    body = fixture(SOFR)[:300]
    events, reasons = parse(body)
    assert events == []
    assert reasons == ["not JSON: truncated after 300 characters (Unterminated string starting at)"]
    # Cut between values rather than inside a string: still called truncated.
    cut = fixture(SOFR)[:fixture(SOFR).index(b"}") + 1]
    assert parse(cut)[1] == [f"not JSON: truncated after {len(cut)} characters "
                             "(Expecting ',' delimiter)"]


def test_renamed_top_level_field_is_named_in_the_reason():
    body = fixture(SOFR).replace(b'"refRates"', b'"referenceRates"')
    events, reasons = parse(body)
    assert events == []
    assert reasons == ["no 'refRates' field in the JSON object (top-level fields: "
                       "'referenceRates')"]


@pytest.mark.parametrize("body, reason", [
    (b"", "empty body where JSON was expected"),
    (b"[]", "expected a JSON object with 'refRates', got a JSON array"),
    (b'{"refRates": {"type": "SOFR"}}', "'refRates' is a JSON object, expected an array"),
    (b'not json at all', "not JSON: Expecting value (line 1, column 1)"),
])
def test_a_body_that_is_not_the_envelope_gives_one_precise_reason(body, reason):
    assert parse(body) == ([], [reason])


def test_an_empty_result_is_no_events_and_no_error():
    # A search window over a long weekend legitimately returns no rows.
    assert parse(b'{"refRates": []}') == ([], [])


def test_bad_row_is_named_and_good_rows_are_still_recorded():
    rows = sofr_rows()                        # newest first: 06-06, 06-05, 06-04, 06-03
    del rows[0]["effectiveDate"]              # row 1: no date
    rows[1]["percentRate"] = "abc"            # row 2: not a number
    del rows[2]["percentRate"]                # row 3: missing rate
    rows.append({"effectiveDate": "2024-06-07", "type": "SOFRAI", "index": "1.1"})
    rows.append({"effectiveDate": "2024-06-07", "type": "NEWRATE", "percentRate": "1"})
    rows.append({"effectiveDate": "2024-13-01", "type": "TGCR", "percentRate": "5.3"})
    rows.append({"effectiveDate": "2024-06-06", "type": "BGCR", "percentRate": "5.31",
                 "percentPercentile99": "n.a.x"})
    rows.append("SOFR 5.33")
    events, reasons = parse(body_of(rows))
    assert [e.key for e in events] == ["obs/sofr/2024-06-03"]
    assert events[0].payload["value"] == "5.35"
    assert reasons == [
        "row 1 (SOFR ?): effectiveDate: missing",
        "row 2 (SOFR 2024-06-05): percentRate: not a number: 'abc'",
        "row 3 (SOFR 2024-06-04): percentRate: missing",
        "row 7 (TGCR 2024-13-01): effectiveDate: not a date (YYYY-MM-DD): '2024-13-01'",
        "row 8 (BGCR 2024-06-06): percentPercentile99: not a number: 'n.a.x'",
        "row 9 (?): expected a JSON object, got a JSON string",
    ]


def test_missing_percentiles_are_omitted_not_errors():
    rows = [{"effectiveDate": "2024-06-06", "type": "SOFR", "percentRate": "5.33",
             "percentPercentile1": None, "revisionIndicator": "R"}]
    events, reasons = parse(body_of(rows))
    assert reasons == []
    assert events[0].payload["attributes"] == {}
    assert events[0].payload["provenance"]["revision_indicator"] == "R"


# ---- the source against a local server ----

def config(base_url: str, **kw) -> NyFedConfig:
    return NyFedConfig(base_url=base_url, **{"retries": 0, **kw})   # retries: test_source_base


SOFR_PATH = "/api/rates/secured/sofr/search.json"
EFFR_PATH = "/api/rates/unsecured/effr/search.json"
OBFR_PATH = "/api/rates/unsecured/obfr/search.json"


async def poll(source: NyFedSource, now: datetime = NOW) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


async def test_poll_searches_each_configured_rate_over_the_lookback_window(aiohttp_server):
    base, seen = await serve(aiohttp_server, {SOFR_PATH: fixture(SOFR), OBFR_PATH: fixture(OBFR)})
    source = NyFedSource(config(base, rates=["sofr", "obfr"], lookback_days=6))
    events = await poll(source)
    assert failures(events) == []
    assert len(observations(events)) == 8
    assert sorted(r.path for r in seen) == [SOFR_PATH, OBFR_PATH]
    for request in seen:
        # New York date of NOW is 2024-06-07; six days back.
        assert dict(request.query) == {"startDate": "2024-06-01", "endDate": "2024-06-07"}
    sofr = by_key(events)["obs/sofr/2024-06-06"]
    assert sofr.published_at == "2024-06-07T12:00:00.000000Z"
    assert sofr.payload["provenance"]["url"] == (
        f"{base}{SOFR_PATH}?startDate=2024-06-01&endDate=2024-06-07")


async def test_poll_window_uses_the_new_york_date_not_the_utc_date(aiohttp_server):
    base, seen = await serve(aiohttp_server, {SOFR_PATH: b'{"refRates": []}'})
    late_evening_ny = datetime(2024, 6, 8, 2, 0, tzinfo=timezone.utc)  # 22:00 ET on 06-07
    events = await poll(NyFedSource(config(base, rates=["sofr"], lookback_days=1)),
                        late_evening_ny)
    assert events == []
    assert dict(seen[0].query) == {"startDate": "2024-06-06", "endDate": "2024-06-07"}


async def test_poll_caps_published_at_at_the_fetch_clock(aiohttp_server):
    base, _ = await serve(aiohttp_server, {SOFR_PATH: fixture(SOFR)})
    fetched = datetime(2024, 6, 7, 11, 0, 0, 5, tzinfo=timezone.utc)
    source = NyFedSource(config(base, rates=["sofr"]), clock_now=lambda: fetched)
    events = await poll(source, datetime(2024, 6, 7, 10, 59, tzinfo=timezone.utc))
    assert by_key(events)["obs/sofr/2024-06-06"].published_at == "2024-06-07T11:00:00.000005Z"


async def test_http_500_becomes_a_source_failed_event(aiohttp_server):
    async def broken(request):
        return web.Response(status=500, text="Internal Server Error")
    base, _ = await serve(aiohttp_server, {SOFR_PATH: broken})
    events = await poll(NyFedSource(config(base, rates=["sofr"])))
    [failure] = failures(events)
    assert failure["source"] == "nyfed"
    assert failure["reason"] == "sofr: HTTP 500: Internal Server Error"
    assert failure["url"].startswith(f"{base}{SOFR_PATH}?startDate=")
    assert observations(events) == []


async def test_timeout_becomes_a_source_failed_event(aiohttp_server):
    release = asyncio.Event()

    async def slow(request):
        # Holds the response until the test is done (bounded so the server always stops).
        try:
            await asyncio.wait_for(release.wait(), 10)
        except asyncio.TimeoutError:
            pass
        return web.Response(body=fixture(SOFR), content_type="application/json")

    base, _ = await serve(aiohttp_server, {SOFR_PATH: slow})
    try:
        events = await poll(NyFedSource(config(base, rates=["sofr"], timeout="1s")))
    finally:
        release.set()
    [failure] = failures(events)
    assert failure["reason"] == "sofr: timeout after 1s"
    assert observations(events) == []


async def test_html_page_served_as_200_is_a_failure_saying_it_is_html(aiohttp_server):
    async def portal(request):
        return web.Response(text="<html><body>Service Unavailable</body></html>",
                            content_type="text/html")
    base, _ = await serve(aiohttp_server, {SOFR_PATH: portal})
    events = await poll(NyFedSource(config(base, rates=["sofr"])))
    [failure] = failures(events)
    assert failure["reason"].startswith("sofr search: bad response body: not JSON: the body "
                                        "looks like HTML/XML")
    assert observations(events) == []


async def test_truncated_and_renamed_payloads_fail_per_rate(aiohttp_server):
    renamed = fixture(OBFR).replace(b'"refRates"', b'"rates"')
    base, _ = await serve(aiohttp_server, {SOFR_PATH: fixture(SOFR)[:500],
                                           OBFR_PATH: renamed})
    events = await poll(NyFedSource(config(base, rates=["sofr", "obfr"])))
    reasons = sorted(f["reason"] for f in failures(events))
    assert reasons[0] == ("obfr search: bad response body: no 'refRates' field in the JSON "
                          "object (top-level fields: 'rates')")
    assert reasons[1].startswith("sofr search: bad response body: not JSON: truncated after 500")
    assert observations(events) == []


async def test_poll_records_good_rows_and_one_failure_naming_the_bad_ones(aiohttp_server):
    rows = sofr_rows()
    rows[2]["percentRate"] = "abc"
    base, _ = await serve(aiohttp_server, {SOFR_PATH: body_of(rows)})
    events = await poll(NyFedSource(config(base, rates=["sofr"])))
    assert sorted(e.payload["date"] for e in observations(events)) == [
        "2024-06-03", "2024-06-05", "2024-06-06"]
    [failure] = failures(events)
    assert failure["bad_rows"] == ["row 3 (SOFR 2024-06-04): percentRate: not a number: 'abc'"]
    assert failure["recorded_rows"] == 3
    assert failure["reason"] == "sofr search: 1 bad row(s) rejected, 3 recorded"


async def test_one_failing_rate_does_not_hide_the_others(aiohttp_server):
    async def broken(request):
        return web.Response(status=503, text="Service Unavailable")
    base, _ = await serve(aiohttp_server, {SOFR_PATH: broken, EFFR_PATH: fixture(EFFR)})
    events = await poll(NyFedSource(config(base, rates=["sofr", "effr"])))
    assert [f["reason"] for f in failures(events)] == ["sofr: HTTP 503: Service Unavailable"]
    assert len(observations(events)) == 108


async def test_unknown_rate_and_refused_connection_are_failures_not_exceptions(aiohttp_server):
    base, _ = await serve(aiohttp_server, {})
    events = await poll(NyFedSource(config(base, rates=["sofrai"])))
    assert [f["reason"] for f in failures(events)] == [
        "unknown rate 'sofrai' in [sources.nyfed] rates (known: bgcr, effr, obfr, sofr, tgcr)"]
    # Nothing listens on port 1 of 127.0.0.1.
    events = await poll(NyFedSource(config("http://127.0.0.1:1", rates=["sofr"])))
    [failure] = failures(events)
    assert failure["reason"].startswith("sofr: ClientConnectorError")


async def test_backfill_searches_each_year_and_keeps_nominal_publication_times(aiohttp_server):
    asked = []

    async def search(request):
        asked.append((request.query["startDate"], request.query["endDate"]))
        body = fixture(SOFR) if request.query["startDate"].startswith("2024") else b'{"refRates": []}'
        return web.Response(body=body, content_type="application/json")
    app = web.Application()
    app.router.add_get("/api/rates/secured/sofr/search.json", search)
    server = await aiohttp_server(app)
    source = NyFedSource(config(str(server.make_url("")).rstrip("/"), rates=["sofr"]))
    later = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    async with aiohttp.ClientSession() as session:
        events = await source.backfill(session, date(2023, 6, 1), later)
    assert asked == [("2023-06-01", "2023-12-31"), ("2024-01-01", "2024-12-31"), ("2025-01-01", "2025-03-01")]
    published = {e.payload["date"]: e.published_at for e in events if e.type == OBSERVATION_RECORDED}
    assert published["2024-06-06"] == "2024-06-07T12:00:00.000000Z"     # nominal, not the fetch time


def test_a_date_out_of_range_is_a_named_bad_row_not_an_exception():
    body = b'{"refRates": [{"effectiveDate": "0999-01-01", "type": "SOFR", "percentRate": 5.3},' \
           b' {"effectiveDate": "2024-06-03", "type": "SOFR", "percentRate": 5.35}]}'
    events, reasons = parse_reference_rates(body, fetched_at=None, source_url=URL)
    assert [e.payload["date"] for e in events] == ["2024-06-03"]
    assert reasons == ["row 1 (SOFR 0999-01-01): effectiveDate: date out of range (1900-2199): '0999-01-01'"]
