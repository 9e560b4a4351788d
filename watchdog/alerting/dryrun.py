"""``replay --notify-dry-run``: what each receiver would have been sent, through the same outbox
the daemon runs (routing, grouping timers, inhibition, mutes, catch-up), on replay time.

Transitions arrive in known order; before each, every group timer that fell due in between is
run at its own instant (so group_wait, group_interval, repeat_interval and the end of a mute
happen when they would have live), then the alert is folded and the outbox planned at its
known instant. Every owed notification is taken as delivered at once (the dry run has no
failing receivers). Silences are operator decisions of a live run and are not replayed. Pure:
transitions and config in, notifications out.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from watchdog.alerting.dispatch import default_receivers
from watchdog.alerting.outbox import Notification, Outbox, outcome
from watchdog.model.config import Config, Route
from watchdog.model.events import (
    NOTIFICATION_SENT,
    AlertTransition,
    StoredEvent,
    new_alert,
)
from watchdog.model.timefmt import parse_utc, utc_text

MAX_TIMER_STEPS = 10_000        # repeat_interval over years of a stuck alert is bounded work


@dataclass
class _Sim:
    config: Config
    outbox: Outbox
    seq: int = 0
    wake: datetime | None = None
    sent: list = field(default_factory=list)

    def fold(self, event: Any, at: str) -> None:
        self.seq += 1
        self.outbox.apply(StoredEvent(self.seq, event.type, event.key, at, at, event.payload, ""))

    def round(self, now: datetime) -> list[tuple[datetime, Notification]]:
        plan = self.outbox.plan(now, horizon=self.config.daemon.catchup_horizon,
                                inhibit=list(self.config.inhibit), mutes=dict(self.config.mute))
        at = utc_text(now)
        for event in plan.events:
            self.fold(event, at)
        out = []
        for n in self.outbox.owed(at):
            out.append((now, n))
            self.fold(outcome(n, NOTIFICATION_SENT, attempt=1), at)
        self.wake = plan.next_check_at
        return out

    def until(self, instant: datetime) -> Iterator[tuple[datetime, Notification]]:
        """Run the group timers that fall due before ``instant``."""
        for _ in range(MAX_TIMER_STEPS):
            if self.wake is None or self.wake >= instant:
                return
            yield from self.round(self.wake)


def dry_run(transitions: Iterable[AlertTransition], config: Config,
            until: str | None = None, settle: bool = False) -> Iterator[tuple[datetime, Notification]]:
    """(instant, notification) in the order the daemon would have sent them. Group timers run
    up to ``until``; with ``settle`` (and no ``until``) up to the last transition plus the
    longest ``group_wait`` of the routes, so the first notification of a final firing is not
    left out (reminders after the end of the history are)."""
    sim = _Sim(config, Outbox(routes=list(config.routes), default_receivers=default_receivers(config)))
    batch: list[AlertTransition] = []

    def flush_batch() -> Iterator[tuple[datetime, Notification]]:
        # the daemon appends one evaluation's transitions together, then delivers
        now = parse_utc(batch[0].evaluated_at)
        yield from sim.until(now)
        for t in batch:
            sim.fold(new_alert(t), t.evaluated_at)
        yield from sim.round(now)
        batch.clear()

    for t in transitions:
        if t.state == "pending":
            continue
        if batch and t.evaluated_at != batch[0].evaluated_at:
            yield from flush_batch()
        batch.append(t)
    last = batch[0].evaluated_at if batch else None
    if batch:
        yield from flush_batch()
    if until:
        yield from sim.until(parse_utc(until))
    elif settle and last is not None:
        yield from sim.until(parse_utc(last) + longest_group_wait(config) + timedelta(microseconds=1))


def longest_group_wait(config: Config) -> timedelta:
    waits = [r.group_wait for r in config.routes] or [Route.model_fields["group_wait"].default]
    return max(waits)
