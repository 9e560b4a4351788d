"""Metrics: each daemon has its own registry, and the figures follow the events it folds."""
from __future__ import annotations

from prometheus_client import generate_latest

from watchdog.daemon.metrics import Metrics
from watchdog.model.events import (
    AlertTransition, NotificationOutcome, NotificationSuppressed, SourceFailure, StoredEvent,
)

AT = "2026-01-01T00:00:00.000000Z"


def _event(type_: str, payload, seq: int = 1) -> StoredEvent:
    body = payload if isinstance(payload, dict) else payload.wire()   # as the daemon writes it
    return StoredEvent(seq, type_, f"k{seq}", AT, AT, body, "0" * 64)


def test_two_daemons_keep_separate_figures():
    a, b = Metrics(), Metrics()
    a.observe_event(_event("observation-recorded", {"series": "sofr"}))
    text_a, text_b = generate_latest(a.registry).decode(), generate_latest(b.registry).decode()
    assert 'watchdog_events_appended_total{family="observation"} 1.0' in text_a
    assert 'family="observation"' not in text_b


def test_failures_alerts_and_notification_outcomes_are_counted_by_label():
    m = Metrics()
    m.observe_event(_event("source-failed", SourceFailure(source="nyfed", reason="HTTP 503")))
    m.observe_event(_event("alert-firing", AlertTransition(
        rule="r", rule_hash="0" * 64, state="firing", date="2025-12-31", value="12", severity="warning",
        evaluated_at=AT, reason="12 > 10")))
    m.observe_event(_event("notification-sent", NotificationOutcome(receiver="desk", delivery="d")))
    m.observe_event(_event("notification-sent", NotificationOutcome(receiver="desk", delivery="e")))
    m.observe_event(_event("notification-suppressed", NotificationSuppressed(
        group="g", receiver="desk", route="default", rule="r", instance="r@x", date="2025-12-31",
        reason="silence", detail="silenced by s1", decided_at=AT)))
    m.observe_event(_event("notification-failed", NotificationOutcome(receiver="oncall", delivery="f")))
    text = generate_latest(m.registry).decode()
    assert 'watchdog_fetch_failures_total{source="nyfed"} 1.0' in text
    assert 'watchdog_alert_transitions_total{state="firing"} 1.0' in text
    assert 'watchdog_notifications_total{outcome="sent",receiver="desk"} 2.0' in text
    assert 'watchdog_notifications_total{outcome="suppressed",receiver="desk"} 1.0' in text
    assert 'watchdog_notifications_total{outcome="failed",receiver="oncall"} 1.0' in text


def test_a_refused_write_flips_store_writable_until_a_write_succeeds():
    m = Metrics()
    m.store_write(False)
    text = generate_latest(m.registry).decode()
    assert "watchdog_store_writable 0.0" in text and "watchdog_store_write_failures_total 1.0" in text
    m.store_write(True)
    assert "watchdog_store_writable 1.0" in generate_latest(m.registry).decode()
