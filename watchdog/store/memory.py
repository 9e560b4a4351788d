"""In-memory event store: the fake that tests and replay of small logs use; same contract as SQLite."""
from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone

from watchdog.model.events import ZERO_HASH, NewEvent, StoredEvent
from watchdog.store.plan import Head, plan_rows
from watchdog.model.timefmt import utc_text


class MemoryEventStore:
    def __init__(self, now: Callable[[], datetime] | None = None):
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._rows: list[StoredEvent] = []
        self._by_key: dict[str, StoredEvent] = {}
        self._published: list[tuple[str, int]] = []
        self._verified: tuple[int, str] = (0, ZERO_HASH)

    # the verified point: nothing outside this process can alter an in-memory log
    def check_file(self) -> None:
        return None

    def verified_point(self) -> tuple[int, str]:
        return self._verified

    def mark_verified(self, seq: int, digest: str) -> None:
        self._verified = (seq, digest)

    def verify_since_point(self) -> tuple[int, str]:
        return self.head()

    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        last = self._rows[-1] if self._rows else None
        head = Head(last.seq, last.hash, last.recorded_at) if last else Head(0, ZERO_HASH, "")
        lookup = lambda key: (e.payload if (e := self._by_key.get(key)) else None)  # noqa: E731
        rows, _ = plan_rows(events, head, utc_text(self._now()), lookup)
        for row in rows:
            self._rows.append(row)
            self._by_key[row.key] = row
            bisect.insort(self._published, (row.published_at, row.seq))
        return rows

    def read(self, after: int = 0, limit: int = 1000,
             types: Collection[str] | None = None) -> list[StoredEvent]:
        out = []
        for row in self._rows[after:]:       # seq is dense and 1-based: row i has seq i+1
            if types is None or row.type in types:
                out.append(row)
                if len(out) == limit:
                    break
        return out

    def read_published(self, after: tuple[str, int] | None = None, limit: int = 1000,
                       types: Collection[str] | None = None,
                       until: str | None = None) -> list[StoredEvent]:
        start = bisect.bisect_right(self._published, after) if after else 0
        out = []
        for published, seq in self._published[start:]:
            if until is not None and published > until:
                break
            row = self._rows[seq - 1]
            if types is None or row.type in types:
                out.append(row)
                if len(out) == limit:
                    break
        return out

    def get(self, key: str) -> StoredEvent | None:
        return self._by_key.get(key)

    def head(self) -> tuple[int, str]:
        return (self._rows[-1].seq, self._rows[-1].hash) if self._rows else (0, ZERO_HASH)

    def close(self) -> None:
        pass
