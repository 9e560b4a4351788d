"""FRED: the pure JSON and CSV parsers on the real payloads (both fredgraph header formats), and
the source against a local aiohttp server on 127.0.0.1, including the API key never leaking."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from fakes import serve
from helpers import by_key, failures, observations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.market.series import nominal_publication_text, spec
from watchdog.model.config import FredConfig
from watchdog.model.events import NewEvent, canonical_json
from watchdog.sources.base import RateLimiter
from watchdog.sources.fred.live import (
    MIN_LOOKBACK_DAYS,
    FredSource,
    parse_graph_csv,
    parse_observations_json,
)
from watchdog.sources.fred.units import FRED_IDS, FRED_SERIES

FIXTURES = Path(__file__).parent / "fixtures" / "fred"
SOFR_JSON = "SOFR_observations_2024-06-01_2024-06-06.json"
SOFR_CSV_OLD = "fredgraph_SOFR_2024-09_oldformat.csv"
SOFR_CSV_NEW = "fredgraph_SOFR_2026-06.csv"
IORB_CSV = "fredgraph_IORB_2026-06.csv"
WRESBAL_CSV = "fredgraph_WRESBAL_2026-06.csv"
GDP_FIRST = "GDP_observations_output_type4_initial_release.json"
GDP_CURRENT = "GDP_observations_current_2024-11.json"
GDP_URL = ("https://api.stlouisfed.org/fred/series/observations?series_id=GDP&api_key=REDACTED"
           "&output_type=4&realtime_start=1776-07-04")
API_URL = "https://api.stlouisfed.org/fred/series/observations?series_id=SOFR&api_key=REDACTED"
CSV_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv?id=SOFR"
CANARY = "canary-SECRET-4242"
NOW = datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc)
# After the 2026-06 fredgraph fixtures' last date (2026-06-23): served at NOW, their later rows
# would be dated after the fetch and refused (tests/test_plausibility.py).
NOW_2026 = datetime(2026, 6, 24, 14, 0, tzinfo=timezone.utc)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def csv(body: bytes, series: str = "sofr", fred_id: str = "SOFR", fetched_at=None):
    return parse_graph_csv(body, series=series, fred_id=fred_id, fetched_at=fetched_at,
                           source_url=CSV_URL)


def api(body: bytes, series: str = "sofr", fred_id: str = "SOFR", fetched_at=None):
    return parse_observations_json(body, series=series, fred_id=fred_id, fetched_at=fetched_at,
                                   source_url=API_URL)


def sofr_json_with(values: dict[str, str]) -> bytes:
    """The real SOFR response with some observations' values replaced (by date)."""
    data = json.loads(fixture(SOFR_JSON))
    for row in data["observations"]:
        row["value"] = values.get(row["date"], row["value"])
    return json.dumps(data).encode()


# ---- JSON API parser ----

