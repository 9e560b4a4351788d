"""Revision rules' state machine: a published value revised by at least the rule's threshold is flagged.
"""
from __future__ import annotations

from decimal import Decimal

from watchdog.model.events import AlertTransition
from watchdog.model.numbers import norm
from watchdog.rules.ruleset import render_summary


class RevisionRules:
    """The engine's revision-rule step (mixed into ``Engine``)."""

    def _revision(self, payload: dict, now: str, seq: int) -> list[AlertTransition]:
        out = []
        for rule in self.ruleset.revision_rules:
            if rule.series != payload["series"]:
                continue
            change = abs(Decimal(payload["value"]) - Decimal(payload["previous_value"])) * 100
            if change < rule.bp or (change == 0 and rule.bp > 0):
                continue
            values = {"rule": rule.id, "severity": rule.severity, "date": payload["date"],
                      "series": rule.series, "value": payload["value"],
                      "previous": payload["previous_value"], "change": norm(change)}
            out.append(AlertTransition(
                rule=rule.id, rule_hash=rule.hash, state="flagged", date=payload["date"],
                value=norm(change), severity=rule.severity, threshold=norm(rule.bp),
                evaluated_at=now, reason=f"{rule.series} {payload['date']} revised "
                f"{payload['previous_value']} -> {payload['value']} ({norm(change)} bp)",
                summary=render_summary(rule, values), labels=dict(rule.labels), cause_seq=seq))
        return out
