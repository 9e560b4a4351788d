"""Routing (Alertmanager's dispatch): which receivers an alert goes to, grouped how.

``[[routes]]`` are tried in file order; a route matches when every ``match`` label equals and
every ``match_re`` regex (RE2: linear time, see watchdog.model.patterns) matches the whole value
(``rule`` is the rule id, ``severity`` the severity, other names are the rule's labels; an absent
label is ""). The first match stops the walk unless it has ``continue = true``. Each matching
route yields one ``Delivery`` per receiver with the route's grouping; a receiver already reached
by an earlier route in the walk is not reached twice. No match: the default receivers (every
configured receiver, or ``console``) with the default grouping. Pure: no I/O, no clock.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from watchdog.model.config import Config, Route
from watchdog.model.patterns import fullmatch

DEFAULT_RECEIVER = "console"


DEFAULT_ROUTE_ID = "default"


ALL_LABELS = "..."


def alert_labels(alert: Mapping[str, Any]) -> dict[str, str]:
    """The labels routes, groups, inhibitions and silences see: the rule's ``labels`` plus
    ``rule`` (the rule id) and ``severity``, which rules may not set as labels."""
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    labels["rule"] = str(alert.get("rule", ""))
    labels["severity"] = str(alert.get("severity", ""))
    return labels


def matches(labels: Mapping[str, str], exact: Mapping[str, str],
            regex: Mapping[str, str] | None = None) -> bool:
    """Every exact matcher equals and every regex matches the whole value ("" when absent)."""
    for name, wanted in exact.items():
        if labels.get(name, "") != wanted:
            return False
    for name, pattern in (regex or {}).items():
        # RE2 (watchdog.model.patterns): linear in the label, whatever the pattern
        if not fullmatch(pattern, labels.get(name, "")):
            return False
    return True


def _describe(exact: Mapping[str, str], regex: Mapping[str, str] | None = None) -> str:
    parts = [f"{k}={v}" for k, v in exact.items()] + [f"{k}=~{v}" for k, v in (regex or {}).items()]
    return ", ".join(parts) or "any alert"


@dataclass(frozen=True)
class Delivery:
    """One receiver owed a notification about one alert, with the grouping of the route that
    sent it there. ``group`` identifies the group (and its ``GroupState``) across restarts; it
    names the route by ``name`` when the route has one, else by its position."""
    receiver: str
    route: Route
    route_id: str
    group_key: str
    reason: str

    @property
    def group(self) -> str:
        return f"{self.receiver}/{self.route_id}/{self.group_key}"


def default_receivers(config: Config) -> list[str]:
    """Where an alert no route matches goes: every configured receiver, or ``console``."""
    return sorted(config.receivers) or [DEFAULT_RECEIVER]


@lru_cache(maxsize=64)
def _default_route(receivers: tuple[str, ...]) -> Route:
    return Route(receivers=list(receivers) or [DEFAULT_RECEIVER])


def route(alert: Mapping[str, Any], routes: Sequence[Route],
          default_receivers: Sequence[str]) -> list[Delivery]:
    """The deliveries of ``alert``: walk ``routes`` in order (see the module docstring)."""
    labels = alert_labels(alert)
    out: list[Delivery] = []
    seen: set[str] = set()
    matched = False
    for index, r in enumerate(routes):
        if not matches(labels, r.match, r.match_re):
            continue
        matched = True
        route_id = r.name or f"routes[{index}]"
        why = f"{route_id} matched {_describe(r.match, r.match_re)}"
        for receiver in r.receivers:
            if receiver not in seen:
                seen.add(receiver)
                out.append(Delivery(receiver, r, route_id, group_key(alert, r.group_by), why))
        if not r.continue_:
            break
    if not matched:
        fallback = _default_route(tuple(default_receivers))
        for receiver in fallback.receivers:
            out.append(Delivery(receiver, fallback, DEFAULT_ROUTE_ID,
                                group_key(alert, fallback.group_by),
                                "no route matched: default receivers"))
    return out


def group_key(alert: Mapping[str, Any], group_by: Sequence[str]) -> str:
    """``{area="repo",rule="sofr-over-iorb"}``: the ``group_by`` labels the alert has, sorted by
    name (labels it lacks are left out, as in Alertmanager); ``["..."]`` means every label."""
    labels = alert_labels(alert)
    names = sorted(labels) if ALL_LABELS in group_by else sorted(set(group_by) & set(labels))
    return "{" + ",".join(f"{n}={json.dumps(labels[n], ensure_ascii=False)}" for n in names) + "}"


def sends_resolved(r: Route, receiver: str) -> bool:
    """Whether ``receiver`` gets resolved notifications on route ``r``."""
    return r.send_resolved if isinstance(r.send_resolved, bool) else receiver in r.send_resolved