def test_json_observations_become_exact_observations_with_redacted_provenance():
    events, reasons = api(fixture(SOFR_JSON))
    assert reasons == []
    assert [e.payload["date"] for e in events] == [
        "2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]
    day = by_key(events)["obs/sofr/2024-06-03"]
    assert day.payload == {
        "series": "sofr", "date": "2024-06-03", "value": "5.35", "unit": "%", "source": "fred",
        "attributes": {},
        "provenance": {"url": API_URL, "raw_value": "5.35", "raw_unit": "percent",
                       "fred_id": "SOFR"}}
    assert by_key(events)["obs/sofr/2024-06-06"].published_at == "2024-06-07T12:00:00.000000Z"


def test_json_dot_and_empty_values_are_gaps_not_errors():
    events, reasons = api(sofr_json_with({"2024-06-04": ".", "2024-06-05": ""}))
    assert reasons == []
    assert [e.payload["date"] for e in events] == ["2024-06-03", "2024-06-06"]


def test_json_bad_observation_is_named_and_the_others_recorded():
    data = json.loads(fixture(SOFR_JSON))
    data["observations"][1]["value"] = "5,33%"
    data["observations"][2]["date"] = "06/05/2024"
    del data["observations"][3]["value"]
    events, reasons = api(json.dumps(data).encode())
    assert [e.payload["date"] for e in events] == ["2024-06-03"]
    assert reasons == [
        "row 2 (SOFR 2024-06-04): value: not a number: '5,33%'",
        "row 3 (SOFR 06/05/2024): date: not a date (YYYY-MM-DD): '06/05/2024'",
        "row 4 (SOFR 2024-06-06): value: missing field",
    ]


@pytest.mark.parametrize("body, reason", [
    (b'{"error_code":400,"error_message":"Bad Request.  The value for variable api_key is '
     b'not registered."}',
     "FRED error 400: Bad Request.  The value for variable api_key is not registered."),
    (b'{"seriess": []}', "no 'observations' field in the JSON object (top-level fields: "
                         "'seriess')"),
    (b"<?xml version='1.0'?><observations/>",
     "not JSON: the body looks like HTML/XML, starting \"<?xml version='1.0'?><observations/>\""),
])
def test_json_body_that_is_not_observations_gives_one_reason(body, reason):
    assert api(body) == ([], [reason])


def test_unknown_or_mismatched_fred_ids_are_refused_rather_than_guessed():
    # WDTGAL (TGA, Wednesday level) has no checked unit: refused, not guessed.
    assert api(fixture(SOFR_JSON), series="tga", fred_id="WDTGAL")[1][0].startswith(
        "FRED series 'WDTGAL' has no checked unit conversion")
    assert api(fixture(SOFR_JSON), series="iorb", fred_id="SOFR") == (
        [], ["FRED series 'SOFR' is 'sofr', not 'iorb'"])
    # The week-average TGA never feeds the daily `tga` series.
    assert api(fixture(SOFR_JSON), series="tga", fred_id="WTREGEN") == (
        [], ["FRED series 'WTREGEN' is 'tga_weekly_avg', not 'tga'"])


# ---- keyless fredgraph.csv parser ----

def test_old_csv_format_with_dot_for_missing():
    events, reasons = csv(fixture(SOFR_CSV_OLD))
    assert reasons == []
    keyed = by_key(events)
    assert keyed["obs/sofr/2019-08-29"].payload["value"] == "2.12"
    assert "obs/sofr/2019-09-02" not in keyed  # Labor Day: "." in the old format
    assert keyed["obs/sofr/2019-09-03"].payload["value"] == "2.17"
    data_lines = fixture(SOFR_CSV_OLD).decode().splitlines()[1:]
    assert len(events) == sum(1 for line in data_lines if not line.endswith(",."))


def test_new_csv_format_with_empty_for_missing():
    events, reasons = csv(fixture(SOFR_CSV_NEW))
    assert reasons == []
    keyed = by_key(events)
    assert keyed["obs/sofr/2021-06-23"].payload["value"] == "0.05"
    assert "obs/sofr/2021-07-05" not in keyed  # empty field in the new format


def test_iorb_csv_starts_2021_07_29_at_0_15_including_weekends():
    events, reasons = csv(fixture(IORB_CSV), series="iorb", fred_id="IORB")
    assert reasons == []
    first = by_key(events)["obs/iorb/2021-07-29"]
    assert first.payload["value"] == "0.15" and first.payload["unit"] == "%"
    assert "obs/iorb/2021-07-31" in by_key(events)  # a Saturday: IORB is defined every day
    # An administered rate in force on D was public at the start of D (New York).
    assert first.published_at == "2021-07-29T04:00:00.000000Z"


def test_weekly_reserves_are_scaled_from_millions_to_billions_exactly():
    events, reasons = csv(fixture(WRESBAL_CSV), series="reserves", fred_id="WRESBAL")
    assert reasons == []
    first = by_key(events)["obs/reserves/2021-06-23"].payload
    assert first["value"] == "3808.042" and first["unit"] == "USD bn"
    assert first["provenance"]["raw_value"] == "3808042"
    assert first["provenance"]["raw_unit"] == "millions of dollars"


def test_csv_with_bom_and_crlf_parses_like_the_plain_file():
    plain, _ = csv(fixture(IORB_CSV), series="iorb", fred_id="IORB")
    odd = b"\xef\xbb\xbf" + fixture(IORB_CSV).replace(b"\n", b"\r\n")
    events, reasons = csv(odd, series="iorb", fred_id="IORB")
    assert reasons == []
    assert [e.payload for e in events] == [e.payload for e in plain]


def test_csv_bad_line_is_named_by_line_number_and_good_lines_recorded():
    body = (b"observation_date,SOFR\n2021-06-23,0.05\n2021-06-24,abc\n2021-13-01,0.05\n"
            b"2021-06-25\n\n2021-06-28,0.06\n")
    events, reasons = csv(body)
    assert [(e.payload["date"], e.payload["value"]) for e in events] == [
        ("2021-06-23", "0.05"), ("2021-06-28", "0.06")]
    assert reasons == [
        "line 3 (SOFR 2021-06-24): value: not a number: 'abc'",
        "line 4 (SOFR 2021-13-01): date: not a date (YYYY-MM-DD): '2021-13-01'",
        "line 5 (SOFR 2021-06-25): expected 2 columns, got 1: '2021-06-25'",
    ]


@pytest.mark.parametrize("body, reason", [
    (b"<!DOCTYPE html><html><title>Error</title></html>",
     "not a fredgraph CSV: expected a header 'observation_date,SOFR' or 'DATE,SOFR', "
     "got '<!DOCTYPE html><html><title>Error</title></html>'"),
    (b"observation_date,IORB\n2021-07-29,0.15\n", "column 2 is 'IORB', expected the series 'SOFR'"),
    (b"", "empty body where a fredgraph CSV was expected"),
])
def test_csv_body_that_is_not_the_series_gives_one_reason(body, reason):
    assert csv(body) == ([], [reason])


# ---- the source against a local server ----

CSV_PATH = "/graph/fredgraph.csv"
API_PATH = "/fred/series/observations"


def config(base: str, **kw) -> FredConfig:
    return FredConfig(base_url=base, csv_base_url=base, **{"retries": 0, **kw})   # retries: test_source_base


async def poll(source: FredSource, now: datetime = NOW) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


async def test_without_a_key_the_source_uses_the_keyless_csv(aiohttp_server):
    base, seen = await serve(aiohttp_server, {CSV_PATH: fixture(IORB_CSV)})
    source = FredSource(config(base, lookback_days=7), env={})
    assert not source.uses_api
    events = await poll(source, NOW_2026)
    assert failures(events) == []
    assert len(observations(events)) == 1791
    assert [dict(r.query) for r in seen] == [{"id": "IORB", "cosd": "2026-06-17"}]


async def test_with_a_key_the_source_uses_the_json_api_and_records_no_key(aiohttp_server):
    base, seen = await serve(aiohttp_server, {API_PATH: fixture(SOFR_JSON)})
    source = FredSource(config(base, series={"sofr": "SOFR"}), env={"FRED_API_KEY": CANARY})
    events = await poll(source)
    assert failures(events) == []
    assert dict(seen[0].query) == {"series_id": "SOFR", "api_key": CANARY, "file_type": "json",
                                   "observation_start": "2024-05-28"}
    day = by_key(events)["obs/sofr/2024-06-03"].payload
    assert day["value"] == "5.35"
    assert "api_key=REDACTED" in day["provenance"]["url"]


async def test_key_is_read_from_a_systemd_credential_file(aiohttp_server, tmp_path):
    (tmp_path / "fred_api_key").write_text(CANARY + "\n")
    base, seen = await serve(aiohttp_server, {API_PATH: fixture(SOFR_JSON)})
    source = FredSource(config(base, series={"sofr": "SOFR"}),
                        env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert source.uses_api and CANARY not in repr(source)
    await poll(source)
    assert seen[0].query["api_key"] == CANARY


def test_credential_file_may_also_carry_the_variable_name_exactly(tmp_path):
    (tmp_path / "FRED_API_KEY").write_text(CANARY)
    assert FredSource(FredConfig(), env={"CREDENTIALS_DIRECTORY": str(tmp_path)}).uses_api
    assert not FredSource(FredConfig(), env={"CREDENTIALS_DIRECTORY": str(tmp_path / "x")}).uses_api


async def test_http_500_and_timeout_become_source_failed_events(aiohttp_server):
    release = asyncio.Event()

    async def broken(request):
        return web.Response(status=500, text="Internal Server Error")

    async def slow(request):
        try:
            await asyncio.wait_for(release.wait(), 10)
        except asyncio.TimeoutError:
            pass
        return web.Response(body=fixture(WRESBAL_CSV))

    async def dispatch(request):
        return await (broken if request.query["id"] == "IORB" else slow)(request)

    base, _ = await serve(aiohttp_server, {CSV_PATH: dispatch})
    source = FredSource(config(base, timeout="1s",
                               series={"iorb": "IORB", "reserves": "WRESBAL"}), env={})
    try:
        events = await poll(source)
    finally:
        release.set()
    assert observations(events) == []
    assert sorted(f["reason"] for f in failures(events)) == [
        "iorb (IORB): HTTP 500: Internal Server Error",
        "reserves (WRESBAL): timeout after 1s"]


async def test_mixed_good_and_bad_csv_lines_record_the_good_and_name_the_bad(aiohttp_server):
    body = fixture(SOFR_CSV_NEW).replace(b"2021-06-24,0.05", b"2021-06-24,n/a?")
    base, _ = await serve(aiohttp_server, {CSV_PATH: body})
    events = await poll(FredSource(config(base, series={"sofr": "SOFR"}), env={}), NOW_2026)
    [failure] = failures(events)
    assert failure["bad_rows"] == ["line 3 (SOFR 2021-06-24): value: not a number: 'n/a?'"]
    assert failure["recorded_rows"] == len(observations(events)) == 1246


async def test_misconfigured_series_is_a_failure_event_not_an_exception(aiohttp_server):
    base, seen = await serve(aiohttp_server, {})
    events = await poll(FredSource(config(base, series={"tga": "WTREGEN"}), env={}))
    [failure] = failures(events)
    assert failure["reason"] == ("[sources.fred] series tga = 'WTREGEN': "
                                 "FRED series 'WTREGEN' is 'tga_weekly_avg', not 'tga'")
    assert seen == []


async def test_canary_key_appears_in_no_event_and_no_log_line(aiohttp_server, caplog):
    caplog.set_level(logging.DEBUG)

    async def observations_or_error(request):
        # A buggy server echoing the key back, placed across the points where error messages
        # cut the body (120 bytes for HTTP errors, 60 characters for a bad body), so a
        # redaction applied after cutting would leave a prefix of the key behind.
        key = request.query["api_key"]
        if request.query["series_id"] == "IORB":
            return web.Response(status=500, text="e" * 114 + key)
        if request.query["series_id"] == "EFFR":
            return web.Response(text="<html>" + "x" * 50 + key + "</html>")
        return web.Response(body=fixture(SOFR_JSON), content_type="application/json")

    base, seen = await serve(aiohttp_server, {API_PATH: observations_or_error})
    source = FredSource(config(base, series={"iorb": "IORB", "sofr": "SOFR", "effr": "EFFR"}),
                        env={"FRED_API_KEY": CANARY})
    events = await poll(source)
    assert len(seen) == 3 and all(r.query["api_key"] == CANARY for r in seen)
    assert len(observations(events)) == 4 and len(failures(events)) == 2
    dumped = json.dumps([e.model_dump() for e in events])
    # "canary" only ever comes from the key: not even a prefix of it may be recorded.
    assert "canary" not in dumped.lower()
    assert "REDACTED" in dumped
    assert caplog.records and "canary" not in caplog.text.lower()
    assert CANARY not in repr(source)


# ---- the series table: every FRED series of DOMAIN.md, exact units ----

def test_every_domain_fred_series_converts_exactly_to_its_catalogue_unit():
    assert FRED_IDS == {
        "iorb": "IORB", "fftarget_upper": "DFEDTARU", "fftarget_lower": "DFEDTARL",
        "effr": "EFFR", "sofr": "SOFR", "onrrp": "RRPONTSYD", "reserves": "WRESBAL",
        "fed_assets": "WALCL", "primary_credit": "WLCFLPCL", "tga_weekly_avg": "WTREGEN",
        "m2": "M2SL", "gdp": "GDP"}
    millions = {"WRESBAL", "WALCL", "WLCFLPCL", "WTREGEN"}
    for fred_id, (series, unit) in FRED_SERIES.items():
        factor, raw_unit = unit.factor, unit.fred_name
        assert factor == (Decimal("0.001") if fred_id in millions else 1), fred_id
        assert raw_unit.startswith("millions" if fred_id in millions else ("billions", "percent"))
        assert spec(series).unit == ("%" if raw_unit == "percent" else "USD bn"), fred_id


@pytest.mark.parametrize("fred_id, series, line, value", [
    # Rows copied from the shipped history (data/treasury/WTREGEN.csv, data/macro/M2SL.csv,
    # data/balance_sheet/WALCL.csv, data/facilities/RRPONTSYD.csv); the WLCFLPCL row is made up
    # (no primary-credit file is shipped) to pin the same $mn conversion.
    ("WTREGEN", "tga_weekly_avg", "2025-11-19,941926.0", "941.926"),
    ("WALCL", "fed_assets", "2002-12-18,719542", "719.542"),
    ("WLCFLPCL", "primary_credit", "2023-03-15,12345", "12.345"),
    ("M2SL", "m2", "2026-06-01,23155.2", "23155.2"),
    ("RRPONTSYD", "onrrp", "2003-02-07,2.5", "2.5"),
])
def test_amounts_are_recorded_in_usd_billions_exactly(fred_id, series, line, value):
    body = f"observation_date,{fred_id}\n{line}\n".encode()
    [event], reasons = csv(body, series=series, fred_id=fred_id)
    assert reasons == []
    assert (event.payload["value"], event.payload["unit"]) == (value, "USD bn")
    assert event.payload["provenance"]["raw_value"] == line.split(",")[1]


def test_current_vintage_gdp_has_dot_gaps_and_billions():
    events, reasons = api(fixture(GDP_CURRENT), series="gdp", fred_id="GDP")
    assert reasons == []
    keyed = by_key(events)
    assert "obs/gdp/1946-01-01" not in keyed          # "." in the real payload
    assert keyed["obs/gdp/2024-07-01"].payload["value"] == "29349.924"
    assert keyed["obs/gdp/2024-04-01"].payload["value"] == "29016.714"   # revised since


# ---- ALFRED first releases ----

def first(body: bytes, fetched_at=None):
    return parse_observations_json(body, series="gdp", fred_id="GDP", fetched_at=fetched_at,
                                   source_url=GDP_URL, first_release=True)


def test_first_prints_are_dated_by_their_realtime_start_at_0830_new_york():
    events, reasons = first(fixture(GDP_FIRST))
    assert reasons == [] and len(events) == 132
    keyed = by_key(events)
    # Checked by hand against the fixture: (first print, day it became public, UTC of 08:30 ET).
    for day, value, published in [
        ("1991-10-01", "5736.6", "1992-01-29T13:30:00.000000Z"),     # EST
        ("2013-07-01", "16857.6", "2013-11-07T13:30:00.000000Z"),    # shutdown-delayed advance
        ("2018-10-01", "20891.367", "2019-02-28T13:30:00.000000Z"),  # shutdown-delayed too
        ("2024-04-01", "28629.153", "2024-07-25T12:30:00.000000Z"),  # EDT
        ("2024-07-01", "29349.924", "2024-10-30T12:30:00.000000Z"),
    ]:
        event = keyed[f"obs/gdp/{day}"]
        assert (event.payload["value"], event.published_at) == (value, published), day
        assert event.payload["provenance"]["vintage"] == published
        assert event.payload["provenance"]["realtime_start"] == published[:10]
        assert event.payload["provenance"]["url"] == GDP_URL


def test_first_prints_are_not_todays_revised_values_nor_dated_by_a_fixed_lag():
    first_prints = {e.payload["date"]: e for e in first(fixture(GDP_FIRST))[0]}
    current = {e.payload["date"]: e for e in api(fixture(GDP_CURRENT), series="gdp",
                                                  fred_id="GDP")[0]}
    # 2024Q2: first printed 28629.153, revised to 29016.714 by 2024-11 — history must not
    # know the revision.
    assert first_prints["2024-04-01"].payload["value"] == "28629.153"
    assert current["2024-04-01"].payload["value"] == "29016.714"
    # From quarter start to first print took 114 to 150 days (shutdowns delayed 2013Q3 and
    # 2018Q4): no fixed lag dates them all, the vintage does.
    lags = {d: (date.fromisoformat(e.published_at[:10]) - date.fromisoformat(d)).days
            for d, e in first_prints.items()}
    assert (min(lags.values()), max(lags.values())) == (114, 150)
    assert lags["2018-10-01"] == 150 and lags["2013-07-01"] == 129
    assert any(e.published_at != nominal_publication_text("gdp", date.fromisoformat(d))
               for d, e in first_prints.items())


def test_live_first_print_is_capped_at_the_fetch_time_and_its_vintage_agrees():
    fetched = datetime(2024, 10, 30, 12, 0, tzinfo=timezone.utc)     # 08:00 ET, before 08:30
    keyed = by_key(first(fixture(GDP_FIRST), fetched_at=fetched)[0])
    latest = keyed["obs/gdp/2024-07-01"]
    assert latest.published_at == latest.payload["provenance"]["vintage"] == \
        "2024-10-30T12:00:00.000000Z"
    assert keyed["obs/gdp/2024-04-01"].published_at == "2024-07-25T12:30:00.000000Z"


def test_a_body_that_is_not_first_releases_is_refused_whole():
    # output_type 1 lists each date once per vintage: taken as first prints it would leak
    # revisions into history.
    assert first(fixture(GDP_CURRENT)) == (
        [], ["asked ALFRED for first releases (output_type 4), got output_type '1'"])


def test_first_release_rows_without_realtime_start_are_named_and_dot_is_a_gap():
    data = json.loads(fixture(GDP_FIRST))
    del data["observations"][0]["realtime_start"]
    data["observations"][1]["realtime_start"] = "1992-13-40"
    data["observations"][2]["value"] = "."
    events, reasons = first(json.dumps(data).encode())
    assert len(events) == 129
    assert reasons == [
        "row 1 (GDP 1991-10-01): realtime_start: missing",
        "row 2 (GDP 1992-01-01): realtime_start: not a date (YYYY-MM-DD): '1992-13-40'",
    ]


@pytest.mark.parametrize("cut, reason", [
    (5000, "not JSON: truncated after 5000 characters (Expecting ',' delimiter)"),
    (5001, "not JSON: truncated after 5001 characters "
           "(Expecting property name enclosed in double quotes)"),
])
def test_truncated_json_is_one_reason(cut, reason):
    assert first(fixture(GDP_FIRST)[:cut]) == ([], [reason])


def test_absurd_values_and_dates_are_bad_rows_not_exceptions():
    events, reasons = api(sofr_json_with({"2024-06-03": "1E+999999999", "2024-06-04": "1e-40"}))
    data = json.loads(sofr_json_with({}))
    data["observations"][3]["date"] = "9999-12-31"
    more_events, more_reasons = api(json.dumps(data).encode())
    assert [e.payload["date"] for e in events] == ["2024-06-05", "2024-06-06"]
    assert reasons == ["row 1 (SOFR 2024-06-03): value: implausible magnitude: '1E+999999999'",
                       "row 2 (SOFR 2024-06-04): value: implausible magnitude: '1e-40'"]
    assert more_reasons == ["row 4 (SOFR 9999-12-31): date: date out of range (1900-2199): "
                            "'9999-12-31'"]


# ---- the source: ALFRED, backfill, retries, the rate limit ----

def alfred_or_latest(seen_queries: list[dict]):
    """A FRED stand-in: ALFRED first releases for GDP, the SOFR sample for anything else."""
    async def handler(request):
        seen_queries.append(dict(request.query))
        if request.query["series_id"] == "GDP":
            assert request.query["output_type"] == "4"
            return web.Response(body=fixture(GDP_FIRST), content_type="application/json")
        return web.Response(body=fixture(SOFR_JSON), content_type="application/json")
    return handler


async def test_backfill_asks_every_series_from_since_and_keeps_nominal_and_vintage_times(
        aiohttp_server):
    queries: list[dict] = []
    base, _ = await serve(aiohttp_server, {API_PATH: alfred_or_latest(queries)})
    source = FredSource(config(base, series={"sofr": "SOFR", "gdp": "GDP"}),
                        env={"FRED_API_KEY": CANARY})
    later = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    async with aiohttp.ClientSession() as session:
        events = await source.backfill(session, date(1990, 1, 1), later)
    assert failures(events) == []
    assert sorted(queries, key=lambda q: q["series_id"]) == [
        {"series_id": "GDP", "api_key": CANARY, "file_type": "json",
         "observation_start": "1990-01-01", "output_type": "4", "realtime_start": "1776-07-04"},
        {"series_id": "SOFR", "api_key": CANARY, "file_type": "json",
         "observation_start": "1990-01-01"}]
    keyed = by_key(events)
    assert len(keyed) == 4 + 132
    # Nominal, not the fetch time years later: SOFR T+1 08:00 ET, GDP its first print's day.
    assert keyed["obs/sofr/2024-06-06"].published_at == "2024-06-07T12:00:00.000000Z"
    assert keyed["obs/gdp/2013-07-01"].published_at == "2013-11-07T13:30:00.000000Z"


async def test_poll_reaches_back_far_enough_for_a_quarterly_first_print(aiohttp_server):
    queries: list[dict] = []
    base, _ = await serve(aiohttp_server, {API_PATH: alfred_or_latest(queries)})
    source = FredSource(config(base, series={"gdp": "GDP"}), env={"FRED_API_KEY": CANARY})
    now = datetime(2024, 10, 30, 13, 0, tzinfo=timezone.utc)
    events = await poll(source, now)
    # GDP for 2024-07-01 was first printed on 2024-10-30: a 10-day lookback by observation
    # date would never see it.
    assert MIN_LOOKBACK_DAYS["gdp"] == 400
    assert queries[0]["observation_start"] == (date(2024, 10, 30) - timedelta(days=400)).isoformat()
    latest = by_key(events)["obs/gdp/2024-07-01"]
    assert latest.published_at == "2024-10-30T12:30:00.000000Z"


async def test_without_a_key_first_release_series_are_skipped_with_one_warning_naming_them(
        aiohttp_server, caplog):
    base, seen = await serve(aiohttp_server, {CSV_PATH: fixture(IORB_CSV)})
    with caplog.at_level(logging.WARNING, logger="watchdog.sources.fred.live"):
        source = FredSource(config(base, series={"iorb": "IORB", "m2": "M2SL", "gdp": "GDP"},
                                   first_release=["m2", "gdp"]), env={})
        first = await poll(source, NOW_2026)
        second = await poll(source, NOW_2026)
    # Not a failure on every poll: no source-failed at all, and IORB still comes from the CSV.
    assert failures(first) == [] and failures(second) == []
    assert {e.payload["series"] for e in observations(first)} == {"iorb"}
    assert [r.query["id"] for r in seen] == ["IORB", "IORB"]      # M2 and GDP never asked
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (
        "fred: no API key, so m2 (M2SL), gdp (GDP) are not polled: first releases come from "
        "ALFRED, which needs the key; the other series use the keyless CSV. To poll them, set "
        "$FRED_API_KEY (or the systemd credential fred_api_key), or take FRED's latest revised "
        "values instead by leaving them out of [sources.fred] first_release")
    assert source.skipped == {"m2": "M2SL", "gdp": "GDP"}


async def test_with_a_key_nothing_is_skipped_and_first_releases_come_from_alfred(
        aiohttp_server, caplog):
    queries: list[dict] = []
    base, _ = await serve(aiohttp_server, {API_PATH: alfred_or_latest(queries)})
    with caplog.at_level(logging.WARNING, logger="watchdog.sources.fred.live"):
        source = FredSource(config(base, series={"gdp": "GDP"}), env={"FRED_API_KEY": CANARY})
    assert source.skipped == {} and caplog.records == []
    events = await poll(source, datetime(2024, 10, 30, 13, 0, tzinfo=timezone.utc))
    assert "obs/gdp/2024-07-01" in by_key(events) and queries[0]["output_type"] == "4"


async def test_revised_values_without_a_key_when_first_release_is_emptied(aiohttp_server):
    base, seen = await serve(aiohttp_server, {
        CSV_PATH: b"observation_date,M2SL\n2026-06-01,23155.2\n"})
    source = FredSource(config(base, series={"m2": "M2SL"}, first_release=[]), env={})
    assert source.skipped == {}
    events = await poll(source, NOW_2026)
    assert [e.payload["value"] for e in observations(events)] == ["23155.2"]


async def test_429_with_retry_after_waits_as_asked_and_each_attempt_takes_a_rate_turn(
        aiohttp_server):
    answers = [web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "7"})]

    async def busy_then_ok(request):
        if answers:
            return answers.pop()
        return web.Response(body=fixture(SOFR_JSON), content_type="application/json")

    class CountingLimiter:
        turns = 0

        async def acquire(self):
            self.turns += 1

    waits: list[float] = []

    async def sleep(seconds):
        waits.append(seconds)

    base, seen = await serve(aiohttp_server, {API_PATH: busy_then_ok})
    limiter = CountingLimiter()
    source = FredSource(config(base, series={"sofr": "SOFR"}, retries=1),
                        env={"FRED_API_KEY": CANARY}, sleep=sleep, limiter=limiter)
    events = await poll(source)
    assert failures(events) == [] and len(observations(events)) == 4
    assert waits == [7.0] and len(seen) == 2 and limiter.turns == 2


