"""Silences: an operator's explicit, expiring decision to keep quiet about matching alerts.

Stored as ``silence-added``/``silence-expired`` events, so live, audit and replay agree on what
was silenced; ``fold_silences`` is the state, ``silenced`` the decision at ``now`` (its id,
author and comment are in the reason, so the log says who silenced what).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchdog.alerting.dispatch import alert_labels, matches
from watchdog.model.config import check_matchers
from watchdog.model.events import SILENCE_ADDED, SILENCE_EXPIRED, NewEvent
from watchdog.model.timefmt import aware, parse_utc, utc_text

_SILENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SilenceAdded(BaseModel):
    """``silence-added`` payload. ``matchers`` are exact label values (``rule`` = the rule id,
    ``severity``, rule labels), ``matchers_re`` whole-value regexes; at least one is needed.
    Active from ``starts_at`` (inclusive) to ``ends_at`` (exclusive), fixed-width UTC."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    matchers: dict[str, str] = Field(default_factory=dict)
    matchers_re: dict[str, str] = Field(default_factory=dict)
    starts_at: str
    ends_at: str
    comment: str
    created_by: str

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _SILENCE_ID.match(value):
            raise ValueError("silence id: letters, digits, '.', '_' and '-'")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parse_utc(value)
        return value

    @field_validator("matchers")
    @classmethod
    def _exact(cls, value: dict[str, str]) -> dict[str, str]:
        return check_matchers(value)

    @field_validator("matchers_re")
    @classmethod
    def _regex(cls, value: dict[str, str]) -> dict[str, str]:
        return check_matchers(value, regex=True)

    @field_validator("comment", "created_by")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: a silence says who and why")
        return value

    @model_validator(mode="after")
    def _sane(self) -> SilenceAdded:
        if not (self.matchers or self.matchers_re):
            raise ValueError("a silence needs at least one matcher (it would silence everything)")
        if self.ends_at <= self.starts_at:   # fixed-width UTC: text order is time order
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceExpired(BaseModel):
    """``silence-expired`` payload: the silence ends at ``expired_at`` (if before its end)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    expired_at: str
    expired_by: str = ""
    comment: str = ""

    @field_validator("expired_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parse_utc(value)
        return value


def silence_added_event(added: SilenceAdded) -> NewEvent:
    return NewEvent(type=SILENCE_ADDED, key=f"silence/{added.id}/added", payload=added.model_dump())


def silence_expired_event(expired: SilenceExpired) -> NewEvent:
    return NewEvent(type=SILENCE_EXPIRED, key=f"silence/{expired.id}/expired",
                    payload=expired.model_dump())


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
            old = out.get(event.payload.get("id", ""))
            if old is None or old.expired_at is None:
                out[event.payload["id"]] = Silence.from_added(event.payload)
        elif event.type == SILENCE_EXPIRED:
            old = out.get(event.payload.get("id", ""))
            if old is not None:
                out[old.id] = old.expire(event.payload)
    return out


def silenced(alert: Mapping[str, Any], silences: Iterable[Silence], now: datetime) -> str | None:
    """Why ``alert`` is silenced at ``now`` (the first active matching silence by start time,
    then id: its id, author, end and comment), or None."""
    aware(now)
    for s in sorted(silences, key=lambda s: (s.starts_at, s.id)):
        if s.active(now) and s.matches(alert):
            return f"silence {s.id} by {s.created_by} until {utc_text(s.end)}: {s.comment}"
    return None
