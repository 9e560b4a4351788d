"""PostgreSQL event log: the same table, chain and contract as the SQLite store, for a log that
several replicas share (issue 16).

The schema mirrors SQLite's so a log moves between the two hash for hash: ``payload`` is the
canonical text (never ``jsonb``, which would re-serialise it and change the bytes the chain
hashes), times are the same UTC text. Append-only is enforced by the database, not by us:

- a BEFORE INSERT trigger refuses a ``seq`` that is not ``max(seq) + 1`` and a reused key
  (the UNIQUE index refuses it too);
- BEFORE UPDATE, BEFORE DELETE and BEFORE TRUNCATE triggers refuse to change a row. The
  deployment also grants the daemon's role INSERT and SELECT only (README "Running two
  replicas"), so the log stays append-only even if the triggers were dropped by its owner.

One append is one transaction that takes a transaction-scoped advisory lock (readers are never
blocked, and it needs no privilege beyond INSERT), re-reads the chain head under it and inserts
the planned rows; so two writers (two replicas, ``watchdog import`` beside a daemon) queue and
never fork the chain. A writer that skipped the lock still could not: the trigger and the
primary key refuse a second row with the same ``seq``. READ COMMITTED readers see only committed
rows, and appends commit one after another in ``seq`` order (each holds the lock until its
commit), so a reader paging by ``seq`` never skips one.

The leader lease (``acquire_lease``, one row renewed on the database's clock) fences appends:
once a store holds it, every append checks, in its own transaction and under a share lock on the
lease row, that the lease is still its own and unexpired, and stamps its epoch on the rows (the
``epoch`` column, outside the hash). A replica paused or partitioned past its lease wakes to
``LeaseLost`` and appends nothing. The daemon's side (who polls, follows, takes over) is
``watchdog.daemon.replica``.

psycopg 3, imported only when a ``postgresql://`` log is opened: SQLite installs need nothing
more. The password comes from the URL's environment (``PGPASSWORD``) or a passfile, never from
the config file; errors name the log by its URL without the password.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from watchdog.model.errors import ChainBroken, LeaseLost, StoreError, StoreUnavailable
from watchdog.model.events import ZERO_HASH, NewEvent, StoredEvent
from watchdog.model.redact import redact_url
from watchdog.model.timefmt import utc_text
from watchdog.store.plan import Head, check_copied, plan_rows, walk_chain

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq BIGINT PRIMARY KEY,
  type TEXT NOT NULL,
  key TEXT NOT NULL UNIQUE,
  published_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  payload TEXT NOT NULL,
  hash TEXT NOT NULL,
  epoch BIGINT             -- the leader lease epoch the row was written under (not hashed)
);
CREATE TABLE IF NOT EXISTS lease (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  holder TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS events_published ON events (published_at, seq);
CREATE INDEX IF NOT EXISTS events_type ON events (type, seq);
CREATE TABLE IF NOT EXISTS verified (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq IS DISTINCT FROM (SELECT coalesce(max(seq), 0) + 1 FROM events) THEN
    RAISE EXCEPTION 'events is append-only: seq must be max(seq)+1 and keys are never reused';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION events_unchangeable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events: the log is append-only (no %)', TG_OP;
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only') THEN
    CREATE TRIGGER events_append_only BEFORE INSERT ON events
      FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
      FOR EACH ROW EXECUTE FUNCTION events_unchangeable();
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
      FOR EACH ROW EXECUTE FUNCTION events_unchangeable();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
      FOR EACH STATEMENT EXECUTE FUNCTION events_unchangeable();
  END IF;
END $$;
"""

CHANNEL = "watchdog_events"      # NOTIFY after each append: a follower's wake-up, never its data
_COLUMNS = "seq, type, key, published_at, recorded_at, payload, hash"
READERS = 4                      # pooled reader connections per store
LOCK_WAIT = "1s"                 # the longest a lease taker waits for the lease row
_SCHEMA_LOCK, _APPEND_LOCK = 5167, 5168      # advisory lock ids (any writer of this log takes them)
_INSERT = ("INSERT INTO events (seq, type, key, published_at, recorded_at, payload, hash, epoch) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")


def is_url(target: str) -> bool:
    """Whether a ``--db`` / ``[store]`` target names a PostgreSQL log rather than a file."""
    return target.startswith(("postgresql://", "postgres://"))


def _psycopg():
    try:
        import psycopg
    except ImportError:                          # pragma: no cover - depends on the install
        raise StoreError("a postgresql:// event log needs psycopg: pip install 'watchdog[postgres]'") from None
    return psycopg


def translate(exc: Exception, name: str) -> StoreError:
    """psycopg errors at the edge: a lost or refused connection is worth retrying."""
    psycopg = _psycopg()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(f"event log {name}: {text}")
    return StoreError(f"event log {name}: {text}")


