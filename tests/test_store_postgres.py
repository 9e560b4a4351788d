"""What the PostgreSQL log guarantees beyond the shared contract: the database itself refuses to
change a row, two writers never fork the chain, the chain is SQLite's byte for byte, and verify
finds a row changed behind the triggers' back."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from fakes import Clock
from watchdog.model.errors import ChainBroken, StoreError
from watchdog.model.events import Observation, new_observation
from watchdog.store import SqliteEventStore
from watchdog.store.postgres import PostgresEventStore, is_url, verify_url

PUB = "2025-11-03T13:00:00.000000Z"


def facts(n: int, prefix: str = "2025-10"):
    return [new_observation(Observation(series="sofr", date=f"{prefix}-{d:02d}", value=f"4.{d:02d}",
                                        unit="%", source="nyfed"), PUB) for d in range(1, n + 1)]


@pytest.fixture
def url(pg_server):
    return pg_server.new_database()


def clock():
    return Clock(datetime(2025, 11, 3, 15, tzinfo=timezone.utc))


@pytest.mark.parametrize("statement", [
    "UPDATE events SET payload = '{}' WHERE seq = 1",
    "DELETE FROM events WHERE seq = 1",
    "TRUNCATE events",
    "INSERT INTO events VALUES (5, 'x', 'k5', 'p', 'r', '{}', 'h')",            # a gap in seq
    "INSERT INTO events SELECT 3, type, key, published_at, recorded_at, payload, hash FROM events WHERE seq = 1",
])
def test_the_database_refuses_to_change_or_skip_a_row(url, statement):
    store = PostgresEventStore(url, clock())
    store.append(facts(2))
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="append-only|duplicate key"):
            conn.execute(statement)
    assert store.head()[0] == 2 and len(store.read()) == 2
    store.close()


def test_the_chain_is_sqlites_byte_for_byte(url, tmp_path):
    pg, lite = PostgresEventStore(url, clock()), SqliteEventStore(tmp_path / "e.db", clock())
    batch = facts(20) + [new_observation(Observation(series="sofr", date="2025-10-03", value="4.99",
                                                     unit="%", source="nyfed"), PUB)]
    assert [r.hash for r in pg.append(batch)] == [r.hash for r in lite.append(batch)]
    assert pg.head() == lite.head() and verify_url(url) == pg.head()
    pg.close(), lite.close()


def test_two_writers_at_once_queue_and_never_fork_the_chain(url):
    stores = [PostgresEventStore(url, clock()) for _ in range(2)]
    errors = []

    def write(store, month):
        try:
            for i in range(10):
                store.append(facts(3, prefix=f"20{10 + i}-{month}"))
        except Exception as exc:      # pragma: no cover - a failure is the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, m)) for s, m in zip(stores, ("01", "02"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [e.seq for e in stores[0].read(limit=100)] == list(range(1, 61))
    assert verify_url(url) == stores[1].head()
    for store in stores:
        store.close()


def test_verify_names_a_row_changed_behind_the_triggers(url):
    store = PostgresEventStore(url, clock())
    store.append(facts(5))
    head = store.head()
    assert verify_url(url, head_hash=head[1]) == head
    with psycopg.connect(url, autocommit=True) as conn:       # the owner can drop the guard
        conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        conn.execute("UPDATE events SET payload = replace(payload, '4.03', '9.03') WHERE seq = 3")
    with pytest.raises(ChainBroken) as caught:
        verify_url(url)
    assert caught.value.seq == 3
    store.close()


def test_a_read_only_store_appends_nothing_and_errors_hide_the_password(url, pg_server):
    reader = PostgresEventStore(url, clock(), readonly=True)
    with pytest.raises(StoreError, match="read-only"):
        reader.append(facts(1))
    reader.close()
    secret = url.replace("watchdog_test@", "watchdog_test:hunter2@").rsplit("/", 1)[0] + "/missing"
    with pytest.raises(StoreError) as caught:
        PostgresEventStore(secret, clock())
    assert "hunter2" not in str(caught.value) and "missing" in str(caught.value)
    assert is_url(url) and not is_url("events.db")


def test_the_shipped_role_appends_and_leads_but_cannot_change_a_row(url):
    # deploy/postgres-roles.sql, as README "Running two replicas" has the owner run it: the
    # daemon's role may add to the log, read it and hold the lease, so even dropping the
    # triggers is out of its reach.
    PostgresEventStore(url, clock()).close()                  # the owner creates the schema
    grants = (Path(__file__).resolve().parent.parent / "deploy" / "postgres-roles.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'watchdog'").fetchone():
            conn.execute("DROP OWNED BY watchdog")        # a role left by an earlier test database
            conn.execute("DROP ROLE watchdog")
        conn.execute(grants)
    daemon_url = url.replace("watchdog_test@", "watchdog@")
    store = PostgresEventStore(daemon_url, clock())
    assert store.acquire_lease("replica-a", 30.0) == 1
    assert len(store.append(facts(3))) == 3
    store.mark_verified(*store.head())
    assert store.verify_since_point() == store.head()
    store.release_lease()
    assert store.lease()[:2] == ("replica-a", 1) and not store.lease()[2]
    with psycopg.connect(daemon_url, autocommit=True) as conn:
        for statement in ("UPDATE events SET hash = 'x'", "DELETE FROM events", "TRUNCATE events",
                          "ALTER TABLE events DISABLE TRIGGER USER"):
            with pytest.raises(psycopg.Error, match="permission denied|must be owner"):
                conn.execute(statement)
    store.close()


LEADER = """
import sys
from datetime import datetime, timezone
from watchdog.model.errors import LeaseLost
from watchdog.model.events import NewEvent
from watchdog.store.postgres import PostgresEventStore
store = PostgresEventStore(sys.argv[1])
print("leader", store.acquire_lease("replica-a", 1.0), flush=True)
sys.stdin.readline()                                   # paused here (SIGSTOP), then woken
try:
    store.append([NewEvent(type="daemon-started", key="from-a", payload={})])
    print("appended", flush=True)
