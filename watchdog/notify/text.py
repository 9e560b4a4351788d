"""Wording every receiver shares, so a late message reads the same on Slack, by email and on
the console."""
from __future__ import annotations

from watchdog.model.events import ToldAlert


def catch_up_note(alert: ToldAlert) -> str:
    """What a late message must say (the outbox marks it): an alert told although it began
    before the catch-up horizon says since when it fires; a short episode (fired and resolved
    before any notification) says when it fired and at what value. '' otherwise."""
    if alert.since and alert.state == "firing":
        return f"still firing since {alert.since}"
    episode = alert.episode
    if episode is not None and alert.state == "resolved":
        value = f" at {episode.fired_value}" if episode.fired_value else ""
        return (f"short episode: fired for {episode.fired_date}{value} and resolved for "
                f"{alert.date} before a notification went out")
    return ""
