"""The contract every live source keeps (watchdog/sources/base.py), held against each source the
daemon builds: ``app.build_sources`` on a ``Config`` pointing at a local site on 127.0.0.1 that
serves the source's real payload from tests/fixtures/.

- a good answer yields observation or speech events, each with ``published_at`` set and never
  after the fetch, and no ``source-failed``;
- an HTTP 500, a malformed body (the real answer cut short, or empty) and a body over the
  source's ``max_body`` each yield a ``source-failed`` naming the URL, secrets redacted, and
  nothing else; the oversized one names the cap and its setting;
- one bad row among good rows (where the format has rows) records the good rows and names the
  bad one;
- ``poll`` never raises (a refused connection included).

A source added to ``build_sources`` (the source registry) without a ``CONTRACTS`` entry fails
``test_every_source_the_daemon_builds_has_a_contract``: add one here.
"""
from __future__ import annotations

import json
import socket
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
import pytest

from fakes import Site, fixture
from reserve_bank_pages import DALLAS_INDEX_PATH, NY_INDEX_PATH, NY_ROWS, dallas_site, ny_site
from watchdog.app import build_sources
from watchdog.model.config import Config, SourcesConfig
from watchdog.model.events import OBSERVATION_RECORDED, SOURCE_FAILED, SPEECH_RECORDED, NewEvent
from watchdog.model.timefmt import parse_utc
from watchdog.sources.base import BodyLimit

KEY_ENV = "CONTRACT_FRED_KEY"
KEY = "c0ntractcanary0key7f3e9a1b2c4d5e"      # a canary secret: must appear in no event
MAX_BODY = "1MB"                              # every table's cap here; the fixtures fit under it
DATA_TYPES = (OBSERVATION_RECORDED, SPEECH_RECORDED)

OPS_PATH = "/api/rp/results/search.json"
DTS_PATH = "/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance"
FEED_PATH = "/feeds/speeches.xml"
FSI_PATH = "/financial-stress-index/data/fsi.csv"
FSI_CSV = "ofr/fsi_2000-01-03_2025-09-11.csv"
BOARD = "http://www.federalreserve.gov"
POWELL_TITLE = ("<title>Powell, Recent Economic Developments, Monetary Policy Considerations and "
                "Longer-term Prospects</title>")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Contract:
    """How one source is configured, served and broken. ``table`` and ``options``: its
    ``[sources.<table>]`` (``{base}`` is the site's URL); ``path``: the answer the contract
    breaks; ``routes``: what the site serves (the real fixtures); ``now``: a poll instant after
    the fixture's data; ``bad_row``: the answer with one row broken and a text naming that row
    (None where the format has no rows)."""
    table: str
    options: dict
    path: str
    routes: Callable[[], dict]
    now: datetime
    bad_row: Callable[[], tuple[bytes | str, str]] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _sofr_with_a_bad_row() -> tuple[bytes, str]:
    body = fixture("nyfed/sofr_search_2024-06-01_2024-06-06.json")
    broken = body.replace(b'"percentRate": 5.35', b'"percentRate": "n/a"', 1)
    assert broken != body
    return broken, "SOFR 2024-06-03"


def _operations_with_a_bad_row() -> tuple[bytes, str]:
    data = json.loads(fixture("nyfed/rp_all_all_results_last_500.json"))
    operation = data["repo"]["operations"][0]           # RP 042123 1: ON RRP of 2023-04-21
    operation["totalAmtAccepted"] = "abc"
    del operation["details"]
    return json.dumps(data).encode(), operation["operationId"]


def _fred_with_a_bad_row() -> tuple[bytes, str]:
    data = json.loads(fixture("fred/SOFR_observations_2024-06-01_2024-06-06.json"))
    data["observations"][1]["value"] = "n/a?"           # 2024-06-04
    return json.dumps(data).encode(), "2024-06-04"


def _dts_with_a_bad_row() -> tuple[bytes, str]:
    data = json.loads(fixture("fiscaldata/operating_cash_balance_2025-07-07_2025-07-11.json"))
    data["data"][3]["open_today_bal"] = "--"            # the 2025-07-07 closing balance
    return json.dumps(data).encode(), "2025-07-07"


def _fsi_with_a_bad_row() -> tuple[bytes, str]:
    body = fixture(FSI_CSV)
    row = b"\n2025-09-10,-2.31,-1.059,-0.361,-0.281,-0.109,"     # within the 30-day lookback
    broken = body.replace(row, row.replace(b"-0.109", b"-0.1.09"), 1)
    assert broken != body
    return broken, "2025-09-10"


def _feed() -> str:
    """The real RDF feed with its links pointed at the local site."""
    return fixture("fedspeeches/speeches_2016-08_rss1-rdf.xml").decode().replace(BOARD, "{base}")


