"""Composite rules' state machine: firing when enough member rules fire (``all``/``any``/``at_least``).

A composite follows its members' emitted firing states; its inputs are the members' last moves
(``Engine.moved``), so a composite alert says which members made it fire.
"""
from __future__ import annotations

from watchdog.model.events import AlertTransition, InputValue
from watchdog.rules.ruleset import CompositeRule, render_summary


def _as_input(t: AlertTransition) -> InputValue | None:
    """A member rule's last firing/resolved transition as a composite's input: its date and
    value, published when the newest fact behind it was (its engine time if it read none)."""
    if t.value is None:
        return None
    published = max((i.published_at for i in t.inputs.values()), default=t.evaluated_at)
    return InputValue(date=t.date, value=t.value, published_at=published)


class CompositeRules:
    """The engine's composite-rule steps (mixed into ``Engine``: ``emitted``, ``moved``)."""

    # ---- composites ----
    def _composites(self, changed: list[AlertTransition], now: str, seq: int) -> list[AlertTransition]:
        """Re-evaluate composite rules whose members just changed state (to a fixpoint, so a
        composite of composites follows)."""
        if not changed or not self.ruleset.composite_rules:
            return []
        out: list[AlertTransition] = []
        moved = [t for t in changed if t.state in ("firing", "resolved")]
        for _ in range(len(self.ruleset.composite_rules) + 1):
            new = [t for rule in self.ruleset.composite_rules
                   if (t := self._composite(rule, moved, now, seq)) is not None]
            if not new:
                return out
            out += new
            moved = new
        return out

    def _composite(self, rule: CompositeRule, moved: list[AlertTransition], now: str,
                   seq: int) -> AlertTransition | None:
        causes = [t for t in moved if t.rule in rule.members]
        if not causes:
            return None
        firing = {r for r, state in self.emitted.items() if state == "firing"}
        holds, was = rule.holds(firing), rule.id in firing
        if holds == was:
            return None
        state = "firing" if holds else "resolved"
        self.emitted[rule.id] = state
        count = sum(1 for m in rule.members if m in firing)
        date = max(t.date for t in causes)
        values = {"rule": rule.id, "severity": rule.severity, "date": date, "firing": str(count)}
        # its inputs are the members that decide it: those firing now and those that just moved
        caused = {t.rule for t in causes}
        inputs = {m: _as_input(self.moved[m]) for m in rule.members
                  if (m in firing or m in caused) and m in self.moved}
        t = AlertTransition(
            rule=rule.id, rule_hash=rule.hash, state=state, date=date, value=str(count),
            severity=rule.severity, evaluated_at=now, labels=dict(rule.labels), cause_seq=seq,
            reason=f"{count} of {len(rule.members)} member rules firing "
                   f"({', '.join(m for m in rule.members if m in firing) or 'none'})",
            summary=render_summary(rule, values), deadline=causes[0].deadline,
            inputs={m: i for m, i in inputs.items() if i is not None})
        self.moved[rule.id] = t
        return t
