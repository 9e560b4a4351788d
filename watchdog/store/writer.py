"""One writer thread fed by a queue: appends from the event loop are grouped into durable
transactions (one thread hop per *batch*, not per event), and each caller's future resolves only
after its events are committed — nothing is acknowledged as stored that is not."""
from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence

from watchdog.model.events import NewEvent, StoredEvent

_STOP = object()


class AsyncWriter:
    def __init__(self, store, max_batch: int = 10000):
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="watchdog-writer", daemon=True)
        self._thread.start()
        self.last_error: Exception | None = None
        self.batches = 0

    async def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queue.put((list(events), future, loop))
        return await future

    def _drain(self, first) -> list:
        batch, size = [first], len(first[0])
        while size < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)
                break
            batch.append(item)
            size += len(item[0])
        return batch

    def _run(self) -> None:
        while (first := self._queue.get()) is not _STOP:
            batch = self._drain(first)
            events = [e for item in batch for e in item[0]]
            try:
                if not events:                # a probe: is the file still the one we opened?
                    self.store.check_file()
                rows = self.store.append(events)
                if events:                    # only a real write shows the store writable again
                    self.last_error = None
            except Exception as exc:          # every caller in the batch learns it was not stored
                self.last_error = exc
                for _, future, loop in batch:
                    loop.call_soon_threadsafe(_settle, future, None, exc)
                continue
            self.batches += 1
            by_key = {row.key: row for row in rows}
            for item_events, future, loop in batch:
                mine = [by_key.pop(k) for k in _keys_with_revisions(item_events, by_key)]
                loop.call_soon_threadsafe(_settle, future, mine, None)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)


def _keys_with_revisions(events: list[NewEvent], rows: dict[str, StoredEvent]) -> list[str]:
    """The appended rows that came from these events (a revision has a derived key)."""
    out = []
    for event in events:
        for key, row in rows.items():
            if key == event.key or key.startswith(event.key + "/rev/"):
                if key not in out:
                    out.append(key)
                break
    return out


def _settle(future: asyncio.Future, result, exc) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
