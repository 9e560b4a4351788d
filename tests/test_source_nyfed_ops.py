"""NY Fed repo / reverse-repo operation results (SRF and ON RRP take-up): the pure parser on the
real payload (500 operations, 2022-04-22 .. 2023-04-21) and copies of its operations, and the
source against a local aiohttp server on 127.0.0.1 serving it (and the ways a server fails)."""
from __future__ import annotations

import asyncio
import copy
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.model.config import NyFedConfig
from watchdog.model.events import (OBSERVATION_REVISED, NewEvent,
                             Observation, canonical_json)
from watchdog.sources.nyfed.operations import NyFedOperationsSource, parse_operations, quarters
from watchdog.sources.parsing import Parsed
from watchdog.store.memory import MemoryEventStore
from fakes import serve as serve_routes
from helpers import by_key, failures, observations

FIXTURE = Path(__file__).parent / "fixtures" / "nyfed" / "rp_all_all_results_last_500.json"
URL = "https://markets.newyorkfed.org/api/rp/all/all/results/last/500.json"
SEARCH = "/api/rp/results/search.json"

# 2023-04-21 18:00 UTC = 14:00 New York, after both of that day's operations.
NOW = datetime(2023, 4, 21, 18, 0, tzinfo=timezone.utc)


@lru_cache(maxsize=1)
def _real_operations() -> tuple[dict, ...]:
    # Plain json: amounts are integers (exact); only rate fields become floats, and the parser
    # never reads a rate field.
    return tuple(json.loads(FIXTURE.read_bytes())["repo"]["operations"])


def operation(operation_id: str) -> dict:
    """A private copy of one real operation, to modify."""
    [found] = [op for op in _real_operations() if op["operationId"] == operation_id]
    return copy.deepcopy(found)


def body_of(operations: list) -> bytes:
    return json.dumps({"repo": {"operations": operations}}).encode()


def parse(body: bytes, fetched_at: datetime | None = None) -> Parsed:
    return parse_operations(body, fetched_at=fetched_at, source_url=URL)


@lru_cache(maxsize=1)
def real() -> Parsed:
    """The whole real payload parsed once (as history); tests only read it."""
    return parse(FIXTURE.read_bytes())


# ---- the parser on the real payload ----

def test_real_payload_gives_one_figure_per_series_and_operation_date():
    parsed = real()
    assert parsed.bad_rows == [] and parsed.body_error is None
    keys = [e.key for e in parsed.events]
    assert len(keys) == len(set(keys))
    # 250 reverse repo operations on 249 dates (one extra SVE); 250 repo operations on 248
    # dates (one SVE and one term operation share a date with the daily operation).
    assert sum(k.startswith("obs/onrrp/") for k in keys) == 249
    assert sum(k.startswith("obs/srf/") for k in keys) == 248
    dates = [e.payload["date"] for e in parsed.events]
    assert dates == sorted(dates)          # oldest first, whatever the API's order


def test_onrrp_take_up_is_exact_billions_with_the_counterparty_split():
    # 2022-12-30, the ON RRP peak: totalAmtAccepted 2553716000000 dollars.
    day = by_key(real().events)["obs/onrrp/2022-12-30"].payload
    assert day["value"] == "2553.716" and day["unit"] == "USD bn" and day["source"] == "nyfed"
    assert day["attributes"] == {"bank": "1.5", "gse": "154.05", "mmf": "2339.616", "pd": "58.55"}
    assert sum(Decimal(v) for v in day["attributes"].values()) == Decimal(day["value"])
    assert day["provenance"]["raw_value"] == "2553716000000"
    assert day["provenance"]["raw_unit"] == "USD"
    assert day["provenance"]["operations"] == "RP 123022 1"
    assert day["provenance"]["method"] == "Fixed Rate"
    # The split arrives late: a record carrying it has no vintage (see the revision test).
    assert "vintage" not in day["provenance"]


def test_recent_onrrp_days_have_no_split_yet():
    day = by_key(real().events)["obs/onrrp/2023-04-21"].payload
    assert day["value"] == "2290.023"
    assert day["attributes"] == {}


