"""FRED: the pure JSON and CSV parsers on the real payloads (both fredgraph header formats), and
the source against a local aiohttp server on 127.0.0.1, including the API key never leaking."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from watchdog.config import FredConfig
from watchdog.events import OBSERVATION_RECORDED, SOURCE_FAILED, NewEvent
from watchdog.sources.fred import FredSource, parse_graph_csv, parse_observations_json

FIXTURES = Path(__file__).parent / "fixtures" / "fred"
SOFR_JSON = "SOFR_observations_2024-06-01_2024-06-06.json"
SOFR_CSV_OLD = "fredgraph_SOFR_2024-09_oldformat.csv"
SOFR_CSV_NEW = "fredgraph_SOFR_2026-06.csv"
IORB_CSV = "fredgraph_IORB_2026-06.csv"
WRESBAL_CSV = "fredgraph_WRESBAL_2026-06.csv"
API_URL = "https://api.stlouisfed.org/fred/series/observations?series_id=SOFR&api_key=REDACTED"
CSV_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv?id=SOFR"
CANARY = "canary-SECRET-4242"
NOW = datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def by_key(events: list[NewEvent]) -> dict[str, NewEvent]:
    return {e.key: e for e in events}


def failures(events: list[NewEvent]) -> list[dict]:
    return [e.payload for e in events if e.type == SOURCE_FAILED]


def observations(events: list[NewEvent]) -> list[NewEvent]:
    return [e for e in events if e.type == OBSERVATION_RECORDED]


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
    assert api(fixture(SOFR_JSON), series="tga_weekly_avg", fred_id="WTREGEN")[1][0].startswith(
        "FRED series 'WTREGEN' has no checked unit conversion")
    assert api(fixture(SOFR_JSON), series="iorb", fred_id="SOFR") == (
        [], ["FRED series 'SOFR' is 'sofr', not 'iorb'"])


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


async def serve(aiohttp_server, routes: dict[str, object]):
    """A local server: path -> bytes or a handler. Returns (base_url, requests seen)."""
    seen: list[web.Request] = []
    app = web.Application()

    def route(answer):
        async def handler(request: web.Request) -> web.StreamResponse:
            seen.append(request)
            if isinstance(answer, bytes):
                return web.Response(body=answer)
            return await answer(request)
        return handler

    for path, answer in routes.items():
        app.router.add_get(path, route(answer))
    # No access log: it would print the key the *test server* received, which is not ours.
    server = await aiohttp_server(app, access_log=None)
    return str(server.make_url("")).rstrip("/"), seen


def config(base: str, **kw) -> FredConfig:
    return FredConfig(base_url=base, csv_base_url=base, **{"retries": 0, **kw})   # retries: test_source_base


async def poll(source: FredSource, now: datetime = NOW) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


async def test_without_a_key_the_source_uses_the_keyless_csv(aiohttp_server):
    base, seen = await serve(aiohttp_server, {CSV_PATH: fixture(IORB_CSV)})
    source = FredSource(config(base, lookback_days=7), env={})
    assert not source.uses_api
    events = await poll(source)
    assert failures(events) == []
    assert len(observations(events)) == 1791
    assert [dict(r.query) for r in seen] == [{"id": "IORB", "cosd": "2024-05-31"}]


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
    events = await poll(FredSource(config(base, series={"sofr": "SOFR"}), env={}))
    [failure] = failures(events)
    assert failure["bad_rows"] == ["line 3 (SOFR 2021-06-24): value: not a number: 'n/a?'"]
    assert failure["recorded_rows"] == len(observations(events)) == 1246


async def test_misconfigured_series_is_a_failure_event_not_an_exception(aiohttp_server):
    base, seen = await serve(aiohttp_server, {})
    events = await poll(FredSource(config(base, series={"tga_weekly_avg": "WTREGEN"}), env={}))
    [failure] = failures(events)
    assert failure["reason"].startswith("[sources.fred] series tga_weekly_avg = 'WTREGEN': "
                                        "FRED series 'WTREGEN' has no checked unit conversion")
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
