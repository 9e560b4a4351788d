"""The console receiver: one readable line per transition on standard output."""
from __future__ import annotations

import sys
from typing import TextIO

from watchdog.model.events import ToldAlert
from watchdog.notify import SendResult
from watchdog.notify.text import catch_up_note


def format_line(alert: ToldAlert) -> str:
    detail = alert.summary or f"value {alert.value}"
    why = "; ".join(part for part in (catch_up_note(alert), alert.reason) if part)
    return f"[{alert.state.upper()} {alert.severity}] {alert.rule} {alert.date}: {detail} ({why})"


class ConsoleNotifier:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    async def send(self, alert: ToldAlert, *, key: str = "") -> SendResult:
        print(format_line(alert), file=self.stream, flush=True)
        return SendResult("sent")

    async def send_group(self, alerts: list[ToldAlert], *, key: str = "", group: str = "") -> SendResult:
        """A flush of several alerts: one line each, under a line naming the group."""
        print(f"[GROUP {len(alerts)} alerts] {group.split('/', 2)[-1]}", file=self.stream)
        for alert in alerts:
            print("  " + format_line(alert), file=self.stream)
        self.stream.flush()
        return SendResult("sent")