def test_srf_take_up_in_billions_and_a_day_with_nothing_accepted_is_a_real_zero():
    keyed = by_key(real().events)
    assert keyed["obs/srf/2023-02-01"].payload["value"] == "0.011"   # 11000000 dollars
    assert keyed["obs/srf/2022-11-16"].payload["value"] == "0.01"    # 10000000 dollars
    assert keyed["obs/srf/2023-04-21"].payload["value"] == "0"
    assert keyed["obs/srf/2023-04-21"].payload["attributes"] == {}


def test_small_value_exercises_are_excluded_from_both_series():
    keyed = by_key(real().events)
    # 2022-11-17: the SVE RP 111722 99 accepted $94mn; the daily operation $2,114.345bn.
    onrrp = keyed["obs/onrrp/2022-11-17"].payload
    assert onrrp["value"] == "2114.345"
    assert onrrp["attributes"] == {"bank": "0", "gse": "101.074", "mmf": "2010.371", "pd": "2.9"}
    assert onrrp["provenance"]["operations"] == "RP 111722 1"
    assert onrrp["provenance"]["excluded"] == "RP 111722 99 (small value exercise)"
    # 2022-09-08: the repo SVE RP 090822 99 accepted $61mn; the SRF itself nothing.
    srf = keyed["obs/srf/2022-09-08"].payload
    assert srf["value"] == "0"
    assert srf["provenance"]["excluded"] == "RP 090822 99 (small value exercise)"


def test_a_date_with_only_a_small_value_exercise_has_no_figure():
    # The SVE ran at 10:00; before the 12:45 operation the day has no ON RRP take-up yet.
    assert parse(body_of([operation("RP 111722 99")])) == Parsed()


def test_sve_is_recognised_by_its_note_even_without_the_99_suffix():
    sve = operation("RP 090822 99")
    sve["operationId"] = "RP 090822 7"
    parsed = parse(body_of([sve, operation("RP 090822 2")]))
    assert by_key(parsed.events)["obs/srf/2022-09-08"].payload["value"] == "0"


def test_term_repo_operation_is_not_srf_take_up():
    # 2023-03-08: a term repo (RP 030823 1, $56mn accepted, $75mn limit, 10:30) beside the
    # overnight SRF operation that accepted nothing.
    srf = by_key(real().events)["obs/srf/2023-03-08"].payload
    assert srf["value"] == "0"
    assert srf["provenance"]["operations"] == "RP 030823 3"
    assert srf["provenance"]["excluded"] == "RP 030823 1 (term operation)"


def test_srf_is_the_sum_of_the_morning_and_afternoon_operations():
    afternoon = operation("RP 020123 2")                  # $11mn accepted, updated 13:46:22
    morning = operation("RP 020123 2")
    morning.update(operationId="RP 020123 1", releaseTime="08:15", closeTime="08:30",
                   lastUpdated="2023-02-01 08:31:05", totalAmtAccepted=5000000)
    morning["details"][0]["amtAccepted"] = 5000000
    event = by_key(parse(body_of([afternoon, morning])).events)["obs/srf/2023-02-01"]
    assert event.payload["value"] == "0.016"
    assert event.payload["provenance"]["operations"] == "RP 020123 2, RP 020123 1"
    # Published when the later of the two was: 13:46:22 New York (EST) = 18:46:22 UTC.
    assert event.published_at == "2023-02-01T18:46:22.000000Z"


def test_details_are_authoritative_when_the_total_disagrees_and_both_are_recorded():
    # The real disagreeing record: RP 111722 99 has totalAmtAccepted 0 but details (and its
    # counterparty split) of $94mn. Stripped of its SVE markers it is counted as $94mn.
    op = operation("RP 111722 99")
    op.update(operationId="RP 111722 1", note="", releaseTime="12:45", closeTime="13:15")
    day = by_key(parse(body_of([op])).events)["obs/onrrp/2022-11-17"].payload
    assert day["value"] == "0.094"
    assert day["attributes"] == {"bank": "0.008", "gse": "0.012", "mmf": "0.051", "pd": "0.023"}
    assert day["provenance"]["total_amt_accepted"] == "0"
    assert day["provenance"]["details_amt_accepted"] == "94000000"
    assert day["provenance"]["amount_disagreement"] == "RP 111722 1"


