"""One contract, three stores: the in-memory fake and PostgreSQL are held to exactly what SQLite
does (PostgreSQL on a real server the session starts: tests/pgserver.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fakes import Clock
from watchdog.model.events import (
    DAEMON_STARTED, OBSERVATION_RECORDED, OBSERVATION_REVISED, NewEvent, Observation,
    canonical_json, chain_hash, new_observation,
)
from watchdog.store import MemoryEventStore, SqliteEventStore, iter_events, iter_published
from watchdog.store.postgres import PostgresEventStore


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def make_store(request, tmp_path):
    made = []
    url = request.getfixturevalue("pg_server").new_database() if request.param == "postgresql" else None

    def make(clock=None):
        clock = clock or Clock(datetime(2025, 11, 3, 15, tzinfo=timezone.utc))
        if request.param == "memory":
            store = MemoryEventStore(clock)
        elif request.param == "sqlite":
            store = SqliteEventStore(tmp_path / "e.db", clock)
        else:
            store = PostgresEventStore(url, clock)
        made.append(store)
        return store
    yield make
    for store in made:
        store.close()


def obs(series="sofr", date="2025-10-31", value="4.22", source="nyfed", **attrs):
    return Observation(series=series, date=date, value=value, unit="%", source=source, attributes=attrs)


PUB = "2025-11-03T13:00:00.000000Z"


def test_append_assigns_dense_seq_and_chains_hashes(make_store):
    store = make_store()
    rows = store.append([new_observation(obs(date=d), PUB) for d in ("2025-10-30", "2025-10-31")])
    assert [r.seq for r in rows] == [1, 2]
    expected = chain_hash("0" * 64, 1, rows[0].type, rows[0].key, rows[0].published_at,
                          rows[0].recorded_at, canonical_json(rows[0].payload))
    assert rows[0].hash == expected
    assert store.head() == (2, rows[1].hash)


def test_same_fact_twice_is_a_no_op(make_store):
    store = make_store()
    store.append([new_observation(obs(), PUB)])
    assert store.append([new_observation(obs(), PUB)]) == []
    assert store.append([new_observation(obs(value="4.220"), PUB)]) == []   # same number, same fact
    assert store.head()[0] == 1


def test_duplicates_inside_one_batch_are_appended_once(make_store):
    store = make_store()
    rows = store.append([new_observation(obs(), PUB), new_observation(obs(), PUB)])
    assert len(rows) == 1


def test_changed_value_becomes_a_numbered_revision_never_an_overwrite(make_store):
    store = make_store()
    store.append([new_observation(obs(), PUB)])
    first = store.append([new_observation(obs(value="4.23"), PUB)])
    second = store.append([new_observation(obs(value="4.24"), PUB)])
    assert first[0].type == OBSERVATION_REVISED and first[0].key == "obs/sofr/2025-10-31/rev/1"
    assert first[0].payload["previous_value"] == "4.22"
    assert second[0].key == "obs/sofr/2025-10-31/rev/2" and second[0].payload["previous_value"] == "4.23"
    assert store.get("obs/sofr/2025-10-31").payload["value"] == "4.22"
    # a revision was not public when the original was: it is published when the log learned it
    assert first[0].published_at == first[0].recorded_at


def test_secondary_source_fills_gaps_but_never_flips_the_primary(make_store):
    store = make_store()
    store.append([new_observation(obs(source="nyfed"), PUB)])
    assert store.append([new_observation(obs(value="4.30", source="fred"), PUB)]) == []
    filled = store.append([new_observation(obs(date="2018-04-03", value="1.83", source="fred"), PUB)])
    assert len(filled) == 1
    # the primary may revise what a secondary filled (e.g. adding percentiles)
    enriched = store.append([new_observation(obs(date="2018-04-03", value="1.83", source="nyfed", p99="1.9"), PUB)])
    assert enriched[0].type == OBSERVATION_REVISED and enriched[0].payload["attributes"] == {"p99": "1.9"}


def test_other_events_are_idempotent_by_key(make_store):
    store = make_store()
    event = NewEvent(type=DAEMON_STARTED, key="daemon/1", payload={"version": "x"})
    assert len(store.append([event])) == 1
    assert store.append([event]) == []


def test_recorded_at_never_decreases_and_facts_are_not_published_after_recording(make_store):
    clock = Clock(datetime(2025, 11, 3, 15, tzinfo=timezone.utc))
    store = make_store(clock)
    store.append([new_observation(obs(date="2025-10-30"), PUB)])
    clock.advance(hours=-1)                             # a clock step backwards
    future = "2030-01-01T00:00:00.000000Z"
    row = store.append([new_observation(obs(date="2025-10-31"), future)])[0]
    first = store.read()[0]
    assert row.recorded_at >= first.recorded_at
    assert row.published_at == row.recorded_at          # capped: not public after we knew it


def test_non_fact_events_are_published_when_recorded(make_store):
    store = make_store()
    row = store.append([NewEvent(type=DAEMON_STARTED, key="d", payload={})])[0]
    assert row.published_at == row.recorded_at


def test_read_pages_by_seq_and_filters_types(make_store):
    store = make_store()
    store.append([new_observation(obs(date=f"2025-10-{d:02d}"), PUB) for d in range(1, 31)])
    store.append([NewEvent(type=DAEMON_STARTED, key="d", payload={})])
    assert [e.seq for e in store.read(after=5, limit=3)] == [6, 7, 8]
    assert len(list(iter_events(store, types={OBSERVATION_RECORDED}, page=7))) == 30
    assert [e.type for e in iter_events(store, after=30)] == [DAEMON_STARTED]


def test_read_published_orders_by_publication_then_seq_and_cuts_at_until(make_store):
    store = make_store()
    store.append([new_observation(obs(date="2025-10-31"), "2025-11-03T13:00:00.000000Z"),
                  new_observation(obs(date="2025-10-29"), "2025-10-30T12:00:00.000000Z"),
                  new_observation(obs(date="2025-10-30"), "2025-10-31T12:00:00.000000Z")])
    dates = [e.payload["date"] for e in iter_published(store, page=2)]
    assert dates == ["2025-10-29", "2025-10-30", "2025-10-31"]
    cut = [e.payload["date"] for e in iter_published(store, until="2025-10-31T12:00:00.000000Z")]
    assert cut == ["2025-10-29", "2025-10-30"]
