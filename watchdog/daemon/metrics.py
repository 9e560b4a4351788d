"""Prometheus metrics of one daemon, in a registry of its own (not the process-global one), so a
test can build many daemons and each ``/metrics`` page shows exactly one daemon's figures.

``watchdog.http.server`` serves ``generate_latest(metrics.registry)``. The daemon updates the figures as
it polls and folds events (``Daemon.evaluate`` sees every committed event, including the
notification outcomes delivery writes), so nothing else needs to know about metrics.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchdog.model.events import ALERT_TYPES, SOURCE_FAILED, decode, decode_or_none

# Fetches take from tens of milliseconds (a local fake) to the 120 s session cap.
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
NOTIFICATION_OUTCOMES = {"notification-sent": "sent", "notification-failed": "failed",
                         "notification-suppressed": "suppressed"}


def type_family(event_type: str) -> str:
    """``observation-recorded`` -> ``observation``: a handful of label values, not one per type."""
    return event_type.split("-", 1)[0]


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.events_appended = Counter(
            "watchdog_events_appended", "Events committed to the log since the daemon started "
            "(by anyone: daemon, CLI), by type family", ["family"], registry=r)
        self.fetch_seconds = Histogram(
            "watchdog_fetch_seconds", "Duration of one poll of a source", ["source"],
            buckets=FETCH_BUCKETS, registry=r)
        self.fetch_failures = Counter(
            "watchdog_fetch_failures", "source-failed events recorded, by source", ["source"], registry=r)
        self.rule_evaluations = Counter(
            "watchdog_rule_evaluations", "Rule evaluations: each fact fed to each rule that reads its series",
            registry=r)
        self.evaluations = Counter(
            "watchdog_evaluations", "Completed evaluation passes (fold new events, tick deadlines)",
            registry=r)
        self.alert_transitions = Counter(
            "watchdog_alert_transitions", "Alert transitions recorded, by state", ["state"], registry=r)
        self.notifications = Counter(
            "watchdog_notifications", "Notification outcomes recorded, by receiver and outcome "
            "(sent, failed, suppressed)", ["receiver", "outcome"], registry=r)
        self.outbox_depth = Gauge(
            "watchdog_outbox_depth", "Notifications owed (not yet sent or given up)", registry=r)
        self.head_seq = Gauge("watchdog_chain_head_seq", "seq of the last committed event", registry=r)
        self.last_evaluation = Gauge(
            "watchdog_last_evaluation_timestamp_seconds", "Unix time of the last completed evaluation",
            registry=r)
        self.store_write_failures = Counter(
            "watchdog_store_write_failures", "Appends the event log refused (disk full, read-only, locked)",
            registry=r)
        self.store_writable = Gauge(
            "watchdog_store_writable", "1 when the last append to the event log succeeded", registry=r)
        self.ready = Gauge(
            "watchdog_ready", "1 when the daemon is ready (started, evaluating within deadman_after, "
            "its last write to the log accepted)",
            registry=r)
        self.reloads = Counter(
            "watchdog_reloads", "SIGHUP reloads, by result (applied, unchanged, refused)", ["result"],
            registry=r)
        self.poll_timeouts = Counter(
            "watchdog_poll_timeouts", "Polls cancelled at [daemon].poll_deadline, by source", ["source"],
            registry=r)
        self.send_timeouts = Counter(
            "watchdog_send_timeouts", "Sends given up at [daemon].send_deadline (outcome unknown), by receiver",
            ["receiver"], registry=r)
        self.clock_steps = Counter(
            "watchdog_clock_steps", "Wall-clock steps (NTP, `date -s`) and resumes from suspend the daemon "
            "noticed against its monotonic clock, by direction (forward, backward)", ["direction"], registry=r)
        self.clock_step_seconds = Gauge(
            "watchdog_last_clock_step_seconds", "Size of the last wall-clock step noticed (negative: back)",
            registry=r)
        self.store_writable.set(1)

    def observe_event(self, event) -> None:
        """Count one committed event (called once per event, in seq order)."""
        self.events_appended.labels(type_family(event.type)).inc()
        if event.type == SOURCE_FAILED:
            self.fetch_failures.labels(decode(event).source).inc()
        elif event.type in ALERT_TYPES:
            # the state is the wire name's (alert-firing: firing): nothing to decode per event
            self.alert_transitions.labels(event.type[len("alert-"):]).inc()
        elif event.type in NOTIFICATION_OUTCOMES:
            step = decode_or_none(event)
            self.notifications.labels(step.receiver if step else "?", NOTIFICATION_OUTCOMES[event.type]).inc()

    def store_write(self, ok: bool) -> None:
        if not ok:
            self.store_write_failures.inc()
        self.store_writable.set(1 if ok else 0)
