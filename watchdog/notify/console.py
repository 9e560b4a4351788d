"""The console receiver: one readable line per transition on standard output."""
from __future__ import annotations

import sys
from typing import TextIO

from watchdog.model.events import ToldAlert
from watchdog.notify import SendResult
from watchdog.notify.text import (
    catch_up_note,
    composite_line,
    reason_text,
    runbook_url,
    shown_value,
    value_unit,
)


def format_line(alert: ToldAlert) -> str:
    """``[FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB (315 bp > 10 bp for
    2 business days)``: numbers in their unit (watchdog.model.display); a composite names its
    firing members; a ``runbook_url`` label is appended."""
    detail = alert.summary or f"value {shown_value(alert.value, value_unit(alert)) or 'n/a'}"
    why = "; ".join(part for part in (catch_up_note(alert), composite_line(alert) or reason_text(alert))
                    if part)
    line = f"[{alert.state.upper()} {alert.severity}] {alert.rule} {alert.date}: {detail} ({why})"
    runbook = runbook_url(alert)
    return f"{line} runbook {runbook}" if runbook else line


def spark_line(alert: ToldAlert, values: list) -> str:
    """``  ▁▁▁▁▁▁▁▁▁▂█  11 readings: 7 bp → 315 bp, low 2 bp, high 315 bp``: the rule's recent
    values under the alert's line (``render``)."""
    from watchdog.notify.text import recent_values_text
    return recent_values_text(values, value_unit(alert), indent="  ")


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
