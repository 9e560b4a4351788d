"""The receivers room: one notifier per receiver type, and the contract they share.

Each receiver formats purely (golden-file tested) and sends at the edge, returning what happened
instead of raising, so the outbox can record it as an event:

    class Notifier(Protocol):
        async def send(self, alert: ToldAlert, *, key: str) -> SendResult

``alert`` is a ``watchdog.model.events.ToldAlert``: what a receiver is told about one alert (its
transition's payload, plus ``since`` or ``episode`` when the outbox tells it late), validated
once by whoever hands it over (the outbox when it decides a flush, the daemon's deadman,
``render`` and ``notify-test``), so a receiver reads attributes and never picks at a dict.
``key`` is the delivery's idempotency key (receiver + alert), which a notifier that can look
messages up again (Slack bot token: message metadata) uses to avoid a duplicate after a crash.
The receivers also take a flush of several alerts as one message:
``send_group(alerts: list[ToldAlert], *, key, group)``.

This package holds the contract (``SendResult``, ``Notifier``) and ``text.py``, the wording the
receivers share (the catch-up note). Receivers: ``slack/`` and ``email/`` (each ``format.py``,
pure, and ``send.py``) and ``console.py``. They may import watchdog.model, watchdog.market and
this package, never each other (import contracts); formatting imports no network or async
library.

To add a receiver:
    1. its config model in watchdog/model/config.py: a ``_Receiver`` subclass with
       ``type: Literal["NAME"]``, its fields and their checks, added to the ``Receiver`` union
       (load then reports a bad table as FILE:LINE);
    2. watchdog/notify/NAME/: ``format.py`` (``ToldAlert`` -> message, pure, golden files in
       tests/golden/) and ``send.py`` (a ``Notifier`` taking that model, returning ``SendResult``);
    3. a case in ``watchdog.app.build_notifiers``;
    4. in pyproject.toml, ``watchdog.notify.NAME`` in the "Receivers are independent" contract and
       its ``format`` module in the "Formatting is pure" contract.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from watchdog.model.events import ToldAlert


@dataclass(frozen=True)
class SendResult:
    outcome: Literal["sent", "failed", "unknown"]
    permanent: bool = False          # a failure retrying cannot fix (invalid_auth, bad address)
    detail: str = ""                 # secret-free, for the event and the log line
    retry_after: float | None = None # seconds the receiver asked us to wait (429)
    reference: str = ""              # e.g. Slack channel:ts, to update the message on resolve


class Notifier(Protocol):
    async def send(self, alert: ToldAlert, *, key: str) -> SendResult: ...
