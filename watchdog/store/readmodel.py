"""The log's publication order, derived from it and never the source of truth.

Replay, the report, the status page and the rule tests read facts in (``published_at``, ``seq``)
order, and the log is written in ``seq`` order. A B-tree index on (published_at, seq) kept that
order at the price of one more index update per appended row; this read model keeps it instead,
built by the readers, so the append path does no work a reader can do later:

- columns for every row of the log, sorted by (published_at, seq): ``seq``, ``published``
  (microseconds since the epoch, exact: the log's fixed-width UTC text has microseconds),
  ``type`` (a small code; ``types`` names them), and for observations their ``series`` (a code;
  ``series_names``) and ``date`` (a proleptic Gregorian ordinal): so a replay of rules that read
  two series reads those series' rows and no others (``page(series=...)``). 23 bytes a row, and
  nothing else proportional to the log: a page is found by scanning from its cursor, never
  through a filtered copy;
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

FORMAT = 3
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
    """Every row's (published, seq, type, series, date), sorted by (published, seq). See the
    module doc."""

    _COLUMNS = ("seq", "published", "type", "series", "date")
    _WINDOW = 65_536                 # rows looked at per step of a filtered scan

    def __init__(self, log_path: str | None, rows_after: RowsAfter, hash_at: HashAt,
                 page: int = 200_000):
        self.side_path = f"{log_path}.columns" if log_path else None
        self._rows_after, self._hash_at, self._page = rows_after, hash_at, page
        self._empty()
        self._saved_rows = 0
        self._loaded = False

    def _empty(self) -> None:
        self.seq = np.zeros(0, dtype=np.int64)
        self.published = np.zeros(0, dtype=np.int64)
        self.type = np.zeros(0, dtype=np.int8)
        self.series = np.zeros(0, dtype=np.int16)       # -1: not an observation
        self.date = np.zeros(0, dtype=np.int32)         # 0: not an observation
        self.types: list[str] = []
        self.series_names: list[str] = []
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
        grew = False
        while True:
            rows = self._rows_after(self.covered[0], self._page)
            if rows:
                self._merge(rows)                # a page at a time: a first build stays small
                grew = True
            if len(rows) < self._page:
                break
        if grew and (self.seq.size - self._saved_rows >= SAVE_AFTER
                     or (self._saved_rows == 0 and self.seq.size >= SAVE_AFTER)):
            self._save()

    def _merge(self, rows: list) -> None:
        n = len(rows)
        type_codes = np.empty(n, dtype=np.int8)
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
                try:
                    dates[i] = Date.fromisoformat(date).toordinal()
                    series_codes[i] = scode
                except (TypeError, ValueError):
                    pass                            # not a date: never left out by a filter
        added = {"seq": np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
                 "published": micros([r[2] for r in rows]), "type": type_codes,
                 "series": series_codes, "date": dates}
        merged = {name: np.concatenate([getattr(self, name), added[name]]) for name in self._COLUMNS}
        order = np.lexsort((merged["seq"], merged["published"]))
        for name in self._COLUMNS:
            setattr(self, name, merged[name][order])
        last = rows[-1][0]
        self.covered = (last, self._hash_at(last))

    # ---- reading ----
    def _codes(self, types: Collection[str] | None, series: Collection[str] | None):
        type_codes = None if types is None else np.array(
            [i for i, name in enumerate(self.types) if name in types], dtype=np.int8)
        series_codes = None if series is None else np.array(
            [i for i, name in enumerate(self.series_names) if name in series], dtype=np.int16)
        return type_codes, series_codes

    def _mask(self, lo: int, hi: int, type_codes, series_codes) -> np.ndarray:
        mask = np.ones(hi - lo, dtype=bool)
        if type_codes is not None:
            mask &= np.isin(self.type[lo:hi], type_codes)
        if series_codes is not None:
            kinds = self.series[lo:hi]
            mask &= (kinds < 0) | np.isin(kinds, series_codes)
        return mask

    def _bounds(self, after: tuple[str, int] | None, until: str | None) -> tuple[int, int]:
        published = self.published
        end = published.size if until is None else int(np.searchsorted(published, micros_of(until), "right"))
        start = 0
        if after is not None:
            at = micros_of(after[0])
            lo = int(np.searchsorted(published, at, "left"))
            hi = int(np.searchsorted(published, at, "right"))
            start = lo + int(np.searchsorted(self.seq[lo:hi], after[1], "right"))
        return start, end

    def page(self, after: tuple[str, int] | None, limit: int, types: Collection[str] | None,
             until: str | None, series: Collection[str] | None = None) -> np.ndarray:
        """The seqs of the next ``limit`` rows after the cursor (published_at, seq), of the given
        types, published by ``until``: what ``read_published`` returns, as seqs in order. With
        ``series``, observations of other series are left out (other rows are kept)."""
        start, end = self._bounds(after, until)
        if types is None and series is None:
            return self.seq[start:min(end, start + limit)]
        type_codes, series_codes = self._codes(types, series)
        found: list[np.ndarray] = []
        count = 0
        while start < end and count < limit:
            stop = min(end, start + max(self._WINDOW, limit))
            picked = self.seq[start:stop][self._mask(start, stop, type_codes, series_codes)]
            found.append(picked[:limit - count])
            count += min(picked.size, limit - count)
            start = stop
        return np.concatenate(found) if found else self.seq[:0]

    def summary(self, types: Collection[str], until: str | None, series: Collection[str] | None,
                lead_of: Callable[[str], int]) -> tuple[int | None, list[int]]:
        """For a replay reading ``types`` published by ``until``: the index of its last row, and
        the indexes of the observations (of ``series``, or all) that may be dated ahead of their
        publication (a superset, for an exact check: the New York date of an instant is its UTC
        date from 05:00 UTC on, in EST and EDT alike, and before that maybe the day before),
        scanned a window at a time."""
        _, end = self._bounds(None, until)
        type_codes, series_codes = self._codes(types, None)
        wanted = None if series is None else self._codes(None, series)[1]
        leads = np.array([lead_of(name) for name in self.series_names] or [0], dtype=np.int64)
        last: int | None = None
        maybe: list[int] = []
        for lo in range(0, end, self._WINDOW):
            hi = min(end, lo + self._WINDOW)
            rows = lo + np.flatnonzero(self._mask(lo, hi, type_codes, None))
            if not rows.size:
                continue
            last = int(rows[-1])
            codes = self.series[rows]
            day, time_of_day = np.divmod(self.published[rows], 86_400_000_000)
            new_york = day + 719_163 - (time_of_day < 5 * 3_600_000_000)   # 719163: 1970-01-01
            ahead = (codes >= 0) & (self.date[rows] > new_york + leads[np.maximum(codes, 0)])
            if wanted is not None:
                ahead &= np.isin(codes, wanted)
            maybe.extend(rows[ahead].tolist())
        return last, maybe

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