def _speech_site() -> dict:
    """The feed, and the real (legacy layout) speech page at every page the feed links."""
    feed = _feed()
    page = fixture("fedspeeches/speech_powell20160628a_legacy-layout.html")
    links = {line.split("{base}", 1)[1].split("<", 1)[0]
             for line in feed.splitlines() if line.startswith("<link>{base}/newsevents/")}
    assert len(links) == 15                 # the feed lists 15 speeches
    return {FEED_PATH: feed, **{path: page for path in links}}


def _ny_index_with_a_bad_row() -> tuple[str, str]:
    """The (hand-built: tests/reserve_bank_pages.py) index with a dated row that links no page."""
    rows = (*NY_ROWS, ("Feb 01, 2026", "", "Williams: A row with no page"))
    return ny_site(rows)[NY_INDEX_PATH], "Feb 01, 2026"


def _feed_with_a_bad_item() -> tuple[str, str]:
    feed = _feed()
    assert POWELL_TITLE in feed
    return feed.replace(POWELL_TITLE, "<title></title>", 1), "powell20160628a"


# One parameter per source the daemon builds, keyed by the source's name.
CONTRACTS: dict[str, Contract] = {
    "nyfed": Contract(
        "nyfed", {"rates": ["sofr"]}, "/api/rates/secured/sofr/search.json",
        lambda: {"/api/rates/secured/sofr/search.json":
                 fixture("nyfed/sofr_search_2024-06-01_2024-06-06.json")},
        utc(2024, 6, 7, 14), _sofr_with_a_bad_row),
    "nyfed-operations": Contract(
        "nyfed", {"rates": [], "operations": True}, OPS_PATH,
        lambda: {OPS_PATH: fixture("nyfed/rp_all_all_results_last_500.json")},
        utc(2023, 4, 21, 18), _operations_with_a_bad_row),
    "fred": Contract(
        "fred", {"csv_base_url": "{base}", "api_key_env": KEY_ENV, "series": {"sofr": "SOFR"}},
        "/fred/series/observations",
        lambda: {"/fred/series/observations": fixture("fred/SOFR_observations_2024-06-01_2024-06-06.json")},
        utc(2024, 6, 7, 14), _fred_with_a_bad_row, env={KEY_ENV: KEY}),
    "fiscaldata": Contract(
        "fiscaldata", {}, DTS_PATH,
        lambda: {DTS_PATH: fixture("fiscaldata/operating_cash_balance_2025-07-07_2025-07-11.json")},
        utc(2025, 7, 14, 14), _dts_with_a_bad_row),
    "speeches": Contract(
        "speeches", {"feeds": ["{base}" + FEED_PATH], "max_items": 2}, FEED_PATH, _speech_site,
        utc(2016, 8, 1, 12), _feed_with_a_bad_item),
    # The Reserve Banks' speech pages are real (abridged) samples; their index pages are built
    # by hand, no real copy having been found (tests/fixtures/reserve_banks/PROVENANCE.md).
    "speeches-new-york": Contract(
        "speeches", {"new_york": True, "new_york_pages": ["{base}" + NY_INDEX_PATH],
                     "max_items": 2}, NY_INDEX_PATH, ny_site, utc(2026, 3, 10, 12),
        _ny_index_with_a_bad_row),
    "speeches-dallas": Contract(
        "speeches", {"dallas": True, "dallas_pages": ["{base}" + DALLAS_INDEX_PATH]},
        DALLAS_INDEX_PATH, dallas_site, utc(2026, 3, 10, 12)),
    "ofr": Contract(
        "ofr", {}, FSI_PATH, lambda: {FSI_PATH: fixture(FSI_CSV)},
        utc(2025, 9, 15, 16), _fsi_with_a_bad_row),
}


def _filled(value, base: str):
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, list):
        return [_filled(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, base) for k, v in value.items()}
    return value


def config_for(contract: Contract, base: str) -> Config:
    """Only the contract's table, as a config file would give it, pointing at ``base``."""
    options = {"base_url": base, "retries": 0, "timeout": "5s", "max_body": MAX_BODY,
               **_filled(contract.options, base)}
    if "base_url" not in _table_model(contract.table).model_fields:
        options.pop("base_url")                 # speeches: the feeds name their own URLs
    return Config.model_validate({"sources": {contract.table: options}})


def the_source(name: str, base: str):
    """The source called ``name`` as the daemon builds it (``app.build_sources``)."""
    contract = CONTRACTS[name]
    built = {source.name: source for source in build_sources(config_for(contract, base), contract.env)}
    assert name in built, (f"build_sources on [sources.{contract.table}] {contract.options} built "
                           f"{sorted(built)}, not {name!r}")
    return built[name]


async def poll(source, now: datetime) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        events = await source.poll(session, now)
    assert isinstance(events, list) and all(isinstance(e, NewEvent) for e in events)
    return events


def failures(events: list[NewEvent]) -> list[dict]:
    return [e.payload for e in events if e.type == SOURCE_FAILED]


def data(events: list[NewEvent]) -> list[NewEvent]:
    return [e for e in events if e.type in DATA_TYPES]


