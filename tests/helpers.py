"""Small helpers the source tests share: pick events apart by kind."""
from __future__ import annotations

from watchdog.model.events import OBSERVATION_RECORDED, SOURCE_FAILED, NewEvent


def by_key(events: list[NewEvent]) -> dict[str, NewEvent]:
    return {e.key: e for e in events}


def failures(events: list[NewEvent]) -> list[dict]:
    return [e.payload for e in events if e.type == SOURCE_FAILED]


def observations(events: list[NewEvent]) -> list[NewEvent]:
    return [e for e in events if e.type == OBSERVATION_RECORDED]