def test_agreeing_total_and_details_leave_no_disagreement_in_provenance():
    day = by_key(real().events)["obs/srf/2023-02-01"].payload
    assert not {"total_amt_accepted", "details_amt_accepted", "amount_disagreement"} & set(
        day["provenance"])


def test_full_allotment_format_without_details_or_rate_fields_uses_the_total():
    # No fixture exists for the 2025 format: a copy of a real SRF operation reshaped the way the
    # FAQ describes it (fixed rate, full allotment), with no details and no minimumBidRate.
    op = operation("RP 020123 2")
    op.update(operationMethod="Full Allotment", percentOfferingRate=3.75,
              totalAmtAccepted=50350000000)
    del op["details"], op["operationLimit"]
    day = by_key(parse(body_of([op])).events)["obs/srf/2023-02-01"].payload
    assert day["value"] == "50.35"
    assert day["provenance"]["method"] == "Full Allotment"
    assert day["provenance"]["amount_from_total"] == "RP 020123 2"


def test_details_without_rate_fields_are_still_summed():
    op = operation("RP 020123 2")
    op["operationMethod"] = "Fixed Rate Full Allotment"
    for item in op["details"]:
        for name in ("minimumBidRate", "percentHighRate", "percentLowRate",
                     "percentStopOutRate", "percentWeightedAverageRate"):
            item.pop(name, None)
    parsed = parse(body_of([op]))
    assert parsed.bad_rows == []
    assert parsed.events[0].payload["value"] == "0.011"


def test_published_at_is_last_updated_new_york_time_in_utc():
    keyed = by_key(real().events)
    summer = keyed["obs/onrrp/2023-04-21"]             # 13:15:49 EDT
    assert summer.published_at == "2023-04-21T17:15:49.000000Z"
    assert summer.payload["provenance"]["vintage"] == "2023-04-21T17:15:49.000000Z"
    assert keyed["obs/onrrp/2022-12-30"].published_at == "2022-12-30T18:16:01.000000Z"  # EST


def test_a_record_edited_after_its_day_is_dated_by_its_edit():
    # RP 010523 1 (2023-01-05, $2,242.486bn) was updated on 2023-01-13 16:57 with a note that
    # $3.6bn did not settle: the value read now is only known to stand since then.
    day = by_key(real().events)["obs/onrrp/2023-01-05"]
    assert day.payload["value"] == "2242.486"
    assert day.published_at == "2023-01-13T21:57:00.000000Z"
    assert day.payload["provenance"]["notes"] == (
        "The settled amount is $3.6 billion less than the accepted amount due to unsettled trades.")


def test_without_last_updated_the_nominal_publication_time_is_used():
    rrp, repo = operation("RP 042123 1"), operation("RP 042123 2")
    rrp["lastUpdated"] = None
    del repo["lastUpdated"]
    keyed = by_key(parse(body_of([rrp, repo])).events)
    assert keyed["obs/onrrp/2023-04-21"].published_at == "2023-04-21T17:15:00.000000Z"  # 13:15 ET
    assert keyed["obs/srf/2023-04-21"].published_at == "2023-04-21T17:45:00.000000Z"    # 13:45 ET
    assert "vintage" not in keyed["obs/srf/2023-04-21"].payload["provenance"]


def test_live_published_at_is_capped_at_the_fetch_time():
    fetched = datetime(2023, 4, 21, 17, 30, 0, 250000, tzinfo=timezone.utc)  # 13:30 ET
    keyed = by_key(parse(FIXTURE.read_bytes(), fetched_at=fetched).events)
    assert keyed["obs/onrrp/2023-04-21"].published_at == "2023-04-21T17:15:49.000000Z"
    assert keyed["obs/srf/2023-04-21"].published_at == "2023-04-21T17:30:00.250000Z"


