"""What only the SQLite log must guarantee: append-only triggers, a verifiable chain, safe
concurrent writers, and honest failures when the disk will not take a write."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3

import pytest

from watchdog.model.errors import ChainBroken, StoreUnavailable
from watchdog.model.events import Observation, new_observation
from watchdog.store import AsyncWriter, SqliteEventStore, verify_file

PUB = "2025-11-03T13:00:00.000000Z"


def obs_event(date: str, value: str = "4.22", series: str = "sofr"):
    return new_observation(Observation(series=series, date=date, value=value, unit="%", source="nyfed"), PUB)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "events.db"
    store = SqliteEventStore(path)
    store.append([obs_event(f"2025-10-{d:02d}") for d in range(1, 11)])
    store.close()
    return path


def test_log_uses_wal_and_full_sync(db):
    store = SqliteEventStore(db)
    assert store._w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._w.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL
    store.close()


@pytest.mark.parametrize("statement", [
    "UPDATE events SET payload = '{}' WHERE seq = 3",
    "DELETE FROM events WHERE seq = 10",
    "INSERT OR REPLACE INTO events (seq, type, key, published_at, recorded_at, payload, hash) "
    "SELECT 11, type, key, published_at, recorded_at, '{}', hash FROM events WHERE seq = 2",
    "REPLACE INTO events (seq, type, key, published_at, recorded_at, payload, hash) "
    "SELECT 3, type, key, published_at, recorded_at, '{}', hash FROM events WHERE seq = 3",
    "INSERT INTO events (seq, type, key, published_at, recorded_at, payload, hash) "
    "VALUES (20, 'x', 'gap', 'a', 'b', '{}', 'h')",
])
def test_rewrites_are_refused_on_any_connection(db, statement):
    conn = sqlite3.connect(db)          # a plain connection: no pragmas of ours
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute(statement)
        conn.commit()
    conn.close()
    assert verify_file(db)[0] == 10


def test_verify_names_the_seq_of_a_row_changed_behind_the_stores_back(db):
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("""UPDATE events SET payload = replace(payload, '4.22', '9.99') WHERE seq = 4""")
    conn.commit()
    conn.close()
    with pytest.raises(ChainBroken) as info:
        verify_file(db)
    assert str(info.value).startswith("seq 4: ")


def test_verify_accepts_an_earlier_anchor_and_refuses_an_unknown_one(db):
    store = SqliteEventStore(db)
    anchor = store.head()[1]
    store.append([obs_event("2025-10-20")])
    store.close()
    assert verify_file(db, head_hash=anchor)[0] == 11
    with pytest.raises(ChainBroken):
        verify_file(db, head_hash="f" * 64)


def _append_many(path: str, series: str, n: int) -> None:
    store = SqliteEventStore(path)
    for i in range(n):
        store.append([obs_event(f"2025-{1 + i // 28:02d}-{1 + i % 28:02d}", series=series)])
    store.close()


def test_two_processes_appending_at_once_do_not_fork_the_chain(tmp_path):
    path = str(tmp_path / "shared.db")
    SqliteEventStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(path, s, 40)) for s in ("sofr", "tgcr")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(w.exitcode == 0 for w in workers)
    assert verify_file(path)[0] == 80


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_log_is_unavailable_not_acknowledged(db):  # pragma: no cover - non-root CI
    os.chmod(db, 0o444)
    store = SqliteEventStore(db)
    with pytest.raises(StoreUnavailable):
        store.append([obs_event("2025-10-20")])


def test_a_write_refused_by_sqlite_is_unavailable_and_nothing_is_stored(db):
    store = SqliteEventStore(db)
    # A real refusal from SQLite: cap the file at its current page count (what a full disk does).
    pages = store._w.execute("PRAGMA page_count").fetchone()[0]
    store._w.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreUnavailable, match="full"):
        store.append([obs_event(f"2024-{m:02d}-{d:02d}", value="1." + "7" * 20)
                      for m in range(1, 13) for d in range(1, 28)])
    store._w.execute("PRAGMA max_page_count = 1073741823")
    assert store.head()[0] == 10
    assert len(store.append([obs_event("2025-10-20")])) == 1   # and it recovers once space is back
    store.close()


async def test_writer_batches_concurrent_appends_and_acknowledges_after_commit(tmp_path):
    store = SqliteEventStore(tmp_path / "w.db")
    writer = AsyncWriter(store)
    results = await asyncio.gather(*[writer.append([obs_event(f"2025-10-{d:02d}")]) for d in range(1, 29)])
    assert sorted(r[0].seq for r in results) == list(range(1, 29))
    assert writer.batches < 28                        # grouped into fewer durable transactions
    assert await writer.append([obs_event("2025-10-01")]) == []    # duplicate: acknowledged, nothing new
    writer.close()
    store.close()


async def test_writer_reports_a_failed_commit_to_every_caller_in_the_batch(db):
    store = SqliteEventStore(db)
    pages = store._w.execute("PRAGMA page_count").fetchone()[0]
    store._w.execute(f"PRAGMA max_page_count = {pages}")
    writer = AsyncWriter(store)
    big = [obs_event(f"2024-{m:02d}-{d:02d}", value="1." + "3" * 20) for m in range(1, 13) for d in range(1, 28)]
    with pytest.raises(StoreUnavailable):
        await writer.append(big)
    assert writer.last_error is not None
    writer.close()
    store.close()
