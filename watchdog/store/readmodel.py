"""The log's publication order, derived from it and never the source of truth.

Replay, the report, the status page and the rule tests read facts in (``published_at``, ``seq``)
order, and the log is written in ``seq`` order. A B-tree index on (published_at, seq) kept that
order at the price of one more index update per appended row; this read model keeps it instead,
built by the readers, so the append path does no work a reader can do later:

- columns for every row of the log, sorted by (published_at, seq): ``seq``, ``published`` and
  ``recorded`` (microseconds since the epoch, exact: the log's fixed-width UTC text has
  microseconds), ``type`` (a small code; ``types`` names them), and for observations their
  ``series`` (a code; ``series_names``) and ``date`` (a proleptic Gregorian ordinal): so a replay
  of rules that read two series reads those series' rows and no others (``page(series=...)``);
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
from datetime import date as Date

import numpy as np

FORMAT = 2
SAVE_AFTER = 20_000          # rows added since the file was last written: worth writing again
_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")


def micros(texts: Sequence[str]) -> np.ndarray:
    """Fixed-width UTC texts (``2026-09-05T00:00:00.000000Z``) as int64 microseconds."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return (np.array([t[:-1] for t in texts], dtype="datetime64[us]") - _EPOCH).astype(np.int64)


def micros_of(text: str) -> int:
    return int(micros([text])[0])


# rows after ``seq``: (seq, type, published_at, recorded_at, series, date) in seq order, at most
# ``limit``; series and date are None except for observations
RowsAfter = Callable[[int, int], list[tuple[int, str, str, str, "str | None", "str | None"]]]
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
        self._views: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _empty(self) -> None:
        self.seq = np.zeros(0, dtype=np.int64)
        self.published = np.zeros(0, dtype=np.int64)
        self.recorded = np.zeros(0, dtype=np.int64)
        self.type = np.zeros(0, dtype=np.int16)
        self.series = np.zeros(0, dtype=np.int16)       # -1: not an observation
        self.date = np.zeros(0, dtype=np.int32)         # 0: not an observation
        self.types: list[str] = []
        self.series_names: list[str] = []
        self.covered = (0, None)             # (seq, hash) of the last row merged in

    _COLUMNS = ("seq", "published", "recorded", "type", "series", "date")

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
        added: list = []
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

    def _merge(self, rows: list) -> None:
        n = len(rows)
        type_codes = np.empty(n, dtype=np.int16)
        series_codes = np.full(n, -1, dtype=np.int16)
        dates = np.zeros(n, dtype=np.int32)
        codes = {name: i for i, name in enumerate(self.types)}
        names = {name: i for i, name in enumerate(self.series_names)}
        for i, (_, type_, _, _, series, date) in enumerate(rows):
            code = codes.get(type_)
            if code is None:
                code = codes[type_] = len(self.types)
                self.types.append(type_)
            type_codes[i] = code
            if series is not None and date is not None:
                scode = names.get(series)
                if scode is None:
                    scode = names[series] = len(self.series_names)
                    self.series_names.append(series)
                series_codes[i] = scode
                try:
                    dates[i] = Date.fromisoformat(date).toordinal()
                except (TypeError, ValueError):
                    series_codes[i] = -1            # not a date: never skipped by a filter
        added = {"seq": np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
                 "published": micros([r[2] for r in rows]), "recorded": micros([r[3] for r in rows]),
                 "type": type_codes, "series": series_codes, "date": dates}
        merged = {name: np.concatenate([getattr(self, name), added[name]]) for name in self._COLUMNS}
        order = np.lexsort((merged["seq"], merged["published"]))
        for name in self._COLUMNS:
            setattr(self, name, merged[name][order])
        last = rows[-1][0]
        self.covered = (last, self._hash_at(last))

    # ---- reading ----
    def page(self, after: tuple[str, int] | None, limit: int, types: Collection[str] | None,
             until: str | None, series: Collection[str] | None = None) -> np.ndarray:
        """The seqs of the next ``limit`` rows after the cursor (published_at, seq), of the given
        types, published by ``until``: what ``read_published`` returns, as seqs in order. With
        ``series``, observations of other series are left out (other rows are kept)."""
        published, seqs = self._view(types, series)
        end = published.size if until is None else int(np.searchsorted(published, micros_of(until), "right"))
        start = 0
        if after is not None:
            at = micros_of(after[0])
            lo = int(np.searchsorted(published, at, "left"))
            hi = int(np.searchsorted(published, at, "right"))
            start = lo + int(np.searchsorted(seqs[lo:hi], after[1], "right"))
        return seqs[start:min(end, start + limit)]

    def _mask(self, types: Collection[str] | None, series: Collection[str] | None) -> np.ndarray:
        mask = np.ones(self.seq.size, dtype=bool)
        if types is not None:
            mask &= np.isin(self.type, [i for i, name in enumerate(self.types) if name in types])
        if series is not None:
            wanted = [i for i, name in enumerate(self.series_names) if name in series]
            mask &= (self.series < 0) | np.isin(self.series, wanted)
        return mask

    def _view(self, types: Collection[str] | None,
              series: Collection[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        key = (None if types is None else frozenset(types), None if series is None else frozenset(series))
        view = self._views.get(key)
        if view is None:
            if types is None and series is None:
                view = (self.published, self.seq)
            else:
                mask = self._mask(types, series)
                view = (self.published[mask], self.seq[mask])
            self._views[key] = view
        return view

    def facts_by(self, types: Collection[str], until: str | None,
                 recorded_by: str | None) -> np.ndarray:
        """Indexes (into the columns) of the rows of ``types`` published by ``until`` and
        recorded by ``recorded_by``: what a replay with those bounds reads, in its order."""
        mask = self._mask(types, None)
        if until is not None:
            mask &= self.published <= micros_of(until)
        if recorded_by is not None:
            mask &= self.recorded <= micros_of(recorded_by)
        return np.flatnonzero(mask)

    # ---- beside the log ----
    def _load(self) -> None:
        if not self.side_path or not os.path.exists(self.side_path):
            return
        try:
            with np.load(self.side_path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                if meta.get("format") != FORMAT:
                    return
                columns = {name: data[name] for name in self._COLUMNS}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return                               # unreadable or foreign: built again
        sizes = {c.size for c in columns.values()}
        if len(sizes) != 1 or (meta["covered"][0] and not sizes.pop()):
            return
        for name, column in columns.items():
            setattr(self, name, column)
        self.types = list(meta["types"])
        self.series_names = list(meta["series"])
        self.covered = (int(meta["covered"][0]), meta["covered"][1])
        self._saved_rows = int(self.seq.size)

    def _save(self) -> None:
        if not self.side_path:
            return
        meta = json.dumps({"format": FORMAT, "covered": list(self.covered), "types": self.types,
                           "series": self.series_names})
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(meta.encode("utf-8"), dtype=np.uint8),
                 **{name: getattr(self, name) for name in self._COLUMNS})
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
