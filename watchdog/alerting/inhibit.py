"""Inhibition: a firing source alert suppresses a target alert (Alertmanager's inhibit).

Pure: the decision takes the firing alerts and returns the inhibiting rule's description or None.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from watchdog.alerting.dispatch import alert_labels, matches
from watchdog.model.config import InhibitRule


def inhibited(alert: Mapping[str, Any], firing_alerts: Iterable[Mapping[str, Any]],
              inhibit_rules: Sequence[InhibitRule]) -> str | None:
    """Why ``alert`` is inhibited, naming the inhibit rule and the source alert, or None.

    A firing alert matching a rule's ``source`` suppresses an alert matching its ``target``
    when the ``equal`` labels have the same values (absent on both counts as equal). An alert
    does not inhibit itself; alerts whose ``state`` is not firing are not sources."""
    labels = alert_labels(alert)
    candidates = [r for r in enumerate(inhibit_rules)
                  if matches(labels, r[1].target, r[1].target_re)]
    if not candidates:
        return None
    sources = [(a, alert_labels(a)) for a in firing_alerts if a.get("state", "firing") == "firing"]
    for index, rule in candidates:
        for source, source_labels in sources:
            if source_labels["rule"] == labels["rule"]:
                continue
            if not matches(source_labels, rule.source, rule.source_re):
                continue
            if all(source_labels.get(n, "") == labels.get(n, "") for n in rule.equal):
                name = rule.name or f"inhibit[{index}]"
                same = ", ".join(f"{n}={labels.get(n, '')}" for n in rule.equal)
                return (f"{name}: {source_labels['rule']} ({source_labels['severity']}) is firing"
                        + (f" with {same}" if same else ""))
    return None