async def test_giving_up_after_retries_names_the_status_and_attempts(aiohttp_server):
    async def always_busy(request):
        return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})

    async def sleep(seconds):
        pass

    base, seen = await serve(aiohttp_server, {API_PATH: always_busy})
    source = FredSource(config(base, series={"sofr": "SOFR"}, retries=1),
                        env={"FRED_API_KEY": CANARY}, sleep=sleep)
    [failure] = failures(await poll(source))
    assert failure["reason"] == "sofr (SOFR): HTTP 429: Too Many Requests (after 2 attempts)"
    assert len(seen) == 2


async def test_one_rate_limit_is_shared_by_every_series_of_the_source(aiohttp_server):
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds):     # a fake minute: the limiter's clock moves when it waits
        waits.append(seconds)
        clock[0] += seconds

    async def one_row(request):
        return web.Response(text=f"observation_date,{request.query['id']}\n2024-06-03,5.33\n")

    base, seen = await serve(aiohttp_server, {CSV_PATH: one_row})
    limiter = RateLimiter(2, clock=lambda: clock[0], sleep=sleep)
    series = {"iorb": "IORB", "sofr": "SOFR", "effr": "EFFR"}
    source = FredSource(config(base, series=series, requests_per_minute=2), env={},
                        limiter=limiter)
    events = await poll(source)
    assert failures(events) == [] and len(observations(events)) == 3
    assert len(seen) == 3 and waits == [60.0]