def test_late_counterparty_split_is_a_different_fact_for_the_same_date():
    real = operation("RP 022823 1")            # carries its split as fetched on 2023-04-21
    same_day = copy.deepcopy(real)
    del same_day["propositions"]               # as it stood at 13:15 on 2023-02-28
    first = parse(body_of([same_day])).events[0]
    later = parse(body_of([real])).events[0]
    assert first.key == later.key == "obs/onrrp/2023-02-28"
    assert first.payload["value"] == later.payload["value"] == "2188.035"
    assert first.payload["attributes"] == {}
    assert later.payload["attributes"] == {"bank": "0", "gse": "84.2", "mmf": "2097.335",
                                           "pd": "6.5"}
    facts = [Observation(**e.payload).fact_identity() for e in (first, later)]
    assert facts[0] != facts[1]


def test_late_split_becomes_a_revision_dated_when_the_log_learned_it():
    real = operation("RP 022823 1")
    same_day = copy.deepcopy(real)
    del same_day["propositions"]
    clock = [datetime(2023, 2, 28, 18, 20, tzinfo=timezone.utc)]
    store = MemoryEventStore(now=lambda: clock[0])
    [recorded] = store.append(parse(body_of([same_day])).events)
    assert recorded.published_at == "2023-02-28T18:15:57.000000Z"
    clock[0] = datetime(2023, 4, 21, 18, 0, tzinfo=timezone.utc)
    [revised] = store.append(parse(body_of([real])).events)
    assert revised.type == OBSERVATION_REVISED and revised.key == "obs/onrrp/2023-02-28/rev/1"
    assert revised.payload["previous_attributes"] == {}
    assert revised.payload["attributes"]["mmf"] == "2097.335"
    # lastUpdated did not move when the split was added: dating the revision by it would let a
    # replay know the split seven weeks early.
    assert revised.published_at == revised.recorded_at == "2023-04-21T18:00:00.000000Z"
    assert store.append(parse(body_of([real])).events) == []       # seen: a no-op


def test_a_corrected_amount_is_a_revision_dated_by_the_source():
    corrected = operation("RP 020123 2")
    corrected.update(totalAmtAccepted=12000000, lastUpdated="2023-02-02 09:00:00")
    corrected["details"][0]["amtAccepted"] = 12000000
    store = MemoryEventStore(now=lambda: datetime(2023, 2, 3, tzinfo=timezone.utc))
    store.append(parse(body_of([operation("RP 020123 2")])).events)
    [revised] = store.append(parse(body_of([corrected])).events)
    assert revised.type == OBSERVATION_REVISED
    assert (revised.payload["previous_value"], revised.payload["value"]) == ("0.011", "0.012")
    assert revised.published_at == "2023-02-02T14:00:00.000000Z"


def test_an_empty_operations_list_is_not_yet_published():
    assert parse(b'{"repo": {"operations": []}}') == Parsed()


def test_events_are_canonical_json_with_string_numbers():
    for event in real().events:
        assert json.loads(canonical_json(event.payload)) == event.payload
        assert isinstance(event.payload["value"], str)


# ---- the parser on broken payloads ----

