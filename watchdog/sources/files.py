"""What the history importers of every family share: reading one shipped file into facts.

Pure-ish, like the parsers built on it: files in, ``NewEvent``s out; nothing here touches the
store, the network, asyncio or the clock.

- ``HistoryParser``: one kind of history file (name patterns, series, source, parse function);
  each family declares its kinds beside the parsing, ``sources.history`` maps files to them.
- Numbers are the file's text parsed **as text** into a ``Decimal`` (``exact_decimal``: a plain
  decimal, never through a float; no exponent, no thousands separator, no NaN/Infinity --
  anything else is malformed and reported, not guessed), dates are ``YYYY-MM-DD``
  (``iso_date``).
- Malformed input raises ``ImportFailed("FILE:LINE: reason")``: a row's parser raises
  ``FileRowError`` and its caller adds ``FILE:LINE``. A value that is clearly missing
  (``numbers.is_missing``: empty, ``.``, ``NA`` ...) is skipped by the caller, not an error.
- ``observation`` applies the series' plausibility contract (``series.implausible``: value or
  attribute outside its band, percentiles out of order, dated before the series began or, given
  the import's New York date ``today``, after it), the same contract the sources apply to live
  answers: ``FILE:LINE: <series> <date>: <the bound>``.
- Memory: CSV files are streamed row by row (``csv_rows``). JSON files are single documents
  (each shipped one under 2 MB) loaded whole (``read_json``); ``record_lines`` finds the line of
  each record for error messages.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from watchdog.market.series import SERIES, implausible
from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import norm, to_decimal
from watchdog.model.timefmt import utc_text

# A plain decimal as written by FRED, the FOMC tables and the NY Fed API: no exponent, no
# thousands separator, no NaN/Infinity. Anything else is malformed (and reported), not guessed.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


class FileRowError(ValueError):
    """A problem with one row of a history file; the caller adds ``FILE:LINE``."""


@dataclass(frozen=True)
class HistoryParser:
    """A parser for one kind of history file: ``parser(path, rel)`` yields its events.

    ``rel`` is the provenance name of the file (``sources.history`` names it: relative to the
    history folder, never an absolute path). ``parse(path, rel, display, today=...)`` is the
    family's function; ``display`` is how error messages name the file."""
    kind: str
    series: str
    source: str
    patterns: tuple[str, ...]          # file-name globs that identify this kind
    parse: Callable[..., Iterator[NewEvent]]
    description: str = ""

    def __call__(self, path: Path, rel: str, *, today: date | None = None) -> Iterator[NewEvent]:
        """``today``, when given, is the import's New York date: a row dated after it (plus its
        series' ``lead_days``) is refused like any implausible row."""
        return self.parse(path, rel, str(path), today=today)


def exact_decimal(text: Any, what: str) -> Decimal:
    if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text.strip()):
        raise FileRowError(f"{what}: not a decimal number: {text!r}")
    try:
        value = to_decimal(text)
    except ValueError as exc:  # pragma: no cover - the regex already guarantees a number
        raise FileRowError(f"{what}: {exc}") from None
    return value


def iso_date(text: Any, what: str) -> date:
    if not isinstance(text, str) or not _DATE_TEXT.fullmatch(text.strip()):
        raise FileRowError(f"{what}: not a YYYY-MM-DD date: {text!r}")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FileRowError(f"{what}: not a valid date: {text!r}") from None


def observation(series: str, day: date, value: Decimal, source: str, provenance: dict[str, str],
                published: datetime, attributes: dict[str, str] | None = None, *, where: str,
                today: date | None = None) -> NewEvent:
    """The observation event of one row (``where`` is its ``FILE:LINE``), or ``ImportFailed``
    naming the bound when the row breaks its series' plausibility contract
    (``series.implausible``; ``today``, when given, is the import's New York date)."""
    reason = implausible(series, day, value, attributes or {}, today=today)
    if reason is not None:
        raise ImportFailed(f"{where}: {series} {day.isoformat()}: {reason}")
    obs = Observation(series=series, date=day.isoformat(), value=norm(value),
                      unit=SERIES[series].unit, source=source, attributes=attributes or {},
                      provenance=provenance)
    return new_observation(obs, utc_text(published))


def _open_text(path: Path, display: str):
    try:
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFailed(f"{display}: cannot read: {exc.strerror or exc}") from None


def csv_rows(path: Path, display: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for every non-blank row, header included; decoding errors and CSV
    syntax errors become ``ImportFailed`` with the line."""
    with _open_text(path, display) as handle:
        reader = csv.reader(handle, strict=True)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ImportFailed(f"{display}:{reader.line_num + 1}: unreadable row: {exc}") from None
            if not any(cell.strip() for cell in row):
                continue  # a blank line (or a row of empty cells) is not a record
            yield reader.line_num, row


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Numbers come back as their exact source text (``"5.40"``), never as floats.
_JSON_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant)
_WS = re.compile(r"[ \t\n\r]*")


def read_json(path: Path, display: str) -> tuple[str, Any]:
    """(text, document) of a JSON file; numbers come back as their exact source text."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{display}:1: not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ImportFailed(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        return text, _JSON_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{display}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise ImportFailed(f"{display}:1: invalid JSON: {exc}") from None


def record_lines(text: str, count: int, opening: str) -> list[int]:
    """The line on which each element of the array that ``opening`` (a regex matched at the start
    of the text, ending with the array's ``[``) opens starts, for error messages. The document was
    already validated; this walk only locates the elements. Falls back to line 1."""
    match = re.match(opening, text)
    if match is None:
        return [1] * count
    lines, position = [], match.end()
    newlines_before, counted_to = text.count("\n", 0, position), position
    for _ in range(count):
        position = _WS.match(text, position).end()
        newlines_before += text.count("\n", counted_to, position)
        counted_to = position
        lines.append(newlines_before + 1)
        try:
            _, position = _JSON_DECODER.raw_decode(text, position)
        except ValueError:
            return lines + [lines[-1]] * (count - len(lines))
        position = _WS.match(text, position).end()
        if position < len(text) and text[position] == ",":
            position += 1
    return lines