@pytest.mark.parametrize("body, reason", [
    (b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
     "sofr (SOFR): bad response body: not JSON: the body looks like HTML/XML, starting "
     "'<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></'"),
    (fixture(SOFR_JSON)[:300],
     "sofr (SOFR): bad response body: not JSON: truncated after 300 characters "
     "(Unterminated string starting at)"),
    (fixture(SOFR_JSON).replace(b'"observations"', b'"observation"'),
     "sofr (SOFR): bad response body: no 'observations' field in the JSON object (top-level "
     "fields: 'realtime_start', 'realtime_end', 'observation_start', 'observation_end', "
     "'units', 'output_type', 'file_type', 'order_by', 'sort_order', 'count')"),
])
async def test_a_200_with_a_body_that_is_not_observations_is_one_failure(aiohttp_server, body,
                                                                           reason):
    base, _ = await serve(aiohttp_server, {API_PATH: body})
    events = await poll(FredSource(config(base, series={"sofr": "SOFR"}),
                                   env={"FRED_API_KEY": CANARY}))
    assert observations(events) == []
    assert [f["reason"] for f in failures(events)] == [reason]


async def test_canary_key_never_leaks_from_the_alfred_path(aiohttp_server, caplog):
    caplog.set_level(logging.DEBUG)

    async def alfred(request):
        key = request.query["api_key"]
        if request.query["series_id"] == "M2SL":
            return web.Response(status=500, text="e" * 114 + key)
        # A first-release payload whose bad row quotes the key back.
        data = json.loads(fixture(GDP_FIRST))
        data["observations"][0]["value"] = "x" + key
        data["observations"][1]["date"] = key
        return web.Response(body=json.dumps(data).encode(), content_type="application/json")

    base, seen = await serve(aiohttp_server, {API_PATH: alfred})
    source = FredSource(config(base, series={"gdp": "GDP", "m2": "M2SL"}),
                        env={"FRED_API_KEY": CANARY})
    events = await poll(source, datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert all(r.query["realtime_start"] == "1776-07-04" for r in seen) and len(seen) == 2
    assert len(observations(events)) == 130 and len(failures(events)) == 2
    dumped = json.dumps([e.model_dump() for e in events])
    assert "canary" not in dumped.lower() and "api_key=REDACTED" in dumped
    assert caplog.records and "canary" not in caplog.text.lower()


# ---- fuzzing: no body makes a parser raise, and whatever it records can be hashed ----

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.floats(allow_nan=True) | st.dates().map(date.isoformat)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.sampled_from([".", "", "\ud800", "9999-12-31", "1E+999999999"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
observation_rows = st.lists(st.dictionaries(
    st.sampled_from(["date", "value", "realtime_start", "realtime_end"]), json_values), max_size=6)


def assert_hashable(events: list[NewEvent], reasons: list[str]) -> None:
    for event in events:
        canonical_json(event.payload).encode("utf-8")
    for reason in reasons:
        reason.encode("utf-8")


@FUZZ
@given(body=st.binary(max_size=400), first_release=st.booleans())
def test_fuzz_json_parser_never_raises_on_arbitrary_bytes(body, first_release):
    assert_hashable(*parse_observations_json(body, series="reserves", fred_id="WRESBAL",
                                             fetched_at=NOW, source_url=API_URL,
                                             first_release=first_release))


@FUZZ
@given(envelope=json_values, rows=observation_rows, output_type=json_values,
       first_release=st.booleans())
def test_fuzz_json_parser_never_raises_on_json_like_structures(envelope, rows, output_type,
                                                                first_release):
    for document in (envelope, {"output_type": output_type, "observations": rows}):
        body = json.dumps(document).encode()
        assert_hashable(*parse_observations_json(body, series="gdp", fred_id="GDP",
                                                 fetched_at=None, source_url=GDP_URL,
                                                 first_release=first_release))


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list('0123456789-.,"eE+ \r\nabcDATEobservation_'))
                    | st.characters(), max_size=300),
       header=st.sampled_from(["", "observation_date,SOFR\n", "DATE,SOFR\r\n"]))
def test_fuzz_csv_parser_never_raises_on_csv_text(text, header):
    body = (header + text).encode("utf-8", "surrogatepass")
    assert_hashable(*parse_graph_csv(body, series="sofr", fred_id="SOFR", fetched_at=NOW,
                                     source_url=CSV_URL))
