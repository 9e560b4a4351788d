"""SQLite event log: WAL, ``synchronous=FULL``, append-only enforced by triggers, hash-chained.

One connection writes; each batch is one ``BEGIN IMMEDIATE`` transaction that re-reads the chain
head, so another process (``watchdog import``, ``silence add``) can append beside the daemon
without forking the chain. Reads use their own connection and short, paginated queries.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date as Date
from datetime import datetime, timezone
from pathlib import Path

import orjson

from watchdog.market.series import SERIES
from watchdog.model.errors import ChainBroken, StoreError, StoreReplaced, StoreUnavailable
from watchdog.model.events import ZERO_HASH, NewEvent, StoredEvent
from watchdog.store.plan import Head, check_copied, plan_rows, walk_chain
from watchdog.model.timefmt import utc_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  key TEXT NOT NULL UNIQUE,
  published_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  payload TEXT NOT NULL,
  hash TEXT NOT NULL
);
-- No index on (published_at, seq): one more B-tree update per appended row. Readers keep the
-- publication order themselves (watchdog.store.readmodel), beside the log.
-- One trigger, two guarantees (one trigger program per row is measurably cheaper than two):
-- seq is dense (every row is max(seq)+1, so a gap or a rewrite is visible), and an existing key
-- can never be inserted again. BEFORE INSERT runs before conflict resolution, so INSERT OR
-- REPLACE can never delete a row, whatever the connection's recursive_triggers setting.
CREATE TRIGGER IF NOT EXISTS events_append_only BEFORE INSERT ON events
  WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)
    OR EXISTS (SELECT 1 FROM events WHERE key = NEW.key)
  BEGIN SELECT RAISE(ABORT, 'events is append-only: seq must be max(seq)+1 and keys are never reused'); END;
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events: the log is append-only (no UPDATE)'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events: the log is append-only (no DELETE)'); END;
-- Not part of the chain: the last (seq, hash) a start verified, so the next start re-hashes only
-- what came after it (a full `watchdog verify` still re-hashes everything).
CREATE TABLE IF NOT EXISTS verified (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
"""

