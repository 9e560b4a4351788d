"""The event log behind a small interface, with in-memory, SQLite and PostgreSQL implementations
that pass one shared contract suite (tests/test_store_contract.py, PostgreSQL on a real server).

``append`` deduplicates before hashing: the same fact twice is a no-op, a changed value for the same
(series, date) becomes an ``observation-revised`` event, and any other event whose key exists is a
no-op. It returns the events actually appended, so "appended" always means "committed".

Owns: the interface (``EventStore``, ``iter_events``, ``iter_published``), ``memory``,
``sqlite`` and ``postgres`` (the implementations; ``postgres`` needs the ``postgres`` extra and is
not yet selectable from the CLI or the config: issue 16), ``plan`` (what an append becomes: dedup, revisions, the chain),
``writer`` (one async writer thread for the daemon).

May import: watchdog.market and watchdog.model. Not the other edges (sources, notify, http).

To add a store implementation: a module here that passes tests/test_store_contract.py (add it to
that suite's parameters). To change deduplication or revisions: ``plan``.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Protocol

from watchdog.model.events import NewEvent, StoredEvent


class EventStore(Protocol):
    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]: ...

    def read(self, after: int = 0, limit: int = 1000,
             types: Collection[str] | None = None) -> list[StoredEvent]: ...

    def read_published(self, after: tuple[str, int] | None = None, limit: int = 1000,
                       types: Collection[str] | None = None,
                       until: str | None = None) -> list[StoredEvent]: ...

    def get(self, key: str) -> StoredEvent | None: ...

    def head(self) -> tuple[int, str]: ...

    def check_file(self) -> None: ...           # raise StoreReplaced if the file changed under us

    def verified_point(self) -> tuple[int, str]: ...

    def mark_verified(self, seq: int, digest: str) -> None: ...

    def verify_since_point(self) -> tuple[int, str]: ...

    def close(self) -> None: ...


def iter_events(store: EventStore, *, after: int = 0, types: Collection[str] | None = None,
                page: int = 5000) -> Iterator[StoredEvent]:
    """Every event after ``after`` in ``seq`` order, read in short pages (never starves a
    WAL checkpoint, memory stays flat)."""
    while True:
        rows = store.read(after=after, limit=page, types=types)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].seq


def iter_published(store: EventStore, *, types: Collection[str] | None = None,
                   until: str | None = None, page: int = 5000,
                   series: Collection[str] | None = None) -> Iterator[StoredEvent]:
    """Events in (``published_at``, ``seq``) order, optionally only those published by ``until``.
    With ``series``, observations of other series are left out (other events are kept): a store
    whose read model knows each row's series (SQLite) does not even read them."""
    cursor: tuple[str, int] | None = None
    by_series = series is not None and getattr(store, "reads_by_series", False)
    while True:
        if by_series:
            rows = store.read_published(after=cursor, limit=page, types=types, until=until,  # type: ignore[call-arg]
                                        series=series)
        else:
            rows = store.read_published(after=cursor, limit=page, types=types, until=until)
        if series is not None and not by_series:
            yield from (r for r in rows if r.type not in _OBSERVATIONS or r.payload.get("series") in series)
        else:
            yield from rows
        if len(rows) < page:
            return
        cursor = (rows[-1].published_at, rows[-1].seq)


_OBSERVATIONS = frozenset({"observation-recorded", "observation-revised"})


from watchdog.store.memory import MemoryEventStore  # noqa: E402
from watchdog.store.sqlite import SqliteEventStore, verify_file  # noqa: E402
from watchdog.store.writer import AsyncWriter  # noqa: E402

__all__ = ["EventStore", "MemoryEventStore", "SqliteEventStore", "AsyncWriter", "iter_events",
           "iter_published", "verify_file"]