def test_html_error_page_is_one_body_error():
    parsed = parse(b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>")
    assert parsed.events == [] and parsed.bad_rows == []
    assert parsed.body_error.startswith("not JSON: the body looks like HTML/XML")


def test_truncated_json_is_reported_as_truncated():
    parsed = parse(FIXTURE.read_bytes()[:1000])
    assert parsed.events == []
    assert parsed.body_error.startswith("not JSON: truncated after 1000 characters")


@pytest.mark.parametrize("old, new, reason", [
    (b'"repo"', b'"repos"', "no 'repo' field in the JSON object (top-level fields: 'repos')"),
    (b'"operations"', b'"operation"',
     "no 'operations' field in the JSON object (top-level fields: 'operation')"),
])
def test_renamed_envelope_field_is_named_in_the_reason(old, new, reason):
    body = FIXTURE.read_bytes().replace(old, new, 1)
    assert parse(body) == Parsed(body_error=reason)


@pytest.mark.parametrize("body, reason", [
    (b"", "empty body where JSON was expected"),
    (b"[]", "expected a JSON object with 'repo', got a JSON array"),
    (b'{"repo": []}', "'repo' is a JSON array, expected an object with 'operations'"),
    (b'{"repo": {"operations": {}}}', "'operations' is a JSON object, expected an array"),
])
def test_a_body_that_is_not_the_envelope_gives_one_precise_reason(body, reason):
    assert parse(body) == Parsed(body_error=reason)


def test_bad_operations_are_named_and_never_leave_a_short_daily_sum():
    no_date = operation("RP 042123 1")            # ON RRP 2023-04-21: its date from the id
    del no_date["operationDate"]
    bad_amount = operation("RP 042023 2")         # SRF 2023-04-20
    bad_amount["details"][1]["amtAccepted"] = "n/a x"
    unknown = operation("RP 041923 1")            # a type we cannot file: both series dropped
    unknown["operationType"] = "Outright Purchase"
    repeated = operation("RP 041823 2")
    good = [operation(i) for i in ("RP 042123 2", "RP 042023 1", "RP 041923 2",
                                   "RP 041823 1", "RP 041823 2", "RP 041423 1")]
    bad_sve = operation("RP 111722 99")           # excluded anyway: costs no figure
    bad_sve["totalAmtAccepted"] = "lots"
    bad_split = operation("RP 022823 1")
    bad_split["propositions"][2]["amtAccepted"] = None
    parsed = parse(body_of([no_date, bad_amount, unknown, repeated, *good, "RP 1",
                            bad_sve, bad_split]))
    # 04-21 keeps its SRF, 04-20 and 04-18 their ON RRP, 04-19 nothing; 2022-11-17 (only the
    # SVE) and 2023-02-28 (bad split) nothing.
    assert sorted(by_key(parsed.events)) == [
        "obs/onrrp/2023-04-14", "obs/onrrp/2023-04-18", "obs/onrrp/2023-04-20",
        "obs/srf/2023-04-21"]
    assert parsed.bad_rows == [
        "operation 1 (RP 042123 1 ?): operationDate: missing; onrrp for 2023-04-21 not recorded",
        "operation 2 (RP 042023 2 2023-04-20): details[1].amtAccepted: not a number: 'n/a x'; "
        "srf for 2023-04-20 not recorded",
        "operation 3 (RP 041923 1 2023-04-19): operationType: unknown 'Outright Purchase' "
        "(expected 'Repo' or 'Reverse Repo'); onrrp for 2023-04-19 not recorded; "
        "srf for 2023-04-19 not recorded",
        "operation 9 (RP 041823 2 2023-04-18): operationId: repeats operation 4; "
        "srf for 2023-04-18 not recorded",
        "operation 11 (?): expected a JSON object, got a JSON string",
        "operation 13 (RP 022823 1 2023-02-28): propositions[2].amtAccepted: missing; "
        "onrrp for 2023-02-28 not recorded",
    ]
    # The SVE's bad total is never read: nothing to report, nothing dropped.
    assert not any("RP 111722 99" in reason for reason in parsed.bad_rows)


@pytest.mark.parametrize("change, reason", [
    ({"totalAmtAccepted": -5, "details": []}, "totalAmtAccepted: implausible amount -5"),
    ({"totalAmtAccepted": 10 ** 400, "details": []}, "totalAmtAccepted: implausible magnitude"),
    ({"details": [], "totalAmtAccepted": None},
     "no accepted amount: neither details[].amtAccepted nor totalAmtAccepted"),
    ({"details": "none"}, "details: a JSON string, expected an array"),
    ({"term": "Weekly"}, "term: unknown 'Weekly' (expected 'Overnight' or 'Term')"),
    ({"term": None}, "term: missing"),
    ({"operationDate": "1899-12-29"}, "operationDate: date out of range (1900-2199): '1899-12-29'"),
    ({"operationDate": "2023-02-30"}, "operationDate: not a date (YYYY-MM-DD): '2023-02-30'"),
    ({"operationType": 7}, "operationType: not a string: 7"),
])
def test_each_malformed_field_is_named(change, reason):
    op = operation("RP 020123 2")
    op.update(change)
    parsed = parse(body_of([op]))
    assert parsed.events == []
    [bad] = parsed.bad_rows
    assert reason in bad


def test_an_unreadable_last_updated_is_ignored_not_an_error():
    op = operation("RP 020123 2")
    op["lastUpdated"] = "yesterday"
    parsed = parse(body_of([op]))
    assert parsed.bad_rows == []
    assert parsed.events[0].published_at == "2023-02-01T18:45:00.000000Z"   # nominal 13:45 ET


# ---- fuzz: nothing a server can send makes the parser raise ----

JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=12) | st.sampled_from([
                    "Repo", "Reverse Repo", "Overnight", "Term", "2023-04-21", "0001-01-01",
                    "2023-04-21 13:15:49", "9999-12-31 23:59:59", "RP 042123 1", "RP 123199 99",
                    "1e999999", "-0", "NaN", "Small Value Exercise", "bank", "", " "]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=16)