except LeaseLost as exc:
    print("lost:", exc, flush=True)
"""


def test_a_paused_leader_that_wakes_after_losing_its_lease_appends_nothing(url):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    leader = subprocess.Popen([sys.executable, "-c", LEADER, url], cwd=repo, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert leader.stdout.readline().split() == ["leader", "1"]
        os.kill(leader.pid, signal.SIGSTOP)                # paused past its 1 s lease
        standby = PostgresEventStore(url, clock())
        deadline = time.monotonic() + 30
        epoch = None
        while epoch is None and time.monotonic() < deadline:
            epoch = standby.acquire_lease("replica-b", 30.0)
            time.sleep(0.1)
        assert epoch == 2                                  # a new term, on the database's clock
        assert len(standby.append(facts(2))) == 2
        os.kill(leader.pid, signal.SIGCONT)
        out, err = leader.communicate("go\n", timeout=60)
        assert out.startswith("lost: ") and "replica-a no longer holds the leader lease (epoch 1)" in out, err
        assert standby.get("from-a") is None and standby.head()[0] == 2
        with psycopg.connect(url) as conn:
            assert {e for (e,) in conn.execute("SELECT epoch FROM events")} == {2}
        assert standby.lease() == ("replica-b", 2, True)
        standby.close()
    finally:
        if leader.poll() is None:
            os.kill(leader.pid, signal.SIGCONT)
            leader.kill()


def test_the_lease_is_renewed_by_its_leader_and_refused_to_others_until_it_expires(url):
    a, b = PostgresEventStore(url, clock()), PostgresEventStore(url, clock())
    assert a.acquire_lease("a", 30) == 1
    assert a.acquire_lease("a", 30) == 1                   # a renewal keeps the term
    assert b.acquire_lease("b", 30) is None and b.fence is None
    assert len(a.append(facts(1))) == 1
    with pytest.raises(StoreError, match="no longer holds"):
        with psycopg.connect(url, autocommit=True) as conn:   # the term ends (expired by hand)
            conn.execute("UPDATE lease SET expires_at = now() - interval '1 second'")
        a.append(facts(2))
    assert b.acquire_lease("b", 30) == 2 and a.head()[0] == 1
    a.close(), b.close()


def test_sessions_the_server_dropped_are_opened_again_and_the_append_made_once(url):
    # a database restart or failover ends every session: the store's next write and read open
    # new ones (the writer at its next transaction, the readers' pool at checkout)
    store = PostgresEventStore(url, clock())
    store.append(facts(2))
    assert len(store.read()) == 2
    with psycopg.connect(url, autocommit=True) as admin:
        dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert dropped >= 2
    assert len(store.append(facts(3))) == 1      # the writer opens a new session and appends once
    assert [e.payload["date"] for e in store.read()] == ["2025-10-01", "2025-10-02", "2025-10-03"]
    store.close()


async def test_the_daemons_asyncio_read_pages_the_log_as_read_does(url):
    store = PostgresEventStore(url, clock())
    store.append(facts(7))
    try:
        assert await store.aread(after=2, limit=3) == store.read(after=2, limit=3)
        assert [e.seq for e in await store.aread(after=5, limit=100)] == [6, 7]
    finally:
        await store.aclose()
        store.close()


def test_a_leader_stopped_inside_an_append_does_not_block_the_takeover(url):
    # SIGSTOP can land between an append's lock and its commit: the stopped leader's session
    # then holds the append lock and a share lock on the lease row. A taker gives up on the row
    # within a second instead of queueing behind it, and the server ends the stopped session
    # once it has been idle in its transaction for the lease's length, so the takeover goes on.
    import time
    leader, follower = PostgresEventStore(url, clock()), PostgresEventStore(url, clock())
    assert leader.acquire_lease("replica-a", 2.0) == 1
    leader.append(facts(1))
    stuck = leader._w                        # what a stop inside _appending leaves open:
    stuck.execute("SELECT pg_advisory_xact_lock(5168)")
    stuck.execute("SELECT 1 FROM lease WHERE id = 1 FOR SHARE")
    started = time.monotonic()
    assert follower.acquire_lease("replica-b", 2.0) is None          # the row is held: not now
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 20
    epoch = None
    while epoch is None and time.monotonic() < deadline:
        time.sleep(0.5)
        epoch = follower.acquire_lease("replica-b", 2.0)
    assert epoch == 2, "the stopped session still blocks the lease"
    assert len(follower.append(facts(2))) == 1                         # and the append lock
    assert [e.payload["date"] for e in follower.read()] == ["2025-10-01", "2025-10-02"]
    with pytest.raises(StoreError, match="no longer holds the leader lease"):
        leader.append(facts(3))                                        # it wakes: nothing appended
    assert follower.head()[0] == 2
    leader.close()
    follower.close()
