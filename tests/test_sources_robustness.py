"""Every source against the same hostile server behaviours: 429 with Retry-After is waited out
and the real payload then recorded; a renamed envelope field is a precise failure; no input makes
a parser raise (hypothesis)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from hypothesis import HealthCheck, given, settings, strategies as st

from fakes import Site
from watchdog.model.config import FiscalDataConfig, FredConfig, NyFedConfig, SpeechesConfig
from watchdog.model.events import SOURCE_FAILED
from watchdog.sources.fiscaldata.live import FiscalDataSource
from watchdog.sources.fred.live import FredSource
from watchdog.sources.nyfed.rates import NyFedSource, parse_reference_rates
from watchdog.sources.nyfed.operations import NyFedOperationsSource
from watchdog.sources.speeches.live import SpeechesSource

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2024, 6, 7, 14, 0, tzinfo=timezone.utc)


async def serve(aiohttp_server, bodies: dict[str, bytes | str]) -> str:
    """The shared local site, answering the first request of each path with 429 +
    Retry-After: 1, then the real body (any other path: 404)."""
    site = Site(bodies)
    for path in bodies:
        site.misbehave("status", path=path, status=429, body="slow down", headers={"Retry-After": "1"})
    return (await site.serve(aiohttp_server)).base


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


async def poll(source, now: datetime = NOW) -> list:
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


async def test_nyfed_rates_wait_out_a_429_and_record_the_payload(aiohttp_server):
    base = await serve(aiohttp_server, {"/api/rates/secured/sofr/search.json":
                                        fixture("nyfed/sofr_search_2024-06-01_2024-06-06.json")})
    events = await poll(NyFedSource(NyFedConfig(base_url=base, rates=["sofr"], retries=1)))
    assert [e.payload["date"] for e in events] == ["2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]


async def test_nyfed_operations_wait_out_a_429_and_record_the_payload(aiohttp_server):
    base = await serve(aiohttp_server, {"/api/rp/results/search.json":
                                        fixture("nyfed/rp_all_all_results_last_500.json")})
    events = await poll(NyFedOperationsSource(NyFedConfig(base_url=base, retries=1, operations=True)))
    assert not [e for e in events if e.type == SOURCE_FAILED]
    assert {e.payload["series"] for e in events} == {"srf", "onrrp"}


async def test_fred_waits_out_a_429_and_record_the_payload(aiohttp_server):
    base = await serve(aiohttp_server, {"/fred/series/observations":
                                        fixture("fred/SOFR_observations_2024-06-01_2024-06-06.json")})
    source = FredSource(FredConfig(base_url=base, csv_base_url=base, series={"sofr": "SOFR"}, retries=1),
                        env={"FRED_API_KEY": "k" * 32})
    events = await poll(source)
    assert [e.payload["value"] for e in events] == ["5.35", "5.33", "5.33", "5.33"]


async def test_fiscal_data_waits_out_a_429_and_records_the_payload(aiohttp_server):
    path = "/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance"
    base = await serve(aiohttp_server, {path: fixture("fiscaldata/operating_cash_balance_2025-07-07_2025-07-11.json")})
    # polled after the fixture's week: rows dated after the fetch would be refused
    events = await poll(FiscalDataSource(FiscalDataConfig(base_url=base, retries=1)),
                        datetime(2025, 7, 14, 14, 0, tzinfo=timezone.utc))
    assert "332.482" in [e.payload["value"] for e in events if e.type != SOURCE_FAILED]


async def test_speeches_wait_out_a_429_on_feed_and_page(aiohttp_server):
    # the real feed with its links pointed at this server (no request may leave 127.0.0.1)
    feed = fixture("fedspeeches/speeches_2016-08_rss1-rdf.xml").decode().replace("http://www.federalreserve.gov", "{base}")
    base = await serve(aiohttp_server, {
        "/feeds/speeches.xml": feed,
        "/newsevents/speech/powell20160628a.htm": fixture("fedspeeches/speech_powell20160628a_legacy-layout.html")})
    events = await poll(SpeechesSource(SpeechesConfig(feeds=[base + "/feeds/speeches.xml"], retries=1, max_items=30)))
    speeches = [e for e in events if e.type == "speech-recorded"]
    assert [s.payload["speaker"] for s in speeches] == ["Jerome H. Powell"]
    # the other pages are not served here: each is a named 404, never a 429 left unretried
    failures = [e.payload["reason"] for e in events if e.type == SOURCE_FAILED]
    assert failures and all("429" not in reason for reason in failures)


async def test_fred_renamed_field_is_a_precise_failure(aiohttp_server):
    base = (await Site({"/fred/series/observations": '{"observation_list": []}'}).serve(aiohttp_server)).base
    source = FredSource(FredConfig(base_url=base, csv_base_url=base, retries=0), env={"FRED_API_KEY": "k" * 32})
    [failure] = await poll(source)
    assert failure.type == SOURCE_FAILED
    assert "no 'observations' field in the JSON object (top-level fields: 'observation_list')" in failure.payload["reason"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=6),
    max_leaves=25)
row_keys = st.sampled_from(["effectiveDate", "type", "percentRate", "percentPercentile1", "percentPercentile99",
                            "volumeInBillions", "targetRateFrom", "revisionIndicator"])
rows = st.lists(st.dictionaries(row_keys, json_values, max_size=8), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_nyfed_rates_parser_never_raises_on_arbitrary_bytes(body):
    events, reasons = parse_reference_rates(body, fetched_at=None, source_url="https://x/")
    assert isinstance(reasons, list)


@settings(max_examples=150, deadline=None)
@given(rows)
def test_nyfed_rates_parser_never_raises_on_hostile_rows(rows):
    import json
    from decimal import Decimal

    def default(o):
        if isinstance(o, Decimal):
            return float(o) if o.is_finite() else 0
        raise TypeError
    body = json.dumps({"refRates": rows}, default=default).encode()
    events, reasons = parse_reference_rates(body, fetched_at=NOW, source_url="https://x/")
    assert len(events) + len(reasons) <= len(rows)
