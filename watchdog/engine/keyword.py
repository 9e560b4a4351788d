"""Keyword rules' state machine: a speech that matches is flagged, once (no firing, no resolve).

Matching itself (phrases, proximity, negation) is the rule language's: watchdog.rules.keywords.
"""
from __future__ import annotations

from typing import Any

from watchdog.model.events import AlertTransition
from watchdog.model.speakers import normalise_speaker
from watchdog.rules.ruleset import render_summary


class KeywordRules:
    """The engine's keyword-rule step (mixed into ``Engine``: ``keywords``)."""

    # ---- speeches and revisions (one-shot flags) ----
    def _speech(self, event: Any, now: str) -> list[AlertTransition]:
        out = []
        p = event.payload
        for rule, matcher in self.keywords:
            match = matcher.match(p)
            if match is None:
                continue
            phrases = sorted({hit.phrase for hit in match.hits})
            # The person's name, also for speeches recorded before speaker lines were
            # normalised ("For Supervision Randal K. Quarles" reads "Randal K. Quarles").
            values = {"rule": rule.id, "severity": rule.severity, "date": p["date"],
                      "speaker": normalise_speaker(p.get("speaker", "")).name,
                      "institution": p.get("institution", ""),
                      "title": p.get("title", ""), "url": p.get("url", ""), "phrase": match.hits[0].phrase}
            out.append(AlertTransition(
                rule=rule.id, rule_hash=rule.hash, state="flagged", date=p["date"],
                value=str(len(match.hits)), severity=rule.severity, evaluated_at=now,
                reason=f"{len(match.hits)} hits: {', '.join(phrases)}",
                summary=render_summary(rule, values), labels=dict(rule.labels),
                cause_seq=event.seq, link=p.get("url", ""), sentences=list(match.sentences)))
        return out
