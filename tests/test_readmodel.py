"""The publication order is a read model: derived from the log, kept beside it, never trusted over
it. Whatever happens to the side file, ``read_published`` returns what an ORDER BY on the log
itself returns."""
from __future__ import annotations

import os
import random
import sqlite3
import stat

import pytest

from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.store import SqliteEventStore, iter_published
from watchdog.store.readmodel import SAVE_AFTER


def obs(series: str, day: int, published: str) -> NewEvent:
    date = f"{1990 + day // 336}-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}"
    return new_observation(Observation(series=series, date=date, value=f"4.{day % 90:02d}", unit="%",
                                       source="nyfed"), published)


def at(n: int) -> str:
    return f"2025-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00.{n % 997:06d}Z"


def by_sql(path, types=None, until=None) -> list[int]:
    conn = sqlite3.connect(path)
    where, args = ["1=1"], []
    if types is not None:
        where.append(f"type IN ({','.join('?' * len(types))})")
        args += list(types)
    if until is not None:
        where.append("published_at <= ?")
        args.append(until)
    try:
        return [s for (s,) in conn.execute(f"SELECT seq FROM events WHERE {' AND '.join(where)} "
                                           "ORDER BY published_at, seq", args)]
    finally:
        conn.close()


def shuffled_history(n: int, seed: int = 7) -> list[NewEvent]:
    """Facts appended in an order unrelated to their publication (backfills, late imports), with
    ties on published_at, and some non-facts (published when recorded)."""
    rng = random.Random(seed)
    events = [obs(rng.choice(["sofr", "effr", "tgcr"]), i, at(rng.randrange(400))) for i in range(n)]
    events += [NewEvent("source-failed", f"fail/{i}", {"source": "nyfed", "error": "x"}) for i in range(5)]
    rng.shuffle(events)
    return events


def test_pages_in_publication_order_match_the_log_itself_for_any_types_and_cutoff(tmp_path):
    path = tmp_path / "events.db"
    store = SqliteEventStore(path)
    events = shuffled_history(600)
    for i in range(0, len(events), 97):
        store.append(events[i:i + 97])
    for types, until in [(None, None), ({"observation-recorded"}, None), (None, at(200)),
                         ({"source-failed"}, None), ({"observation-recorded", "observation-revised"}, at(31))]:
        got = [e.seq for e in iter_published(store, types=types, until=until, page=41)]
        assert got == by_sql(path, types, until), (types, until)
    store.close()


def test_it_follows_appends_and_is_kept_beside_the_log_for_the_next_reader(tmp_path):
    path = tmp_path / "events.db"
    store = SqliteEventStore(path)
    events = shuffled_history(SAVE_AFTER + 300)
    store.append(events[:SAVE_AFTER + 10])
    assert [e.seq for e in iter_published(store, page=5000)] == by_sql(path)
    side = f"{path}.columns"
    assert os.path.exists(side)                           # big enough to be worth keeping
    store.append(events[SAVE_AFTER + 10:])                # newer rows: merged in on the next read
    assert [e.seq for e in iter_published(store, page=5000)] == by_sql(path)
    store.close()
    reader = SqliteEventStore(path, readonly=True)        # starts from the file, reads the rest
    assert [e.seq for e in iter_published(reader, page=5000)] == by_sql(path)
    reader.close()


def test_a_side_file_of_another_log_or_garbage_is_never_believed(tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    for path, seed in [(first, 1), (second, 2)]:
        store = SqliteEventStore(path)
        store.append(shuffled_history(SAVE_AFTER + 5, seed=seed))
        list(iter_published(store))
        store.close()
    os.replace(f"{first}.columns", f"{second}.columns")    # the order of another log
    store = SqliteEventStore(second, readonly=True)
    assert [e.seq for e in iter_published(store)] == by_sql(second)
    store.close()
    with open(f"{second}.columns", "wb") as out:
        out.write(b"not a read model")
    store = SqliteEventStore(second, readonly=True)
    assert [e.seq for e in iter_published(store)] == by_sql(second)
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_log_in_a_read_only_directory_is_read_with_the_order_in_memory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "events.db"
    store = SqliteEventStore(path)
    store.append(shuffled_history(SAVE_AFTER + 5))
    store.close()
    for leftover in folder.glob("events.db*"):
        if leftover.name != "events.db":
            leftover.unlink()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        store = SqliteEventStore(path, readonly=True)
        assert [e.seq for e in iter_published(store)] == by_sql(path)
        store.close()
        assert sorted(p.name for p in folder.iterdir()) == ["events.db"]
    finally:
        folder.chmod(stat.S_IRWXU)


def test_appending_keeps_no_publication_index_and_an_old_logs_index_is_dropped(tmp_path):
    path = tmp_path / "events.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, key TEXT NOT NULL "
                 "UNIQUE, published_at TEXT NOT NULL, recorded_at TEXT NOT NULL, payload TEXT NOT NULL, "
                 "hash TEXT NOT NULL)")
    conn.execute("CREATE INDEX events_published ON events (published_at, seq)")
    conn.commit()
    conn.close()
    store = SqliteEventStore(path)
    store.append(shuffled_history(50))
    assert [e.seq for e in iter_published(store)] == by_sql(path)
    store.close()
    conn = sqlite3.connect(path)
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "events_published" not in indexes