FIELDS = ["operationId", "operationDate", "operationType", "operationMethod", "term", "note",
          "lastUpdated", "totalAmtAccepted", "details", "propositions", "auctionStatus"]


def _assert_parsed(parsed: Parsed) -> None:
    assert isinstance(parsed, Parsed)
    for event in parsed.events:
        Observation(**event.payload)
        canonical_json(event.payload)


# Modest example counts keep the file under its 5-second budget; the mutated real operations
# reach the deep paths that random JSON rarely does.
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(body):
    _assert_parsed(parse(body))


@FUZZ
@given(JSON_VALUES)
def test_arbitrary_json_anywhere_in_the_envelope_never_raises(value):
    for shape in (value, {"repo": value}, {"repo": {"operations": value}},
                  {"repo": {"operations": [value]}}):
        _assert_parsed(parse(json.dumps(shape).encode()))


@FUZZ
@given(st.sampled_from(["RP 042123 1", "RP 042123 2", "RP 022823 1", "RP 111722 99"]),
       st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, min_size=1, max_size=3),
       st.sampled_from(["details", "propositions", None]), JSON_VALUES)
def test_real_operations_with_arbitrary_fields_never_raise(op_id, changes, inner, inner_value):
    op = operation(op_id)
    op.update(changes)
    if inner and isinstance(op.get(inner), list) and op[inner] and isinstance(op[inner][0], dict):
        op[inner][0]["amtAccepted"] = inner_value
    _assert_parsed(parse(body_of([op, operation("RP 042023 1")])))


# ---- the source against a local server ----

def config(base_url: str, **kw) -> NyFedConfig:
    return NyFedConfig(base_url=base_url, operations=True, **{"retries": 0, **kw})


async def serve(aiohttp_server, answer):
    """The shared local site answering the search path with ``answer``: (its URL, requests)."""
    return await serve_routes(aiohttp_server, {SEARCH: answer})


async def poll(source: NyFedOperationsSource, now: datetime = NOW) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


async def backfill(source: NyFedOperationsSource, since: date,
                   now: datetime = NOW) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        return await source.backfill(session, since, now)


async def test_poll_searches_far_enough_back_for_late_splits(aiohttp_server):
    base, seen = await serve(aiohttp_server, FIXTURE.read_bytes())
    events = await poll(NyFedOperationsSource(config(base, lookback_days=10)))
    assert failures(events) == []
    assert len(observations(events)) == 497
    # 100 days back from New York's 2023-04-21 (lookback_days=10 is shorter than the split lag).
    assert dict(seen[0].query) == {"startDate": "2023-01-11", "endDate": "2023-04-21"}
    day = by_key(events)["obs/onrrp/2023-04-21"]
    assert day.payload["value"] == "2290.023"
    assert day.payload["provenance"]["url"] == (
        f"{base}{SEARCH}?startDate=2023-01-11&endDate=2023-04-21")