def assert_no_secret(events: list[NewEvent]) -> None:
    text = json.dumps([(e.type, e.key, e.payload, e.published_at) for e in events])
    assert KEY not in text


def assert_one_failure_naming(events: list[NewEvent], site: Site, path: str) -> dict:
    """Exactly one ``source-failed``, naming the URL asked (secrets redacted), and no data."""
    assert data(events) == [], [e.key for e in data(events)]
    [failure] = failures(events)
    assert failure["url"].startswith(site.base + path), failure["url"]
    assert_no_secret(events)
    return failure


@pytest.fixture(params=sorted(CONTRACTS))
async def served(request, aiohttp_server):
    """(contract, site serving its real payload, the source built by the daemon's code)."""
    contract = CONTRACTS[request.param]
    site = await Site(contract.routes()).serve(aiohttp_server)
    return contract, site, the_source(request.param, site.base)


# ---- the contract ----

async def test_a_good_answer_yields_facts_published_no_later_than_the_fetch(served):
    contract, site, source = served
    events = await poll(source, contract.now)
    assert failures(events) == []
    assert data(events) and {e.type for e in events} <= set(DATA_TYPES)
    for event in events:
        assert event.published_at, event.key
        assert parse_utc(event.published_at) <= contract.now, event.key
    assert_no_secret(events)
    assert site.paths()[0] == contract.path          # what was asked is what the contract breaks


async def test_an_http_500_is_a_failure_naming_the_url(served):
    contract, site, source = served
    site.misbehave("status", path=contract.path, status=500, body="Internal Server Error")
    failure = assert_one_failure_naming(await poll(source, contract.now), site, contract.path)
    assert "HTTP 500" in failure["reason"]


@pytest.mark.parametrize("body", [None, b""], ids=["cut-short", "empty"])
async def test_a_malformed_body_is_a_failure_naming_the_url(served, body):
    contract, site, source = served
    site.misbehave("malformed", path=contract.path, body=body)
    failure = assert_one_failure_naming(await poll(source, contract.now), site, contract.path)
    assert "bad response body" in failure["reason"]


async def test_a_body_over_max_body_is_refused_naming_the_cap_and_its_setting(served):
    contract, site, source = served
    cap = BodyLimit.of(contract.table, MAX_BODY)
    site.misbehave("oversized", path=contract.path, size=cap.max_bytes + 1)
    failure = assert_one_failure_naming(await poll(source, contract.now), site, contract.path)
    assert f"the {cap.max_bytes:,}-byte cap" in failure["reason"]
    assert f'[sources.{contract.table}] max_body = "{MAX_BODY}"' in failure["reason"]


async def test_one_bad_row_among_good_rows_records_the_good_and_names_the_bad(served):
    contract, site, source = served
    if contract.bad_row is None:
        pytest.skip(f"{source.name}: its format has no rows")
    site.routes[contract.path], names_it = contract.bad_row()
    events = await poll(source, contract.now)
    assert data(events), "the good rows were not recorded"
    [failure] = failures(events)
    [named] = failure["bad_rows"]
    assert names_it in named, named
    assert failure["recorded_rows"] > 0
    assert failure["url"].startswith(site.base + contract.path)
    assert_no_secret(events)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
async def test_a_refused_connection_is_a_failure_not_an_exception(name):
    with socket.socket() as s:                  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
    events = await poll(the_source(name, base), CONTRACTS[name].now)
    assert failures(events) and data(events) == []
    assert all(f["url"].startswith(base) for f in failures(events))
    assert_no_secret(events)


# ---- the suite covers every source ----

def _table_model(table: str):
    """The config model of ``[sources.<table>]`` (its annotation is ``Model | None``)."""
    annotation = SourcesConfig.model_fields[table].annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def everything_on() -> Config:
    """Every ``[sources.*]`` table there is, each with its defaults and every switch on
    (``operations = true``): what ``build_sources`` can build."""
    tables = {}
    for table in SourcesConfig.model_fields:
        model = _table_model(table)
        tables[table] = {name: True for name, spec in model.model_fields.items()
                         if spec.annotation is bool}
    return Config.model_validate({"sources": tables})


def test_every_source_the_daemon_builds_has_a_contract():
    from watchdog.sources.registry import SOURCE_NAMES      # every name a config can enable
    built = sorted(source.name for source in build_sources(everything_on(), {}))
    assert built == sorted(SOURCE_NAMES), (
        f"everything_on() built {built}, the registry lists {sorted(SOURCE_NAMES)}: a source "
        "needs a setting this test does not turn on")
    missing = [name for name in built if name not in CONTRACTS]
    assert not missing, (f"build_sources builds {missing} with no entry in CONTRACTS "
                         f"(tests/test_source_contract.py): every live source must pass the "
                         f"source contract; add one")
    assert sorted(CONTRACTS) == built, f"CONTRACTS names sources build_sources no longer builds: " \
                                       f"{sorted(set(CONTRACTS) - set(built))}"
