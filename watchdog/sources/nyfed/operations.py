"""New York Fed repo and reverse-repo operation results: Standing Repo Facility (``srf``) and
ON RRP (``onrrp``) take-up per operation date, in USD billions.

``parse_operations`` is pure: bytes in, observation events and named bad operations out.
``NyFedOperationsSource`` is the edge: one date search per poll (quarterly chunks for a backfill),
every failure turned into a ``source-failed`` event.

Decisions (research/data-sources.md section 1, "Operations quirks"):
- A day's take-up is the SUM of its operations of one type (the SRF runs a morning and an
  afternoon operation), never the first row. Small Value Exercises (operationId ending " 99", or
  a note saying "Small Value Exercise") are tests and are excluded from both series.
- Term operations are excluded from both series. ``onrrp`` is the *overnight* facility (FRED's
  RRPONTSYD, which may fill dates we lack, counts overnight operations only), and the SRF is an
  overnight facility too: the one term repo in the fixture (RP 030823 1, 2023-03-08, a 10:30
  operation with a $75mn limit) is an off-schedule exercise, not SRF usage. Excluded operations
  are named in the provenance of the date they share.
- The accepted amount of an operation is the sum of ``details[].amtAccepted``, not the top-level
  ``totalAmtAccepted``: the two disagree exactly once in the fixture (SVE RP 111722 99: total 0,
  details $94mn) and there the details are corroborated by the counterparty split (8+12+51+23 =
  $94mn) and by 94 counterparties each taking the SVE's $1mn, so the itemised figure is the true
  one. The total is used only when an operation has no usable details. When they disagree both
  go into provenance.
- ``published_at`` is the latest ``lastUpdated`` (New York time) of the operations summed, the
  source's own timestamp; an operation without one is stood in for by the series' nominal
  publication time. Live it is capped at the fetch time. A record edited after its day is dated
  by its edit (RP 010523 1 of 2023-01-05 was updated 2023-01-13 to add a settlement note): later
  than the first print, but nothing later than ``lastUpdated`` can leak into a replay.
- ``vintage`` (provenance) lets the store date a revision by ``published_at`` instead of by when
  the log learned it. It is set only when ``lastUpdated`` dates everything in the record, i.e.
  when the record carries no counterparty split: the split (``propositions``) is added weeks
  later WITHOUT ``lastUpdated`` moving (212 of 213 records with a split in the fixture were last
  updated on their own operation day, while operations of the previous seven weeks still had
  none), so a revision that adds it must be dated when the log learned it, or a replay would
  know the split weeks before it was public.
- Rate fields (``minimumBidRate``, ``percentAwardRate``, the 2025 full-allotment fixed rate) are
  not read: the corridor rates come from the implementation notes, so a changed or absent rate
  field can never cost a take-up figure. ``operationMethod`` is kept as free text in provenance.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import aiohttp

from watchdog.model.config import NyFedConfig
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import is_missing, norm, scale
from watchdog.model.redact import redact_url
from watchdog.market.series import nominal_publication, spec
from watchdog.sources.base import Sleep, cap_published, failure_event, fetch
from watchdog.sources.parsing import (BodyError, Parsed, RowError, array_field, failures_of,
                                      json_field, json_kind, load_json, new_york_date, number,
                                      parse_day, vetted)
from watchdog.model.timefmt import NEW_YORK, utc_text

log = logging.getLogger(__name__)

NAME = "nyfed-operations"   # the poller's name, in source-failed events
SOURCE = "nyfed"            # in observations: the primary source of srf and onrrp, so it revises

SERIES_OF_TYPE = {"repo": "srf", "reverse repo": "onrrp"}
DOLLARS_TO_BN = Decimal("0.000000001")
# No real operation comes near $10tn; a bigger number is garbage (and a huge exponent would
# overflow Decimal arithmetic instead of being reported).
MAX_AMOUNT = Decimal(10) ** 13
FIRST_YEAR = 1990                   # parse_day already refuses years after 2199
# The counterparty split is published up to about two months late (fixture: operations of
# 2023-03-01..04-21 still lacked it on 04-21), so the live search must reach that far back or
# the split would never be recorded.
SPLIT_WINDOW_DAYS = 100

_SVE_ID = re.compile(r"\s99$")
_ID_DATE = re.compile(r"^\s*R[PR]\s+(\d{2})(\d{2})(\d{2})\s+\d+\s*$")
_COUNTERPARTY = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class _Op:
    """One usable operation; ``excluded`` names why it counts towards no series."""
    label: str
    series: str
    day: date
    excluded: str | None = None
    accepted: Decimal = Decimal(0)          # US dollars: what the daily sum uses
    total: Decimal | None = None            # totalAmtAccepted as published
    details: Decimal | None = None          # sum of details[].amtAccepted, when usable
    updated: datetime | None = None         # lastUpdated, UTC
    split: dict[str, Decimal] | None = None
    method: str = ""
    note: str = ""


# ---- pure parsing ----

def parse_operations(body: bytes, *, fetched_at: datetime | None, source_url: str,
                     today: date | None = None) -> Parsed:
    """One ``srf`` and one ``onrrp`` observation per operation date of a
    ``{"repo": {"operations": [...]}}`` body, and a reason per bad operation.

    ``fetched_at`` caps ``published_at`` live; ``None`` (history, backfill) does not. An empty
    list means "not yet published": no events and no error, never a zero take-up. A daily
    figure that is not a fact (``parsing.vetted``: dated after ``today``, by default the New
    York date of ``fetched_at``, or before the series began; outside the amount band) is named.
    """
    try:
        rows = _operation_rows(body)
    except BodyError as exc:
        return Parsed(body_error=str(exc))
    parsed = Parsed()
    ops, dropped = _collect(rows, parsed.bad_rows)
    url = redact_url(source_url)
    groups: dict[tuple[str, date], list[_Op]] = defaultdict(list)
    for op in ops:
        groups[(op.series, op.day)].append(op)
    candidates: list[tuple[str, NewEvent]] = []
    for (series, day), group in groups.items():
        if (series, day) not in dropped:
            event = _daily_event(series, day, group, fetched_at=fetched_at, url=url)
            if event is not None:
                label = ", ".join(op.label for op in group if op.excluded is None)
                candidates.append((f"{series} {day.isoformat()} ({label})", event))
    today = today if today is not None else new_york_date(fetched_at)
    parsed.events = vetted(candidates, today, parsed.bad_rows)
    return parsed.in_date_order()


def _operation_rows(body: bytes) -> list[Any]:
    repo = json_field(load_json(body), "repo")
    if not isinstance(repo, dict):
        raise BodyError(f"'repo' is a JSON {json_kind(repo)}, expected an object with 'operations'")
    return array_field(repo, "operations")


def _collect(rows: list[Any], bad_rows: list[str]) -> tuple[list[_Op], set[tuple[str, date]]]:
    """The usable operations, and the (series, date) sums a bad operation makes unknowable:
    those are dropped, never recorded short."""
    ops: list[_Op] = []
    dropped: set[tuple[str, date]] = set()
    seen_ids: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        try:
            op = _operation(row)
            if op.label != "?" and op.label in seen_ids:
                raise RowError(f"operationId: repeats operation {seen_ids[op.label]}")
        except RowError as exc:
            claimed = _claim(row)
            dropped.update(claimed)
            bad_rows.append(_bad_row_text(index, row, exc, claimed))
            continue
        seen_ids.setdefault(op.label, index)
        ops.append(op)
    return ops, dropped


def _operation(row: Any) -> _Op:
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got a JSON {json_kind(row)}")
    day = _operation_day(row.get("operationDate"))
    series = _series_of(row.get("operationType"))
    label = _label(row)
    excluded = _exclusion(row)
    if excluded:
        # Not counted, so its amounts are not read: a test operation cannot cost a real figure.
        return _Op(label, series, day, excluded=excluded)
    accepted, total, details = _accepted(row)
    split = _split(row.get("propositions")) if series == "onrrp" else None
    return _Op(label, series, day, accepted=accepted, total=total, details=details,
               updated=_updated(row.get("lastUpdated"), day), split=split,
               method=_text(row.get("operationMethod")), note=_text(row.get("note")))


def _operation_day(raw: Any) -> date:
    day = parse_day(raw, "operationDate")
    if day.year < FIRST_YEAR:
        raise RowError(f"operationDate: implausible date {raw!r}")
    return day


def _series_of(raw: Any) -> str:
    if not isinstance(raw, str):
        raise RowError("operationType: missing" if raw is None
                       else f"operationType: not a string: {_shown(raw)}")
    series = SERIES_OF_TYPE.get(" ".join(raw.split()).lower())
    if series is None:
        raise RowError(f"operationType: unknown {raw!r} (expected 'Repo' or 'Reverse Repo')")
    return series


def _shown(raw: Any) -> str:
    """A payload value as its JSON text reads (Decimal('7') is 7 there)."""
    return str(raw) if isinstance(raw, Decimal) else repr(raw)


def _text(raw: Any) -> str:
    return " ".join(raw.split()) if isinstance(raw, str) else ""


def _label(row: dict) -> str:
    return _text(row.get("operationId")) or "?"


def _is_sve(row: dict) -> bool:
    note = _text(row.get("note")).lower()
    return bool(_SVE_ID.search(_label(row))) or "small value exercise" in note


def _exclusion(row: dict) -> str | None:
    """Why an operation counts towards no series: a test (SVE) or a term operation."""
    if _is_sve(row):
        return "small value exercise"
    term = row.get("term")
    if not isinstance(term, str):
        raise RowError("term: missing" if term is None else f"term: not a string: {_shown(term)}")
    kind = term.strip().lower()
    if kind == "term":
        return "term operation"
    if kind != "overnight":
        raise RowError(f"term: unknown {term!r} (expected 'Overnight' or 'Term')")
    return None


def _amount(raw: Any, field_name: str) -> Decimal:
    if is_missing(raw):
        raise RowError(f"{field_name}: missing")
    value = number(raw, field_name)
    if value < 0 or value >= MAX_AMOUNT:
        raise RowError(f"{field_name}: implausible amount {_shown(raw)}")
    return value


def _accepted(row: dict) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """(amount used, top-level total, details sum): the details are authoritative (module doc)."""
    raw_total = row.get("totalAmtAccepted")
    total = None if is_missing(raw_total) else _amount(raw_total, "totalAmtAccepted")
    details = _details_sum(row.get("details"))
    if details is not None:
        return details, total, details
    if total is None:
        raise RowError("no accepted amount: neither details[].amtAccepted nor totalAmtAccepted")
    return total, total, None


def _details_sum(details: Any) -> Decimal | None:
    """Sum of ``details[].amtAccepted``; None when there is nothing to sum (absent, empty, or an
    element without the field), so the top-level total is used instead. A present but
    malformed amount makes the operation suspect: an error."""
    if details is None or details == []:
        return None
    if not isinstance(details, list):
        raise RowError(f"details: a JSON {json_kind(details)}, expected an array")
    total = Decimal(0)
    for n, item in enumerate(details):
        if not isinstance(item, dict):
            raise RowError(f"details[{n}]: expected a JSON object, got a JSON {json_kind(item)}")
        if is_missing(item.get("amtAccepted")):
            return None
        total += _amount(item["amtAccepted"], f"details[{n}].amtAccepted")
    return total


def _split(raw: Any) -> dict[str, Decimal] | None:
    """The ON RRP counterparty split (bank, gse, mmf, pd), in dollars; None until published."""
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise RowError(f"propositions: a JSON {json_kind(raw)}, expected an array")
    split: dict[str, Decimal] = {}
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RowError(f"propositions[{n}]: expected a JSON object, "
                           f"got a JSON {json_kind(item)}")
        kind = item.get("counterpartyType")
        name = kind.strip().lower() if isinstance(kind, str) else ""
        if not _COUNTERPARTY.fullmatch(name):
            raise RowError(f"propositions[{n}].counterpartyType: not a counterparty type: "
                           f"{_shown(kind)}")
        amount = _amount(item.get("amtAccepted"), f"propositions[{n}].amtAccepted")
        split[name] = split.get(name, Decimal(0)) + amount
    return split


def _updated(raw: Any, day: date) -> datetime | None:
    """``lastUpdated`` ("YYYY-MM-DD HH:MM:SS", New York) in UTC. Optional: absent, unreadable or
    dated before the operation itself (impossible, so not trusted) gives None."""
    if not isinstance(raw, str):
        return None
    try:
        local = datetime.strptime(raw.strip(), "%Y-%m-%d %H:%M:%S")
        moment = local.replace(tzinfo=NEW_YORK).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment if local.date() >= day else None


def _claim(row: Any) -> list[tuple[str, date]]:
    """The daily sums a bad operation may belong to. A recognisable SVE or term operation
    belongs to none; an unknown type could be either series; the date falls back on the
    operationId (``RP MMDDYY N``)."""
    if not isinstance(row, dict) or _is_sve(row) or _text(row.get("term")).lower() == "term":
        return []
    day = _claimed_day(row)
    if day is None:
        return []
    kind = row.get("operationType")
    series = SERIES_OF_TYPE.get(" ".join(kind.split()).lower()) if isinstance(kind, str) else None
    return [(series, day)] if series else [("onrrp", day), ("srf", day)]


def _claimed_day(row: dict) -> date | None:
    try:
        return _operation_day(row.get("operationDate"))
    except RowError:
        pass
    match = _ID_DATE.match(_label(row))
    if not match:
        return None
    month, day_of_month, year = (int(part) for part in match.groups())
    try:
        return date(2000 + year, month, day_of_month)
    except ValueError:
        return None


def _bad_row_text(index: int, row: Any, exc: RowError, claimed: list[tuple[str, date]]) -> str:
    if isinstance(row, dict):
        day = row.get("operationDate")
        label = f"{_label(row)} {day if isinstance(day, str) and day.strip() else '?'}"
    else:
        label = "?"
    text = f"operation {index} ({label}): {exc}"
    for series, day in claimed:
        text += f"; {series} for {day.isoformat()} not recorded"
    return text


def _daily_event(series: str, day: date, ops: list[_Op], *, fetched_at: datetime | None,
                 url: str) -> NewEvent | None:
    counted = [op for op in ops if op.excluded is None]
    if not counted:
        return None          # only test or term operations: no take-up figure for this date
    accepted = sum((op.accepted for op in counted), Decimal(0))
    split = _daily_split(counted) if series == "onrrp" else None
    obs = Observation(
        series=series, date=day.isoformat(), value=norm(scale(accepted, DOLLARS_TO_BN)),
        unit=spec(series).unit, source=SOURCE,
        attributes={name: norm(scale(v, DOLLARS_TO_BN)) for name, v in (split or {}).items()},
        provenance=_provenance(ops, counted, accepted, url, dated=split is None),
    )
    return new_observation(obs, _published(series, day, counted, fetched_at))


def _daily_split(counted: list[_Op]) -> dict[str, Decimal] | None:
    """The date's split, only when every operation summed has one (a partial split would not
    add up to the take-up)."""
    if any(op.split is None for op in counted):
        return None
    split: dict[str, Decimal] = defaultdict(Decimal)
    for op in counted:
        for name, amount in (op.split or {}).items():
            split[name] += amount
    return dict(split)


def _published(series: str, day: date, counted: list[_Op], fetched_at: datetime | None) -> str:
    stamps = [op.updated for op in counted if op.updated is not None]
    if len(stamps) < len(counted):
        # The latest of the operations' own stamps could predate the unstamped one's results.
        stamps.append(nominal_publication(series, day))
    latest = max(stamps)
    return utc_text(latest) if fetched_at is None else cap_published(latest, fetched_at)


def _provenance(ops: list[_Op], counted: list[_Op], accepted: Decimal, url: str, *,
                dated: bool) -> dict[str, str]:
    prov = {"url": url, "raw_value": norm(accepted), "raw_unit": "USD",
            "operations": ", ".join(op.label for op in counted)}
    methods = sorted({op.method for op in counted if op.method})
    if methods:
        prov["method"] = ", ".join(methods)
    excluded = [f"{op.label} ({op.excluded})" for op in ops if op.excluded]
    if excluded:
        prov["excluded"] = "; ".join(excluded)
    disagree = [op for op in counted
                if op.total is not None and op.details is not None and op.total != op.details]
    if disagree:
        prov["total_amt_accepted"] = norm(sum((op.total if op.total is not None else op.accepted
                                               for op in counted), Decimal(0)))
        prov["details_amt_accepted"] = norm(accepted)
        prov["amount_disagreement"] = ", ".join(op.label for op in disagree)
    from_total = [op.label for op in counted if op.details is None]
    if from_total:
        prov["amount_from_total"] = ", ".join(from_total)
    notes = [op.note for op in counted if op.note]
    if notes:
        prov["notes"] = " | ".join(notes)
    stamps = [op.updated for op in counted]
    if dated and None not in stamps:
        prov["vintage"] = utc_text(max(s for s in stamps if s is not None))
    return prov


# ---- the source ----

def quarters(since: date, until: date) -> list[tuple[date, date]]:
    """[since, until] cut at calendar quarter ends, oldest first (backfill requests)."""
    chunks = []
    start = since
    while start <= until:
        end = min(_quarter_end(start), until)
        chunks.append((start, end))
        start = end + timedelta(days=1)
    return chunks


def _quarter_end(day: date) -> date:
    last_month = (day.month - 1) // 3 * 3 + 3
    if last_month == 12:
        return date(day.year, 12, 31)
    first_after = date(day.year, last_month + 1, 1)
    return first_after - timedelta(days=1)


class NyFedOperationsSource:
    """Polls the NY Fed repo/reverse-repo results date search; never raises out of ``poll`` or
    ``backfill``.

    The date search (``/api/rp/results/search.json``) is used, not ``last/{N}`` (the only path
    seen in a real payload): N counts operations, not days, so the oldest day of a ``last/N``
    answer can be cut between its morning and afternoon SRF operations, and a short sum would
    flip-flop as a revision from poll to poll. A date search always returns whole days.
    ``clock_now`` (optional) stamps the moment a response arrived, which caps published_at.
    """
    name = NAME

    def __init__(self, config: NyFedConfig, clock_now: Callable[[], datetime] | None = None, *,
                 split_window_days: int = SPLIT_WINDOW_DAYS, sleep: Sleep = asyncio.sleep):
        self.config = config
        self._clock_now = clock_now
        self._split_window_days = split_window_days
        self._sleep = sleep
        self._timeout_s = config.timeout.total_seconds()

    def search_url(self) -> str:
        return f"{self.config.base_url.rstrip('/')}/api/rp/results/search.json"

    def window(self, now: datetime) -> tuple[date, date]:
        """New York 'today' back ``lookback_days``, and at least far enough for late splits."""
        end = now.astimezone(NEW_YORK).date()
        return end - timedelta(days=max(self.config.lookback_days, self._split_window_days)), end

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        start, end = self.window(now)
        return await self._guarded(session, start, end, now, live=True)

    async def backfill(self, session: aiohttp.ClientSession, since: date,
                       now: datetime) -> list[NewEvent]:
        """History from ``since`` to New York today, one request per calendar quarter, in order.
        published_at is the source's own (or the nominal) time, not capped at the fetch."""
        events: list[NewEvent] = []
        since = max(since, date(FIRST_YEAR, 1, 1))    # earlier dates are refused as implausible
        for start, end in quarters(since, now.astimezone(NEW_YORK).date()):
            events += await self._guarded(session, start, end, now, live=False)
        return events

    async def _guarded(self, session: aiohttp.ClientSession, start: date, end: date,
                       now: datetime, *, live: bool) -> list[NewEvent]:
        try:
            return await self._search(session, start, end, now, live=live)
        except Exception as exc:  # a bug must not stop the daemon: record it and carry on
            log.exception("%s: unexpected error", NAME)
            return [failure_event(NAME, f"operations {start}..{end}: internal error: "
                                        f"{type(exc).__name__}: {exc}", now, url=self.search_url())]

    async def _search(self, session: aiohttp.ClientSession, start: date, end: date,
                      now: datetime, *, live: bool) -> list[NewEvent]:
        what = f"operations {start}..{end}"
        params = {"startDate": start.isoformat(), "endDate": end.isoformat()}
        got = await fetch(session, self.search_url(), params=params, timeout_s=self._timeout_s,
                          retries=self.config.retries, sleep=self._sleep)
        if got.error is not None:
            log.warning("%s %s: %s (%s)", NAME, what, got.error, got.url)
            return [failure_event(NAME, f"{what}: {got.error}", now, url=got.url)]
        fetched_at = (self._clock_now() if self._clock_now else now) if live else None
        parsed = parse_operations(got.body, fetched_at=fetched_at, source_url=got.url,
                                  today=new_york_date(now))
        return parsed.events + failures_of(NAME, parsed, what, now, got.url)