def _rows(rows: list[tuple]) -> list[StoredEvent]:
    loads = orjson.loads
    return [StoredEvent(seq, type_, key, published, recorded, loads(payload), digest)
            for seq, type_, key, published, recorded, payload, digest in rows]


class PostgresEventStore:
    """The shared store. Thread-safe: one lock guards the writer connection; readers take a
    connection from a small pool."""

    def __init__(self, url: str, now: Callable[[], datetime] | None = None, readonly: bool = False):
        psycopg = _psycopg()
        self.fence: tuple[str, int] | None = None    # (holder, epoch): appends only while leader
        self.url = url
        self.name = self.path = redact_url(url)     # how messages and the daemon name the log
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._wlock = threading.Lock()
        try:
            self._w = None if readonly else psycopg.connect(url)
            if self._w is not None:
                with self._w.transaction():
                    # one schema creation at a time, whichever replica starts first; a log that
                    # exists is left alone, so a role granted only INSERT and SELECT can open it
                    self._w.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    if self._w.execute("SELECT to_regclass('events')").fetchone()[0] is None:
                        self._w.execute(SCHEMA)
            else:                                # the reason, if the log cannot be reached
                psycopg.connect(url, autocommit=True).close()
        except psycopg.Error as exc:
            raise translate(exc, self.name) from exc
        self._pool = _reader_pool(url, self.name)
        self._apool = None                        # the daemon's asyncio readers (aread)
        self._settings: dict[str, str] = {}       # session settings kept across reconnects

    def check_file(self) -> None:
        """Nothing to check: a server log cannot be replaced under an open connection."""

    # ---- the verified point (not part of the chain) ----
    def verified_point(self) -> tuple[int, str]:
        rows = self._query("SELECT seq, hash FROM verified WHERE id = 1", [])
        return (rows[0][0], rows[0][1]) if rows else (0, ZERO_HASH)

    def mark_verified(self, seq: int, digest: str) -> None:
        if self._w is None:
            return
        self._transaction(lambda conn: conn.execute(
            "INSERT INTO verified (id, seq, hash) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash", (seq, digest)))

    def verify_since_point(self) -> tuple[int, str]:
        return verify_url(self.url, since=self.verified_point())

    # ---- writing ----
    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        if not events:
            return []

        def write(conn, epoch):
            stored, params = self._plan(events)
            with conn.cursor() as cur:
                cur.executemany(_INSERT, [(*row, epoch) for row in params])
            return stored
        return self._appending(write)

    def copy_rows(self, rows: Sequence[tuple]) -> int:
        """``SqliteEventStore.copy_rows``: rows exactly as another log holds them, checked to
        continue this chain, appended under the append lock."""
        def write(conn, epoch):
            last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            check_copied(rows, last or (0, ZERO_HASH))
            with conn.cursor() as cur:
                cur.executemany(_INSERT, [(*row, epoch) for row in rows])
            return len(rows)
        return self._appending(write)

    def _appending(self, write: Callable[[Any, int | None], Any]) -> Any:
        """Run ``write(connection, epoch)`` as one append: one transaction holding the append
        lock (writers queue here, readers are never blocked; an advisory lock needs no privilege
        beyond INSERT, where LOCK TABLE ... EXCLUSIVE would need UPDATE), fenced by the leader
        lease when this store holds it."""
        def locked(conn):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            written = write(conn, self._check_fence())
            if written:                          # delivered at commit: followers wake and read
                conn.execute(f"NOTIFY {CHANNEL}")
            return written
        return self._transaction(locked)

    def _transaction(self, body: Callable[[Any], Any]) -> Any:
        """``body(connection)`` as one write transaction. A session the server dropped (a
        restart, a failover of the database) is opened again and the transaction run once more:
        safe, because an append re-plans under the lock and its keys are idempotent, so one that
        did commit before the drop appends nothing the second time."""
        if self._w is None:
            raise StoreError(f"event log {self.name}: opened read-only")
        psycopg = _psycopg()
        with self._wlock:
            for attempt in (1, 2):
                try:
                    if self._w.closed or self._w.broken:
                        self._w = psycopg.connect(self.url)
                        for name, value in self._settings.items():    # this session's, again
                            self._w.execute("SELECT set_config(%s, %s, false)", (name, value))
                        self._w.commit()
                    with self._w.transaction():
                        return body(self._w)
                except psycopg.Error as exc:      # the session gone (whatever the class:
                    if attempt == 2 or not self._w.broken:   # an idle timeout is "internal")
                        raise translate(exc, self.name) from exc

    def raw_rows(self, after: int = 0, limit: int = 5000) -> list[tuple]:
        return self._query(f"SELECT {_COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
                           [after, limit])

    # ---- the leader lease (fencing) ----
    def acquire_lease(self, holder: str, ttl_s: float) -> int | None:
        """Take or renew the leader lease for ``ttl_s`` seconds on the database's clock (never
        ours: replicas' clocks differ). Free, expired or already ``holder``'s: it is taken, the
        epoch rising by one on every change of holder, and from then on every append of this
        store is fenced by it (``fence``). Held by another, unexpired: None, nothing changes.
        Returns the epoch held."""
        # A leader stopped (SIGSTOP) inside an append keeps its transaction, and the locks on
        # the lease row and the append lock, open: nobody could take over. So a leading session
        # is ended by the server once idle in a transaction for the lease's length; and a taker
        # waits at most LOCK_WAIT for the row (it tries again at its next turn).
        idle = str(max(1000, int(ttl_s * 1000)))

        def take(conn) -> int | None:
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            row = conn.execute("SELECT holder, epoch, expires_at >= now() FROM lease "
                               "WHERE id = 1 FOR UPDATE").fetchone()
            if row is None:
                conn.execute("INSERT INTO lease (id, holder, epoch, expires_at) VALUES "
                             "(1, %s, 1, now() + make_interval(secs => %s))", (holder, ttl_s))
                epoch = 1
            elif row[0] == holder and row[2] and self.fence == (holder, row[1]):
                conn.execute("UPDATE lease SET expires_at = now() + make_interval(secs => %s) "
                             "WHERE id = 1", (ttl_s,))
                epoch = row[1]                    # a renewal by the leader itself
            elif row[2]:
                return None                       # another replica leads
            else:
                epoch = row[1] + 1                # expired: a new term
                conn.execute("UPDATE lease SET holder = %s, epoch = %s, expires_at = "
                             "now() + make_interval(secs => %s) WHERE id = 1", (holder, epoch, ttl_s))
            # only a session that leads is ended when it idles in a transaction
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)", (idle,))
            return epoch
        try:
            epoch = self._transaction(take)
        except StoreError as exc:
            if isinstance(exc.__cause__, _psycopg().errors.LockNotAvailable):
                return None                       # a stopped leader's append holds the row
            raise
        if epoch is not None:
            self.fence = (holder, epoch)
            self._settings["idle_in_transaction_session_timeout"] = idle
        return epoch

    def release_lease(self) -> None:
        """End this store's term now (a clean stop): a follower takes over at its next try
        instead of waiting out the lease. The epoch stays; the next holder's is one higher."""
        if self.fence is None or self._w is None:
            return
        holder, epoch = self.fence
        self._transaction(lambda conn: conn.execute(
            "UPDATE lease SET expires_at = now() - interval '1 second' "
            "WHERE id = 1 AND holder = %s AND epoch = %s", (holder, epoch)))
        self.fence = None

    def holds_lease(self) -> bool:
        """Whether the lease is still this store's, unexpired, on the database's clock: asked
        before each notification is sent, since a send (unlike an append) cannot be fenced."""
        if self.fence is None:
            return False
        found = self.lease()
        return found is not None and (found[0], found[1]) == self.fence and bool(found[2])

    def lease(self) -> tuple[str, int, bool] | None:
        """(holder, epoch, unexpired) of the lease as the database sees it now, or None."""
        rows = self._query("SELECT holder, epoch, expires_at >= now() FROM lease WHERE id = 1", [])
        return tuple(rows[0]) if rows else None      # type: ignore[return-value]

    def _check_fence(self) -> int | None:
        """Inside an append: the fence's epoch if this store still leads, else ``LeaseLost``.
        ``FOR SHARE`` holds the lease row until commit, so a takeover (``FOR UPDATE``) waits for
        this append to finish rather than overlapping it."""
        if self.fence is None:
            return None
        holder, epoch = self.fence
        row = self._w.execute("SELECT expires_at >= now() FROM lease WHERE id = 1 AND holder = %s "
                              "AND epoch = %s FOR SHARE", (holder, epoch)).fetchone()
        if row is None or not row[0]:
            raise LeaseLost(f"event log {self.name}: {holder} no longer holds the leader lease "
                            f"(epoch {epoch}): nothing appended")
        return epoch

    def _plan(self, events: Sequence[NewEvent]) -> tuple[list[StoredEvent], list[tuple]]:
        conn = self._w
        last = conn.execute("SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        head = Head(*last) if last else Head(0, ZERO_HASH, "")
        batch_keys = sorted({e.key for e in events})
        present = {key for (key,) in conn.execute("SELECT key FROM events WHERE key = ANY(%s)",
                                                  (batch_keys,))}

        def lookup(key: str) -> dict | None:
            if key in batch_keys and key not in present:
                return None
            found = conn.execute("SELECT payload FROM events WHERE key = %s", (key,)).fetchone()
            return orjson.loads(found[0]) if found else None

        return plan_rows(events, head, utc_text(self._now()), lookup)

    # ---- reading ----
    def _query(self, sql: str, args: Sequence[Any]) -> list[tuple]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, args).fetchall()
        except _psycopg().Error as exc:            # PoolTimeout too: no connection to read with
            raise translate(exc, self.name) from exc

    def read(self, after: int = 0, limit: int = 1000,
             types: Collection[str] | None = None) -> list[StoredEvent]:
        where, args = "seq > %s", [after]
        if types is not None:
            where += " AND type = ANY(%s)"
            args.append(sorted(types))
        return _rows(self._query(f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT %s",
                                 args + [limit]))

    def read_published(self, after: tuple[str, int] | None = None, limit: int = 1000,
                       types: Collection[str] | None = None,
                       until: str | None = None) -> list[StoredEvent]:
        where, args = ["TRUE"], []
        if after is not None:
            where.append("(published_at, seq) > (%s, %s)")     # a row comparison: an index seek
            args += [after[0], after[1]]
        if until is not None:
            where.append("published_at <= %s")
            args.append(until)
        if types is not None:
            where.append("type = ANY(%s)")
            args.append(sorted(types))
        sql = (f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} "
               "ORDER BY published_at, seq LIMIT %s")
        return _rows(self._query(sql, args + [limit]))

    async def aread(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """``read`` for the daemon's event loop: psycopg's asyncio connection from a pool of its
        own, so a page read from the server never blocks the loop (the lease renewal, the
        systemd pings and /readyz go on meanwhile). Opened on first use, in the loop that uses
        it; ``aclose`` before that loop ends."""
        psycopg = _psycopg()
        try:
            if self._apool is None:
                from psycopg_pool import AsyncConnectionPool
                self._apool = AsyncConnectionPool(self.url, min_size=1, max_size=2, open=False,
                                                  kwargs={"autocommit": True}, timeout=30,
                                                  check=AsyncConnectionPool.check_connection,
                                                  name=f"watchdog-async-readers {self.name}")
                await self._apool.open()
            async with self._apool.connection() as conn:
                cursor = await conn.execute(f"SELECT {_COLUMNS} FROM events WHERE seq > %s "
                                            "ORDER BY seq LIMIT %s", (after, limit))
                return _rows(await cursor.fetchall())
        except psycopg.Error as exc:
            raise translate(exc, self.name) from exc

    async def aclose(self) -> None:
        pool, self._apool = self._apool, None
        if pool is not None:
            await pool.close()

    def get(self, key: str) -> StoredEvent | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM events WHERE key = %s", [key])
        return _rows(rows)[0] if rows else None

    def head(self) -> tuple[int, str]:
        rows = self._query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [])
        return (rows[0][0], rows[0][1]) if rows else (0, ZERO_HASH)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._pool.close()


