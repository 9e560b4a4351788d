"""Parsing helpers every source shares: exact JSON, precise body and row errors, the checks that
make a parsed row a fact, the failure event a parsed payload calls for. Pure except for the
failure log line."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from watchdog.model.events import NewEvent
from watchdog.model.numbers import is_missing, to_decimal
from watchdog.market.series import implausible, nominal_publication, shown
from watchdog.sources.base import cap_published, failure_event
from watchdog.model.timefmt import NEW_YORK, utc_text

log = logging.getLogger(__name__)


class RowError(ValueError):
    """One row of a payload is unusable; the message names the field and the bad text."""


class BodyError(ValueError):
    """The whole body is unusable (not JSON, not the envelope)."""


@dataclass
class Parsed:
    """What a payload yielded: good events, named bad rows, or one reason the body is unusable."""
    events: list[NewEvent] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)
    body_error: str | None = None

    def reasons(self) -> list[str]:
        return [self.body_error] if self.body_error else list(self.bad_rows)

    def in_date_order(self) -> "Parsed":
        """APIs list newest first; the log (and so the engine, which never moves a rule back in
        time) must receive each series oldest first."""
        self.events.sort(key=lambda e: (e.payload["date"], e.payload["series"]))
        return self


def load_json(body: bytes) -> Any:
    """Decode JSON exactly (every number a Decimal) or raise BodyError saying what is wrong."""
    if not body.strip():
        raise BodyError("empty body where JSON was expected")
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BodyError(_json_error(body, exc)) from None


def _json_error(body: bytes, exc: json.JSONDecodeError) -> str:
    head = body.lstrip()[:60].decode("utf-8", "replace")
    head = " ".join(head.split())
    if head.startswith("<"):
        # An HTML error page or a proxy's login page served with status 200.
        return f"not JSON: the body looks like HTML/XML, starting {head!r}"
    # The decoder reports an unterminated string at its opening quote, anything else that ran
    # out of input at the end: both mean the body was cut off (a dropped connection, a cap).
    if exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string"):
        return f"not JSON: truncated after {len(exc.doc)} characters ({exc.msg})"
    return f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"


def json_kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", Decimal: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def json_field(data: Any, name: str) -> Any:
    """The value under ``name`` of a JSON object, or a BodyError saying exactly what is there
    instead (a renamed field lists the fields that are present)."""
    if not isinstance(data, dict):
        raise BodyError(f"expected a JSON object with {name!r}, got a JSON {json_kind(data)}")
    if name not in data:
        found = ", ".join(repr(k) for k in list(data)[:10]) or "none"
        raise BodyError(f"no {name!r} field in the JSON object (top-level fields: {found})")
    return data[name]


def array_field(data: Any, name: str) -> list[Any]:
    """The array under ``name`` of a JSON object, or a BodyError (see ``json_field``)."""
    rows = json_field(data, name)
    if not isinstance(rows, list):
        raise BodyError(f"{name!r} is a JSON {json_kind(rows)}, expected an array")
    return rows


def parse_day(raw: Any, field_name: str) -> date:
    if is_missing(raw):
        raise RowError(f"{field_name}: missing")
    if not isinstance(raw, str):
        raise RowError(f"{field_name}: not a date: {raw!r}")
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise RowError(f"{field_name}: not a date (YYYY-MM-DD): {raw!r}") from None
    # Market data before 1900 or after 2199 is a corrupt row, and a year before 1000 would break
    # the log's fixed-width time format.
    if not 1900 <= day.year <= 2199:
        raise RowError(f"{field_name}: date out of range (1900-2199): {raw!r}")
    return day


def number(raw: Any, field_name: str) -> Decimal:
    # Only JSON numbers (already Decimal) and numeric strings; booleans and objects are refused
    # here so the message does not talk about floats.
    if not isinstance(raw, (Decimal, str)):
        raise RowError(f"{field_name}: not a number: {raw!r}")
    if isinstance(raw, str) and len(raw) > 64:
        raise RowError(f"{field_name}: not a plausible number ({len(raw)} characters)")
    try:
        value = to_decimal(raw)
    except ValueError as exc:
        raise RowError(f"{field_name}: {exc}") from None
    # No rate or dollar amount needs more than 30 digits either side of the point; a huge
    # exponent (1E+999999999) would overflow scaling or make norm() build a giant string.
    if value != 0 and not -30 <= value.adjusted() <= 30:
        raise RowError(f"{field_name}: implausible magnitude: {_short(raw)}")
    return value


# Amounts and rates read from FRED and Fiscal Data: no real value needs more digits or a larger
# exponent than these; beyond them a value is a bad row.
MAX_DIGITS, MAX_EXPONENT = 20, 12


def bounded_number(raw: Any, field_name: str) -> Decimal:
    """``number``, also refusing values beyond MAX_DIGITS significant digits or MAX_EXPONENT."""
    value = number(raw, field_name)
    if value and not (abs(value.adjusted()) <= MAX_EXPONENT
                      and len(value.as_tuple().digits) <= MAX_DIGITS):
        raise RowError(f"{field_name}: out of range: {str(raw)[:40]!r}")
    return value


def _short(raw: Any) -> str:
    text = str(raw)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def published_text(series: str, day: date, fetched_at: datetime | None) -> str:
    """Nominal publication time; live, a fact cannot have been published after we fetched it."""
    nominal = nominal_publication(series, day)
    return utc_text(nominal) if fetched_at is None else cap_published(nominal, fetched_at)


def new_york_date(moment: datetime | None) -> date | None:
    """The New York date of an instant: the latest date a fact fetched then can carry."""
    return None if moment is None else moment.astimezone(NEW_YORK).date()


def vetted(candidates: list[tuple[str, NewEvent]], today: date | None,
           bad_rows: list[str]) -> list[NewEvent]:
    """The observations among ``(row label, event)`` candidates that are facts (DESIGN "Facts").

    - Rows of one answer that give one (series, date) different values (value or attributes)
      contradict each other: all of them are refused, each naming the others. Identical
      repeats are one fact.
    - A row that breaks its series' plausibility contract (``series.implausible``: dated after
      ``today``, the New York date of the fetch, or before the series began; a value or an
      attribute outside its band; percentiles out of order) is refused naming the bound.

    Refusals are appended to ``bad_rows`` as ``"<label>: <reason>"``; good rows are returned in
    their order, so they still land."""
    groups: dict[tuple[str, str], list[tuple[str, NewEvent]]] = {}
    for label, event in candidates:
        groups.setdefault((event.payload["series"], event.payload["date"]), []).append((label, event))
    refused: dict[int, str] = {}
    for (series, day), rows in groups.items():
        distinct = {_content(event) for _, event in rows}
        if len(distinct) > 1:
            fields = _differing([event for _, event in rows])
            for label, event in rows:
                others = ", ".join(f"{other_label} {_values(other, fields)}"
                                   for other_label, other in rows if other is not event)
                refused[id(event)] = (f"{series} {day} given {len(distinct)} different values in "
                                      f"one answer: this row {_values(event, fields)}, {others}: "
                                      f"{'both' if len(rows) == 2 else 'all'} refused")
    kept: list[NewEvent] = []
    seen: set[tuple[str, str]] = set()
    for label, event in candidates:
        p = event.payload
        reason = refused.get(id(event))
        if reason is None:
            if (p["series"], p["date"]) in seen:
                continue                # the same row again: one fact
            seen.add((p["series"], p["date"]))
            reason = implausible(p["series"], date.fromisoformat(p["date"]), Decimal(p["value"]),
                                 p.get("attributes") or {}, today=today)
        if reason is None:
            kept.append(event)
        else:
            bad_rows.append(f"{label}: {reason}")
    return kept


def _content(event: NewEvent) -> tuple:
    p = event.payload
    return p["value"], tuple(sorted((p.get("attributes") or {}).items()))


def _fields(event: NewEvent) -> dict[str, str | None]:
    return {"value": event.payload["value"], **(event.payload.get("attributes") or {})}


def _differing(events: list[NewEvent]) -> list[str]:
    """The fields (value, attributes) on which rows for one date disagree."""
    every = [_fields(event) for event in events]
    names = sorted({name for fields in every for name in fields}, key=lambda n: (n != "value", n))
    return [name for name in names if len({fields.get(name) for fields in every}) > 1]


def _values(event: NewEvent, names: list[str]) -> str:
    fields = _fields(event)
    return ", ".join(f"{name} {shown(Decimal(fields[name])) if fields.get(name) is not None else 'absent'}"
                     for name in names)


def failures_of(source: str, parsed: Parsed, what: str, now: datetime,
                url: str) -> list[NewEvent]:
    """The failure event a parsed payload calls for: none, a bad body, or bad rows.

    Reasons and URLs reaching here are already redacted (FRED uses this too)."""
    if parsed.body_error:
        log.warning("%s %s: bad response body: %s", source, what, parsed.body_error)
        return [failure_event(source, f"{what}: bad response body: {parsed.body_error}", now,
                              url=url)]
    if parsed.bad_rows:
        n, good = len(parsed.bad_rows), len(parsed.events)
        log.warning("%s %s: %d bad row(s), %d recorded", source, what, n, good)
        return [failure_event(source, f"{what}: {n} bad row(s) rejected, {good} recorded", now,
                              url=url, bad_rows=parsed.bad_rows, recorded_rows=good)]
    return []