async def test_a_longer_lookback_widens_the_search(aiohttp_server):
    base, seen = await serve(aiohttp_server, b'{"repo": {"operations": []}}')
    late_evening_ny = datetime(2023, 4, 22, 3, 0, tzinfo=timezone.utc)    # 23:00 ET, 04-21
    assert await poll(NyFedOperationsSource(config(base, lookback_days=365)), late_evening_ny) == []
    assert dict(seen[0].query) == {"startDate": "2022-04-21", "endDate": "2023-04-21"}


async def test_an_empty_answer_records_nothing_and_fails_nothing(aiohttp_server):
    base, _ = await serve(aiohttp_server, b'{"repo": {"operations": []}}')
    assert await poll(NyFedOperationsSource(config(base))) == []


async def test_poll_caps_published_at_at_the_fetch_clock(aiohttp_server):
    base, _ = await serve(aiohttp_server, FIXTURE.read_bytes())
    fetched = datetime(2023, 4, 21, 17, 40, 0, 5, tzinfo=timezone.utc)     # 13:40 ET
    source = NyFedOperationsSource(config(base), clock_now=lambda: fetched)
    events = await poll(source, datetime(2023, 4, 21, 17, 39, tzinfo=timezone.utc))
    assert by_key(events)["obs/srf/2023-04-21"].published_at == "2023-04-21T17:40:00.000005Z"


async def test_backfill_requests_one_quarter_at_a_time_and_does_not_cap(aiohttp_server):
    base, seen = await serve(aiohttp_server, FIXTURE.read_bytes())
    early = datetime(2023, 4, 21, 17, 0, tzinfo=timezone.utc)   # before that day's results
    source = NyFedOperationsSource(config(base), clock_now=lambda: early)
    events = await backfill(source, date(2022, 11, 17), early)
    assert [(r.query["startDate"], r.query["endDate"]) for r in seen] == [
        ("2022-11-17", "2022-12-31"), ("2023-01-01", "2023-03-31"), ("2023-04-01", "2023-04-21")]
    assert failures(events) == []
    # History: the source's own time, even though it is after this (test's) fetch clock.
    assert by_key(events)["obs/onrrp/2023-04-21"].published_at == "2023-04-21T17:15:49.000000Z"


def test_quarters_cut_a_range_at_quarter_ends():
    assert quarters(date(2022, 12, 31), date(2023, 7, 1)) == [
        (date(2022, 12, 31), date(2022, 12, 31)), (date(2023, 1, 1), date(2023, 3, 31)),
        (date(2023, 4, 1), date(2023, 6, 30)), (date(2023, 7, 1), date(2023, 7, 1))]
    assert quarters(date(2023, 5, 2), date(2023, 5, 1)) == []


async def test_a_failing_backfill_chunk_does_not_hide_the_others(aiohttp_server):
    async def second_quarter_down(request):
        if request.query["startDate"] == "2023-04-01":
            return web.Response(status=503, text="Service Unavailable")
        return web.Response(body=FIXTURE.read_bytes(), content_type="application/json")
    base, _ = await serve(aiohttp_server, second_quarter_down)
    events = await backfill(NyFedOperationsSource(config(base)), date(2023, 1, 1))
    assert [f["reason"] for f in failures(events)] == [
        "operations 2023-04-01..2023-04-21: HTTP 503: Service Unavailable"]
    assert len(observations(events)) == 497


async def test_http_500_becomes_a_source_failed_event(aiohttp_server):
    async def broken(request):
        return web.Response(status=500, text="Internal Server Error")
    base, _ = await serve(aiohttp_server, broken)
    events = await poll(NyFedOperationsSource(config(base)))
    [failure] = failures(events)
    assert failure["source"] == "nyfed-operations"
    assert failure["reason"] == "operations 2023-01-11..2023-04-21: HTTP 500: Internal Server Error"
    assert failure["url"] == f"{base}{SEARCH}?startDate=2023-01-11&endDate=2023-04-21"
    assert observations(events) == []


