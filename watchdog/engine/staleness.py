"""Staleness rules' state machine: a series that has not published what its calendar says is due.

The only transitions that need no new event: the engine arms a deadline per rule
(``next_deadline``/``tick``); a fact of the series re-checks at once. When a value is due comes
from watchdog.market.staleness (its nominal publication plus the rule's ``grace``).
"""
from __future__ import annotations

from datetime import date as Date
from datetime import timedelta

from watchdog.market.calendar import business_days_between, next_business_day
from watchdog.market.series import SERIES, nominal_publication
from watchdog.market.staleness import expected_date
from watchdog.model.events import AlertTransition, InputValue
from watchdog.model.numbers import norm
from watchdog.model.timefmt import parse_utc, utc_text
from watchdog.rules.ruleset import StalenessRule, render_summary


def _late_text(delta: timedelta) -> str:
    """How long past due, for people: "3h05m", "2d 4h"."""
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h{minutes:02d}m"


def _business_days_late(series: str, latest: str, expected: str) -> int:
    return business_days_between(SERIES[series].calendar, Date.fromisoformat(latest), Date.fromisoformat(expected))


class StalenessRules:
    """The engine's staleness-rule steps (mixed into ``Engine``: ``deadlines``, ``_expected``, ``_grace``)."""

    def _arm(self, rule: StalenessRule, now: str) -> None:
        if self.data.dates.get(rule.series):     # a series never seen is not late yet
            self._set_deadline(rule.id, self._expected_at(rule, now)[1])

    def _expected_at(self, rule: StalenessRule, now: str) -> tuple[str, str, str, Date, Date]:
        """(from, until, expected, expected as a date, the business day after it):
        ``staleness.expected_date`` at ``now``, which holds until the next deadline ``until``
        (= ``staleness.next_deadline``). Computed once per deadline; at the deadline itself the
        expected date is the business day after the previous one (its value fell due then:
        publication times increase with the date), so no search."""
        cached = self._expected.get(rule.id)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached
        if cached is not None and now == cached[1]:
            day = cached[4]                       # the business day after the expected one
        else:
            day = expected_date(rule.series, parse_utc(now), self._grace[rule.id])
        following = next_business_day(SERIES[rule.series].calendar, day)
        until = nominal_publication(rule.series, following) + self._grace[rule.id]
        cached = self._expected[rule.id] = (now, utc_text(until), day.isoformat(), day, following)
        return cached

    def _stale_on_fact(self, series: str, now: str, seq: int) -> list[AlertTransition]:
        out = []
        for rule in self._stale_by_series.get(series, ()):
            if rule.id not in self.deadlines:
                self._arm(rule, now)
            out.extend(self._stale_check(rule, now, cause_seq=seq))
        return out

    def _stale_check(self, rule: StalenessRule, now: str, *, deadline: str = "",
                     cause_seq: int = 0) -> list[AlertTransition]:
        dates = self.data.dates.get(rule.series)
        if not dates:
            return []
        expected = self._expected_at(rule, now)[2]
        latest, firing = dates[-1], self.emitted.get(rule.id) == "firing"
        if (latest < expected) == firing:
            return []
        state, date = ("firing", expected) if latest < expected else ("resolved", latest)
        late = max(0, _business_days_late(rule.series, latest, expected))
        point = self.data.points[rule.series][latest]
        if state == "firing":
            # how late: since the first missing value fell due, not only the latest one
            first = next_business_day(SERIES[rule.series].calendar, Date.fromisoformat(latest))
            due = nominal_publication(rule.series, first)
            reason = (f"{rule.series} for {expected} not published {rule.grace} after it was due; "
                      f"nothing since {latest}: {late} business day{'s' if late != 1 else ''} "
                      f"missing, the first ({first.isoformat()}) due {utc_text(due)[:16]}Z, "
                      f"{_late_text(parse_utc(now) - due)} ago; last value {norm(point.value)} "
                      f"published {point.published_at[:16]}Z")
        else:
            reason = f"{rule.series} for {latest} arrived (published {point.published_at})"
        values = {"rule": rule.id, "severity": rule.severity, "date": date, "series": rule.series,
                  "value": str(late)}
        self.emitted[rule.id] = state
        # the series' last value is the input a desk reads: what it last knew, and when
        inputs = {rule.series: InputValue(date=latest, value=norm(point.value), published_at=point.published_at)}
        t = AlertTransition(rule=rule.id, rule_hash=rule.hash, state=state, date=date,
                                value=str(late) if state == "firing" else "0", severity=rule.severity,
                                evaluated_at=now, reason=reason, summary=render_summary(rule, values),
                                labels=dict(rule.labels), cause_seq=cause_seq, deadline=deadline,
                                inputs=inputs)
        self.moved[rule.id] = t
        return [t]
