"""Silences: an operator's explicit, expiring decision to keep quiet about matching alerts.

Stored as ``silence-added``/``silence-expired`` events, so live, audit and replay agree on what
was silenced; ``fold_silences`` is the state, ``silenced`` the decision at ``now`` (its id,
author and comment are in the reason, so the log says who silenced what).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from watchdog.alerting.dispatch import alert_labels, matches
from watchdog.model.events import (
    SILENCE_ADDED,
    SILENCE_EXPIRED,
    NewEvent,
    SilenceAdded,
    SilenceExpired,
    decode,
    typed_event,
)
from watchdog.model.timefmt import aware, parse_utc, utc_text


def silence_added_event(added: SilenceAdded) -> NewEvent:
    return typed_event(SILENCE_ADDED, f"silence/{added.id}/added", added)


def silence_expired_event(expired: SilenceExpired) -> NewEvent:
    return typed_event(SILENCE_EXPIRED, f"silence/{expired.id}/expired", expired)


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: Mapping[str, str]
    matchers_re: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    expired_at: datetime | None = None
    expired_by: str = ""

    @classmethod
    def from_added(cls, payload: Mapping[str, Any] | SilenceAdded) -> Silence:
        added = payload if isinstance(payload, SilenceAdded) else SilenceAdded.model_validate(payload)
        return cls(added.id, MappingProxyType(dict(added.matchers)),
                   MappingProxyType(dict(added.matchers_re)), parse_utc(added.starts_at),
                   parse_utc(added.ends_at), added.comment, added.created_by)

    def expire(self, payload: Mapping[str, Any] | SilenceExpired) -> Silence:
        expired = payload if isinstance(payload, SilenceExpired) else SilenceExpired.model_validate(payload)
        at = parse_utc(expired.expired_at)
        if self.expired_at is not None and self.expired_at <= at:
            return self
        return replace(self, expired_at=at, expired_by=expired.expired_by)

    @property
    def end(self) -> datetime:
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def active(self, now: datetime) -> bool:
        return self.starts_at <= aware(now) < self.end

    def matches(self, alert: Mapping[str, Any]) -> bool:
        return matches(alert_labels(alert), self.matchers, self.matchers_re)


def fold_silences(events: Iterable[Any],
                  silences: Mapping[str, Silence] | None = None) -> dict[str, Silence]:
    """Silences by id from ``silence-added``/``silence-expired`` events (any objects with
    ``type`` and ``payload``). A later ``silence-added`` for an id replaces it (an edit) unless
    it was expired: expiry is final. An expiry for an unknown id is ignored."""
    out = dict(silences or {})
    for event in events:
        if event.type == SILENCE_ADDED:
            added = decode(event)
            old = out.get(added.id)
            if old is None or old.expired_at is None:
                out[added.id] = Silence.from_added(added)
        elif event.type == SILENCE_EXPIRED:
            expired = decode(event)
            old = out.get(expired.id)
            if old is not None:
                out[old.id] = old.expire(expired)
    return out


def silenced(alert: Mapping[str, Any], silences: Iterable[Silence], now: datetime) -> str | None:
    """Why ``alert`` is silenced at ``now`` (the first active matching silence by start time,
    then id: its id, author, end and comment), or None."""
    aware(now)
    for s in sorted(silences, key=lambda s: (s.starts_at, s.id)):
        if s.active(now) and s.matches(alert):
            return f"silence {s.id} by {s.created_by} until {utc_text(s.end)}: {s.comment}"
    return None