_INSERT = ("INSERT INTO events (seq, type, key, published_at, recorded_at, payload, hash) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
_COLUMNS = "seq, type, key, published_at, recorded_at, payload, hash"
# what the read model keeps of each row: an observation's series and date come out of its payload
# in SQLite (json_extract), not through Python
_ORDER_ROWS = ("SELECT seq, type, published_at, recorded_at, "
               "CASE WHEN type IN ('observation-recorded', 'observation-revised') "
               "THEN json_extract(payload, '$.series') END, "
               "CASE WHEN type IN ('observation-recorded', 'observation-revised') "
               "THEN json_extract(payload, '$.date') END "
               "FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
_UNAVAILABLE = ("disk is full", "readonly", "read-only", "locked", "unable to open", "disk i/o")


def translate(exc: sqlite3.Error, path: str) -> StoreError:
    """SQLite errors at the edge: the ones worth retrying are ``StoreUnavailable``."""
    text = str(exc)
    if any(marker in text.lower() for marker in _UNAVAILABLE):
        return StoreUnavailable(f"event log {path}: {text}")
    return StoreError(f"event log {path}: {text}")


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA recursive_triggers=ON")
    return conn


def _row(row: tuple) -> StoredEvent:
    seq, type_, key, published, recorded, payload, digest = row
    return StoredEvent(seq, type_, key, published, recorded, orjson.loads(payload), digest)


def _rows(rows: list[tuple]) -> list[StoredEvent]:
    """``_row`` of each row, inlined: replay decodes every row of the log through here."""
    loads = orjson.loads
    return [StoredEvent(seq, type_, key, published, recorded, loads(payload), digest)
            for seq, type_, key, published, recorded, payload, digest in rows]


class SqliteEventStore:
    """The production store. Thread-safe: one lock guards the writer, another the reader."""

    reads_by_series = True          # read_published(series=...) skips other series' rows unread

    def __init__(self, path: str | Path, now: Callable[[], datetime] | None = None,
                 readonly: bool = False):
        self.path = str(path)
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._wlock, self._rlock = threading.Lock(), threading.Lock()
        try:
            if readonly:
                self._w = None
            else:
                self._w = _connect(self.path)
                # imported here: only a writer needs it, and sqlite-utils imports pandas when
                # pandas is installed (half a second for every read-only command)
                import sqlite_utils
                db = sqlite_utils.Database(self._w)
                db.enable_wal()
                self._w.executescript(SCHEMA)
                # logs written before the publication order moved to the read model
                self._w.execute("DROP INDEX IF EXISTS events_published")
            self._r = _connect(self.path, readonly=True)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        self._identity = _identity(self.path) if self._w is not None else None
        self._order = None            # the publication order (readmodel), made on first use

    def check_file(self) -> None:
        """Raise ``StoreReplaced`` when the file this writer opened was deleted or replaced (its
        inode changed): SQLite would go on writing to the unlinked file, lost at close."""
        if self._identity is None:
            return
        now = _identity(self.path)
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise StoreReplaced(f"event log {self.path} was {what} while the daemon had it open: "
                                "nothing more is appended; restart the daemon on the right file")

    # ---- the verified point (not part of the chain) ----
    def verified_point(self) -> tuple[int, str]:
        try:
            rows = self._query("SELECT seq, hash FROM verified WHERE id = 1", [])
        except StoreError:                       # a log written before the table existed
            return (0, ZERO_HASH)
        return (rows[0][0], rows[0][1]) if rows else (0, ZERO_HASH)

    def mark_verified(self, seq: int, digest: str) -> None:
        if self._w is None:
            return
        with self._wlock:
            try:
                self._w.execute("INSERT OR REPLACE INTO verified (id, seq, hash) VALUES (1, ?, ?)", (seq, digest))
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc

    def verify_since_point(self) -> tuple[int, str]:
        """Re-hash the rows after the verified point (the point's own row must still carry its
        hash); returns the head. Raises ``ChainBroken`` naming the first bad seq."""
        seq, digest = self.verified_point()
        return verify_file(self.path, since=(seq, digest))

    # ---- writing ----
    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        if not events:
            return []
        if self._w is None:
            raise StoreError(f"event log {self.path}: opened read-only")
        self.check_file()
        with self._wlock:
            conn = self._w
            try:
                conn.execute("BEGIN IMMEDIATE")
                stored, params = self._plan(conn, events)
                conn.executemany(_INSERT, params)
                conn.execute("COMMIT")
                return stored
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise translate(exc, self.path) from exc

    def _plan(self, conn: sqlite3.Connection, events: Sequence[NewEvent]) -> tuple[list[StoredEvent], list[tuple]]:
        last = conn.execute("SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        head = Head(*last) if last else Head(0, ZERO_HASH, "")
        batch_keys = {e.key for e in events}
        present = self._present(conn, list(batch_keys))

        def lookup(key: str) -> dict | None:
            if key in batch_keys and key not in present:
                return None                     # known absent: no query
            found = conn.execute("SELECT payload FROM events WHERE key = ?", (key,)).fetchone()
            return orjson.loads(found[0]) if found else None

        return plan_rows(events, head, utc_text(self._now()), lookup)

    @staticmethod
    def _present(conn: sqlite3.Connection, keys: list[str]) -> set[str]:
        """Which of the batch's keys the log already has: one query for the whole batch (the keys
        passed as one JSON array), answered from the unique index alone."""
        if not keys:
            return set()
        rows = conn.execute("SELECT key FROM events WHERE key IN (SELECT value FROM json_each(?))",
                            (orjson.dumps(keys).decode("utf-8"),))
        return {key for (key,) in rows}

    def copy_rows(self, rows: Sequence[tuple]) -> int:
        """Append rows exactly as another log holds them (``watchdog migrate``): (seq, type, key,
        published_at, recorded_at, payload text, hash), in seq order, continuing this log's
        chain. Each row's hash is checked against its contents and the previous hash first, so a
        copy is never a fork or a forgery. Returns the number of rows appended."""
        if self._w is None:
            raise StoreError(f"event log {self.path}: opened read-only")
        with self._wlock:
            conn = self._w
            try:
                conn.execute("BEGIN IMMEDIATE")
                last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
                check_copied(rows, last or (0, ZERO_HASH))
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
                return len(rows)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise translate(exc, self.path) from exc
            except ChainBroken:
                conn.execute("ROLLBACK")
                raise

    def raw_rows(self, after: int = 0, limit: int = 5000) -> list[tuple]:
        """Rows exactly as stored, payload as its canonical text (what ``copy_rows`` takes)."""
        return self._query(f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                           [after, limit])

    # ---- reading ----
    def _query(self, sql: str, args: Sequence) -> list[tuple]:
        with self._rlock:
            try:
                return self._r.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc

    def read(self, after: int = 0, limit: int = 1000,
             types: Collection[str] | None = None) -> list[StoredEvent]:
        where, args = "seq > ?", [after]
        if types is not None:
            where += f" AND type IN ({','.join('?' * len(types))})"
            args += list(types)
        rows = self._query(f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT ?", args + [limit])
        return _rows(rows)

    def read_published(self, after: tuple[str, int] | None = None, limit: int = 1000,
                       types: Collection[str] | None = None,
                       until: str | None = None, series: Collection[str] | None = None) -> list[StoredEvent]:
        """Rows in (published_at, seq) order after the cursor ``after``: the read model gives the
        seqs of the page, then one query reads those rows (by rowid). With ``series``, only the
        observations of those series (other rows of ``types`` are kept)."""
        with self._rlock:
            try:
                order = self._publication_order()
                seqs = order.page(after, limit, types, until, series)
                if not seqs.size:
                    return []
                first, last = int(seqs[0]), int(seqs[-1])
                if last - first + 1 == seqs.size and (seqs.size == 1 or bool((seqs[1:] > seqs[:-1]).all())):
                    rows = self._r.execute(f"SELECT {_COLUMNS} FROM events WHERE seq BETWEEN ? AND ? "
                                           "ORDER BY seq", (first, last)).fetchall()
                else:
                    found = {row[0]: row for row in self._r.execute(
                        f"SELECT {_COLUMNS} FROM events WHERE seq IN (SELECT value FROM json_each(?))",
                        (orjson.dumps(seqs.tolist()).decode("utf-8"),))}
                    rows = [found[s] for s in seqs.tolist() if s in found]
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
        return _rows(rows)

    def facts_summary(self, types: Collection[str], until: str | None = None,
                      recorded_by: str | None = None,
                      series: Collection[str] | None = None) -> tuple[str | None, list[tuple[str, str, str]]]:
        """For a replay reading ``types`` published by ``until`` and recorded by ``recorded_by``:
        the ``published_at`` of the last such row (its engine's last instant), and the
        observations (of ``series``, or all) that may be dated ahead of the instant they became
        known (series, date, that instant; a superset, for an exact check), from the read model,
        without reading a payload. (A row's ``published_at`` is never after its ``recorded_at``:
        it is the instant it became known.)"""
        with self._rlock:
            try:
                order = self._publication_order()
                last, maybe = order.summary(types, until, series, _lead_days)
                seqs = [int(order.seq[i]) for i in maybe]
                if recorded_by is not None:          # --as-recorded: the log's own times decide
                    marks = ",".join("?" * len(types))
                    bound = [until] if until is not None else []
                    found = self._r.execute(
                        f"SELECT seq FROM events WHERE type IN ({marks}) AND recorded_at <= ? "
                        + ("AND published_at <= ? " if until is not None else "")
                        + "ORDER BY published_at DESC, seq DESC LIMIT 1",
                        [*types, recorded_by, *bound]).fetchone()
                    last_seq = found[0] if found else None
                else:
                    last_seq = None if last is None else int(order.seq[last])
                if last_seq is None:
                    return None, []
                texts = dict(self._r.execute(
                    "SELECT seq, published_at FROM events WHERE seq IN (SELECT value FROM json_each(?))",
                    (orjson.dumps([last_seq, *seqs]).decode("utf-8"),)))
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
        ahead = [(order.series_names[int(order.series[i])], Date.fromordinal(int(order.date[i])).isoformat(),
                  texts[int(order.seq[i])]) for i in maybe]
        return texts[last_seq], ahead

    def _publication_order(self):
        """The read model, brought up to the log's head (the caller holds the reader lock)."""
        if self._order is None:
            from watchdog.store.readmodel import PublicationOrder   # numpy: only readers need it
            conn = self._r

            def rows_after(seq: int, limit: int) -> list[tuple]:
                return conn.execute(_ORDER_ROWS, (seq, limit)).fetchall()

            def hash_at(seq: int) -> str | None:
                row = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
                return row[0] if row else None

            self._order = PublicationOrder(self.path, rows_after, hash_at)
        self._order.refresh()
        return self._order

    def get(self, key: str) -> StoredEvent | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM events WHERE key = ?", [key])
        return _row(rows[0]) if rows else None

    def head(self) -> tuple[int, str]:
        rows = self._query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [])
        return (rows[0][0], rows[0][1]) if rows else (0, ZERO_HASH)

    def close(self) -> None:
        for conn in (self._w, self._r):
            if conn is not None:
                conn.close()


def _raw_rows(path: str, page: int = 5000, after: int = 0) -> Iterator[tuple]:
    conn = _connect(path, readonly=True)
    try:
        while True:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                (after, page)).fetchall()
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1][0]
    finally:
        conn.close()


def _lead_days(series: str) -> int:
    return SERIES[series].lead_days if series in SERIES else 0


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def verify_file(path: str | Path, head_hash: str | None = None,
                since: tuple[int, str] | None = None) -> tuple[int, str]:
    """Re-hash the whole chain. Returns the head (seq, hash); raises ``ChainBroken`` naming the first
    bad ``seq``. With ``head_hash``, the chain must also contain a row with that hash (an anchor
    taken earlier still stands). With ``since`` = (seq, hash) a point verified before, only the
    rows after it are re-hashed, chained from that hash (the point's row must still carry it)."""
    path = str(path)
    if not Path(path).exists():
        raise StoreError(f"event log {path}: no such file")
    begin, start_after = (0, ZERO_HASH, ""), 0
    if since is not None and since[0] > 0:
        conn = _connect(path, readonly=True)
        try:
            row = conn.execute("SELECT hash, recorded_at FROM events WHERE seq = ?", (since[0],)).fetchone()
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc
        finally:
            conn.close()
        if row is None or row[0] != since[1]:
            raise ChainBroken(since[0], "the row verified last time is missing or no longer carries "
                                        "the hash it had")
        begin, start_after = (since[0], since[1], row[1]), since[0]
    try:
        return walk_chain(_raw_rows(path, after=start_after), begin, head_hash)
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
