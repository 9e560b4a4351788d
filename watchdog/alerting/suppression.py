"""Suppression: why an alert is not told, first reason wins.

1. ``silence``: an active silence (operator's explicit decision about this alert).
2. ``inhibition``: a firing source alert suppresses this target (depends on other alerts).
3. ``mute``: a mute interval of the delivery's route is in force (a policy on time, not alert).

Alertmanager runs inhibition, then time intervals, then silences; whichever runs first, the same
alerts are suppressed; only the recorded reason differs.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from watchdog.alerting.dispatch import Delivery
from watchdog.alerting.inhibit import inhibited
from watchdog.alerting.mutes import _mute_text, applicable_mutes, muted
from watchdog.alerting.silences import Silence, silenced
from watchdog.model.config import InhibitRule, MuteInterval


@dataclass(frozen=True)
class Suppression:
    """A ``notification-suppressed`` reason (``silence``, ``inhibition`` or ``mute``) and the
    detail that says which silence, inhibit rule or mute interval."""
    reason: Literal["silence", "inhibition", "mute", "catch-up", "resolved-before-flush"]
    detail: str


def suppression_reason(alert: Mapping[str, Any], now: datetime, *,
                       silences: Iterable[Silence] = (),
                       firing_alerts: Iterable[Mapping[str, Any]] = (),
                       inhibit_rules: Sequence[InhibitRule] = (),
                       mutes: Mapping[str, MuteInterval] | None = None,
                       delivery: Delivery | None = None) -> Suppression | None:
    """Why a notification of ``alert`` (to ``delivery``'s receiver) is not sent at ``now``, or
    None. Order, first reason wins: silence, inhibition, mute (module docstring). Mutes apply
    per route (``applicable_mutes``): without a ``delivery`` every matching interval applies."""
    why = silenced(alert, silences, now)
    if why:
        return Suppression("silence", why)
    why = inhibited(alert, firing_alerts, inhibit_rules)
    if why:
        return Suppression("inhibition", why)
    mutes = mutes or {}
    for name in applicable_mutes(alert, delivery.route if delivery else None, mutes):
        if muted(now, mutes[name]):
            return Suppression("mute", f"mute {name} ({_mute_text(mutes[name])})")
    return None