async def test_a_transient_503_is_retried_when_retries_are_configured(aiohttp_server):
    answers = [web.Response(status=503, text="busy")]

    async def flaky(request):
        return answers.pop() if answers else web.Response(
            body=FIXTURE.read_bytes(), content_type="application/json")
    base, seen = await serve(aiohttp_server, flaky)
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)
    events = await poll(NyFedOperationsSource(config(base, retries=1), sleep=no_wait))
    assert failures(events) == [] and len(observations(events)) == 497
    assert len(seen) == 2 and len(waits) == 1


async def test_timeout_becomes_a_source_failed_event(aiohttp_server):
    release = asyncio.Event()

    async def slow(request):
        try:
            await asyncio.wait_for(release.wait(), 10)
        except asyncio.TimeoutError:
            pass
        return web.Response(body=FIXTURE.read_bytes(), content_type="application/json")
    base, _ = await serve(aiohttp_server, slow)
    try:
        events = await poll(NyFedOperationsSource(config(base, timeout="1s")))
    finally:
        release.set()
    [failure] = failures(events)
    assert failure["reason"] == "operations 2023-01-11..2023-04-21: timeout after 1s"
    assert observations(events) == []


async def test_html_page_served_as_200_is_a_failure_saying_it_is_html(aiohttp_server):
    async def portal(request):
        return web.Response(text="<html><body>Service Unavailable</body></html>",
                            content_type="text/html")
    base, _ = await serve(aiohttp_server, portal)
    events = await poll(NyFedOperationsSource(config(base)))
    [failure] = failures(events)
    assert failure["reason"].startswith("operations 2023-01-11..2023-04-21: bad response body: "
                                        "not JSON: the body looks like HTML/XML")


@pytest.mark.parametrize("body, reason", [
    (FIXTURE.read_bytes()[:700], "not JSON: truncated after 700 characters"),
    (FIXTURE.read_bytes().replace(b'"operations"', b'"results"', 1),
     "no 'operations' field in the JSON object (top-level fields: 'results')"),
])
async def test_truncated_and_renamed_payloads_are_failures(aiohttp_server, body, reason):
    base, _ = await serve(aiohttp_server, body)
    events = await poll(NyFedOperationsSource(config(base)))
    [failure] = failures(events)
    assert failure["reason"].startswith(f"operations 2023-01-11..2023-04-21: bad response body: "
                                        f"{reason}")
    assert observations(events) == []


async def test_poll_records_good_dates_and_one_failure_naming_the_bad_operations(aiohttp_server):
    bad = operation("RP 042123 2")
    bad["totalAmtAccepted"] = "abc"
    del bad["details"]
    body = body_of([bad, operation("RP 042123 1"), operation("RP 042023 1"),
                    operation("RP 042023 2")])
    base, _ = await serve(aiohttp_server, body)
    events = await poll(NyFedOperationsSource(config(base)))
    assert sorted(by_key(observations(events))) == [
        "obs/onrrp/2023-04-20", "obs/onrrp/2023-04-21", "obs/srf/2023-04-20"]
    [failure] = failures(events)
    assert failure["bad_rows"] == [
        "operation 1 (RP 042123 2 2023-04-21): totalAmtAccepted: not a number: 'abc'; "
        "srf for 2023-04-21 not recorded"]
    assert failure["recorded_rows"] == 3
    assert failure["reason"] == ("operations 2023-01-11..2023-04-21: 1 bad row(s) rejected, "
                                 "3 recorded")


async def test_a_refused_connection_is_a_failure_not_an_exception():
    events = await poll(NyFedOperationsSource(config("http://127.0.0.1:1")))
    [failure] = failures(events)
    assert failure["reason"].startswith("operations 2023-01-11..2023-04-21: ClientConnectorError")
