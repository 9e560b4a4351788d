"""The typed wire format: one payload model per event type, and what is stored is what the model
writes, so every payload in a log decodes to its model and writes back to the same bytes."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from watchdog.alerting.outbox import Outbox
from watchdog.model.events import (
    EVENT_TYPES,
    NOTIFICATION_SENT,
    PAYLOADS,
    SOURCE_FAILED,
    NotificationOutcome,
    SilenceAdded,
    SourceFailure,
    StoredEvent,
    canonical_json,
    decode,
    decode_or_none,
    typed_event,
)
from watchdog.store import SqliteEventStore, iter_events

REPO = Path(__file__).resolve().parent.parent


def assert_every_payload_round_trips(events) -> int:
    """Each payload decodes to its model, and the model writes it back byte for byte."""
    seen = 0
    for event in events:
        model = decode(event)
        assert isinstance(model, PAYLOADS[event.type])
        assert canonical_json(model.wire()) == canonical_json(event.payload), (event.seq, event.type)
        seen += 1
    return seen


def test_every_wire_name_has_one_frozen_strict_payload_model():
    assert set(PAYLOADS) == set(EVENT_TYPES)
    for name, model in PAYLOADS.items():
        assert model.model_config.get("frozen") is True, name
        assert model.model_config.get("extra") == "forbid", name


def test_the_example_history_decodes_to_its_models():
    store = SqliteEventStore(REPO / "events.db.example", readonly=True)
    try:
        events = [e for i, e in enumerate(iter_events(store)) if e.type != "observation-recorded" or i % 20 == 0]
    finally:
        store.close()
    assert assert_every_payload_round_trips(events) > 1500


def test_a_payload_its_model_refuses_is_named_not_guessed():
    stray = StoredEvent(1, SOURCE_FAILED, "k", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z",
                        {"source": "nyfed"}, "0" * 64)               # no reason: not what we write
    with pytest.raises(ValidationError, match="reason"):
        decode(stray)


def test_a_record_is_written_only_through_the_model_of_its_wire_name():
    with pytest.raises(TypeError, match="NotificationOutcome"):
        typed_event(NOTIFICATION_SENT, "k", SourceFailure(source="nyfed", reason="HTTP 500"))
    step = typed_event(NOTIFICATION_SENT, "k", NotificationOutcome(delivery="d", receiver="desk", attempt=1))
    assert step.payload == {"delivery": "d", "receiver": "desk", "attempt": 1, "rules": []}   # unset: absent


def test_a_silence_without_a_matcher_is_refused_by_its_model():
    with pytest.raises(ValidationError, match="at least one matcher"):
        SilenceAdded(id="s1", starts_at="2026-01-01T00:00:00.000000Z", ends_at="2026-01-02T00:00:00.000000Z",
                     comment="month end", created_by="desk")


def _stored(seq: int, type_: str, payload: dict) -> StoredEvent:
    at = "2026-01-02T15:00:00.000000Z"
    return StoredEvent(seq, type_, f"old/{seq}", at, at, payload, "0" * 64)


def test_a_log_written_by_an_earlier_version_is_read_not_refused():
    # the first notifier wrote each step with the alert it was about ("alert") and no group; a
    # field the model no longer has is ignored, a flush the model cannot read is skipped
    sent = _stored(1, NOTIFICATION_SENT, {"delivery": "d1", "receiver": "desk", "alert": "alert/x/1"})
    assert decode(sent) == NotificationOutcome(delivery="d1", receiver="desk")
    old_flush = _stored(2, "notification-requested", {"delivery": "d1", "receiver": "desk", "alert": "alert/x/1"})
    assert decode_or_none(old_flush) is None
    box = Outbox(routes=[], default_receivers=["desk"])
    for event in (old_flush, sent):
        box.apply(event)                       # folded without a crash
    assert box.owed(None) == []
