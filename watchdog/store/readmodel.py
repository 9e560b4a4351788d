"""The log's publication order, derived from it and never the source of truth.

Replay, the report, the status page and the rule tests read facts in (``published_at``, ``seq``)
order, and the log is written in ``seq`` order. A B-tree index on (published_at, seq) kept that
order at the price of one more index update per appended row; this read model keeps it instead,
built by the readers, so the append path does no work a reader can do later:

- three columns for every row of the log, sorted by (published_at, seq): ``seq``, ``published``
  (microseconds since the epoch, exact: the log's fixed-width UTC text has microseconds) and
  ``type`` (a small code; ``types`` names them);
- built incrementally: a refresh reads only the rows after the last ``seq`` it covered (three
  short columns, no payload) and merges them in;
- invalidated when the log no longer holds the row it was built up to with the hash it had then
  (a replaced or rebuilt file): it is then built again from the start;
- kept beside the log in ``<log>.columns`` (written atomically, when it grew by a good share)
  so the next process starts from it; where that file cannot be written (a read-only directory)
  it lives in memory only. Deleting the file at any time is safe.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Collection, Sequence

import numpy as np

FORMAT = 1
SAVE_AFTER = 20_000          # rows added since the file was last written: worth writing again
_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")


def micros(texts: Sequence[str]) -> np.ndarray:
    """Fixed-width UTC texts (``2026-09-05T00:00:00.000000Z``) as int64 microseconds."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return (np.array([t[:-1] for t in texts], dtype="datetime64[us]") - _EPOCH).astype(np.int64)


def micros_of(text: str) -> int:
    return int(micros([text])[0])


# rows after ``seq``: (seq, type, published_at) in seq order, at most ``limit``
RowsAfter = Callable[[int, int], list[tuple[int, str, str]]]
HashAt = Callable[[int], "str | None"]


class PublicationOrder:
    """Every row's (published, seq, type), sorted by (published, seq). See the module doc."""

    def __init__(self, log_path: str | None, rows_after: RowsAfter, hash_at: HashAt,
                 page: int = 200_000):
        self.side_path = f"{log_path}.columns" if log_path else None
        self._rows_after, self._hash_at, self._page = rows_after, hash_at, page
        self._empty()
        self._saved_rows = 0
        self._loaded = False
        self._views: dict[frozenset[str] | None, tuple[np.ndarray, np.ndarray]] = {}

    def _empty(self) -> None:
        self.seq = np.zeros(0, dtype=np.int64)
        self.published = np.zeros(0, dtype=np.int64)
        self.type = np.zeros(0, dtype=np.int16)
        self.types: list[str] = []
        self.covered = (0, None)             # (seq, hash) of the last row merged in

    # ---- keeping up with the log ----
    def refresh(self) -> None:
        """Merge in the rows appended since the last refresh (a rebuild if the log changed)."""
        if not self._loaded:
            self._loaded = True
            self._load()
        seq, digest = self.covered
        if seq and self._hash_at(seq) != digest:
            self._empty()                        # not the log this was built from
            self._views.clear()
        added: list[tuple[int, str, str]] = []
        after = self.covered[0]
        while True:
            rows = self._rows_after(after, self._page)
            added.extend(rows)
            if len(rows) < self._page:
                break
            after = rows[-1][0]
        if not added:
            return
        self._merge(added)
        self._views.clear()
        if self.seq.size - self._saved_rows >= SAVE_AFTER or (self._saved_rows == 0 and self.seq.size >= SAVE_AFTER):
            self._save()

    def _merge(self, rows: list[tuple[int, str, str]]) -> None:
        codes = {name: i for i, name in enumerate(self.types)}
        type_codes = np.empty(len(rows), dtype=np.int16)
        for i, (_, type_, _) in enumerate(rows):
            code = codes.get(type_)
            if code is None:
                code = codes[type_] = len(self.types)
                self.types.append(type_)
            type_codes[i] = code
        seq = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        published = micros([r[2] for r in rows])
        seq = np.concatenate([self.seq, seq])
        published = np.concatenate([self.published, published])
        kinds = np.concatenate([self.type, type_codes])
        order = np.lexsort((seq, published))
        self.seq, self.published, self.type = seq[order], published[order], kinds[order]
        last = rows[-1][0]
        self.covered = (last, self._hash_at(last))

    # ---- reading ----
    def page(self, after: tuple[str, int] | None, limit: int, types: Collection[str] | None,
             until: str | None) -> np.ndarray:
        """The seqs of the next ``limit`` rows after the cursor (published_at, seq), of the given
        types, published by ``until``: what ``read_published`` returns, as seqs in order."""
        published, seqs = self._view(types)
        end = published.size if until is None else int(np.searchsorted(published, micros_of(until), "right"))
        start = 0
        if after is not None:
            at = micros_of(after[0])
            lo = int(np.searchsorted(published, at, "left"))
            hi = int(np.searchsorted(published, at, "right"))
            start = lo + int(np.searchsorted(seqs[lo:hi], after[1], "right"))
        return seqs[start:min(end, start + limit)]

    def _view(self, types: Collection[str] | None) -> tuple[np.ndarray, np.ndarray]:
        key = None if types is None else frozenset(types)
        view = self._views.get(key)
        if view is None:
            if key is None:
                view = (self.published, self.seq)
            else:
                codes = [i for i, name in enumerate(self.types) if name in key]
                mask = np.isin(self.type, codes)
                view = (self.published[mask], self.seq[mask])
            self._views[key] = view
        return view

    # ---- beside the log ----
    def _load(self) -> None:
        if not self.side_path or not os.path.exists(self.side_path):
            return
        try:
            with np.load(self.side_path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                if meta.get("format") != FORMAT:
                    return
                seq, published, kinds = data["seq"], data["published"], data["type"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return                               # unreadable or foreign: built again
        if not (seq.size == published.size == kinds.size) or meta["covered"][0] and seq.size == 0:
            return
        self.seq, self.published, self.type = seq, published, kinds
        self.types = list(meta["types"])
        self.covered = (int(meta["covered"][0]), meta["covered"][1])
        self._saved_rows = int(seq.size)

    def _save(self) -> None:
        if not self.side_path:
            return
        meta = json.dumps({"format": FORMAT, "covered": list(self.covered), "types": self.types})
        buffer = io.BytesIO()
        np.savez(buffer, seq=self.seq, published=self.published, type=self.type,
                 meta=np.frombuffer(meta.encode("utf-8"), dtype=np.uint8))
        directory = os.path.dirname(os.path.abspath(self.side_path))
        try:
            fd, tmp = tempfile.mkstemp(prefix=".columns-", dir=directory)
        except OSError:
            self.side_path = None                # not writable here: memory only
            return
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(buffer.getbuffer())
            os.replace(tmp, self.side_path)
            self._saved_rows = int(self.seq.size)
        except OSError:
            self.side_path = None
            try:
                os.unlink(tmp)
            except OSError:
                pass
