"""Small real event logs for the backtest and sweep tests: observations written through the
real store, each published at its series' nominal publication time."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from watchdog.model.events import NewEvent
from watchdog.market.series import SERIES, nominal_publication_text
from watchdog.store import SqliteEventStore

RECORDED = datetime(2026, 9, 5, tzinfo=timezone.utc)


def observation(series: str, day: str, value: str) -> NewEvent:
    spec = SERIES[series]
    payload = {"series": series, "date": day, "value": value, "unit": spec.unit,
               "source": spec.primary_source, "attributes": {},
               "provenance": {"file": f"test/{series}.csv", "raw_value": value, "raw_unit": spec.unit}}
    return NewEvent(type="observation-recorded", key=f"obs/{series}/{day}", payload=payload,
                    published_at=nominal_publication_text(series, date.fromisoformat(day)))


def write_log(path: Path, values: dict[str, dict[str, str]]) -> Path:
    """``values``: series -> {date: value}. Appended in publication order, as an import would."""
    events = sorted((observation(s, d, v) for s, by_date in values.items() for d, v in by_date.items()),
                    key=lambda e: (e.published_at, e.key))
    store = SqliteEventStore(path, now=lambda: RECORDED)
    try:
        store.append(events)
    finally:
        store.close()
    return path