def _reader_pool(url: str, name: str):
    """Readers share a small pool (autocommit: each query sees every commit before it): the
    daemon's fold, its status page's reads and a lease check never queue behind one another,
    and a connection the server dropped is replaced at the next checkout, not kept broken."""
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:                          # pragma: no cover - depends on the install
        raise StoreError("a postgresql:// event log needs psycopg-pool: pip install 'watchdog[postgres]'") from None
    pool = ConnectionPool(url, min_size=1, max_size=READERS, kwargs={"autocommit": True}, open=False,
                          check=ConnectionPool.check_connection, name=f"watchdog-readers {name}", timeout=30)
    pool.open()
    return pool


def _raw_rows(url: str, after: int = 0, page: int = 5000) -> Iterator[tuple]:
    psycopg = _psycopg()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
                                (after, page)).fetchall()
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1][0]


def verify_url(url: str, head_hash: str | None = None,
               since: tuple[int, str] | None = None) -> tuple[int, str]:
    """``sqlite.verify_file`` for a PostgreSQL log: re-hash the chain (after ``since``, a point
    verified before), optionally requiring a row with ``head_hash``. Raises ``ChainBroken``."""
    name = redact_url(url)
    begin, start_after = (0, ZERO_HASH, ""), 0
    try:
        if since is not None and since[0] > 0:
            with _psycopg().connect(url, autocommit=True) as conn:
                row = conn.execute("SELECT hash, recorded_at FROM events WHERE seq = %s",
                                   (since[0],)).fetchone()
            if row is None or row[0] != since[1]:
                raise ChainBroken(since[0], "the row verified last time is missing or no longer "
                                            "carries the hash it had")
            begin, start_after = (since[0], since[1], row[1]), since[0]
        return walk_chain(_raw_rows(url, after=start_after), begin, head_hash)
    except _psycopg().Error as exc:
        raise translate(exc, name) from exc
