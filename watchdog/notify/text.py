"""Wording every receiver shares, so a message reads the same on Slack, by email and on the
console: the catch-up note, the value against its threshold with its unit, the inputs with
theirs, a composite's firing members, instants in New York time, the runbook link.

Every number and time a person reads goes through watchdog.model.display here.
"""
from __future__ import annotations

import re

from watchdog.market.series import SERIES
from watchdog.model.display import (
    as_decimal,
    basis_points,
    new_york_time,
    percent,
    quantity,
    rate,
    sparkline,
    usd_bn,
)
from watchdog.model.events import ToldAlert

# "3 of 9 member rules firing (sofr-over-iorb, effr-over-iorb, tgcr-over-iorb)": the engine's
# reason for a composite transition (watchdog.engine.composite)
_COMPOSITE_REASON = re.compile(r"^(\d+) of (\d+) member rules firing \((.*)\)$")
_LINK = re.compile(r"^https?://[^\s<>|\"]+$", re.IGNORECASE)


def catch_up_note(alert: ToldAlert) -> str:
    """What a late message must say (the outbox marks it): an alert told although it began
    before the catch-up horizon says since when it fires; a short episode (fired and resolved
    before any notification) says when it fired and at what value. '' otherwise."""
    if alert.since and alert.state == "firing":
        return f"still firing since {alert.since}"
    episode = alert.episode
    if episode is not None and alert.state == "resolved":
        value = f" at {quantity(episode.fired_value, value_unit(alert))}" if episode.fired_value else ""
        return (f"short episode: fired for {episode.fired_date}{value} and resolved for "
                f"{alert.date} before a notification went out")
    return ""


def value_unit(alert: ToldAlert) -> str:
    """The unit of the alert's value: an explicit ``unit`` label, else the unit in which the
    rule's own summary (or reason) shows the value — ``315 bp`` or ``3 bp under`` is ``bp``,
    ``-$8.2bn`` is ``USD bn``, ``9.70%`` a ratio in percent — else '' (shown plainly)."""
    explicit = alert.labels.get("unit", "").strip()
    if explicit:
        return explicit
    number = as_decimal(alert.value)
    if number is None:
        return ""
    text = f"{alert.summary} {alert.reason}"
    for unit, shown in (("bp", basis_points(abs(number))), ("bp", f"{alert.value} bp"),
                        ("USD bn", usd_bn(number)), ("ratio", percent(number)), ("%", rate(number))):
        if re.search(rf"(?<![\w.,$-]){re.escape(shown)}(?![\w])", text):
            return unit
    return ""


def shown_value(value: str | None, unit: str) -> str:
    """A value as people read it in ``unit`` (watchdog.model.display.quantity); '' for none."""
    if value is None or value == "":
        return ""
    return quantity(value, unit)


def value_against_threshold(alert: ToldAlert) -> tuple[str, str]:
    """The value against its threshold, both in the value's unit, and what the reason adds:
    ``("315 bp > 10 bp", "for 2 business days")`` for a firing alert, ``("33 bp (alert level
    10 bp)", "")`` otherwise; ``("", "")`` when the alert has no value."""
    value, threshold = alert.value, alert.threshold
    if not value:
        return "", ""
    unit = value_unit(alert)
    shown = shown_value(value, unit)
    v, t = as_decimal(value), as_decimal(threshold)
    if alert.state == "firing" and v is not None and t is not None:
        op = ">" if v > t else "<" if v < t else "="
        reason = alert.reason.strip()
        extra = _after_comparison(reason)
        return f"{shown} {op} {shown_value(threshold, unit)}", extra
    if threshold:
        return f"{shown} (alert level {shown_value(threshold, unit)})", ""
    return shown, ""


def _after_comparison(reason: str) -> str:
    """What a threshold reason says past its comparison: ``315 > 10 for 2 business days`` ->
    ``for 2 business days``; the reason itself when it is not one."""
    match = re.match(r"^-?[\d.]+(?:E[+-]?\d+)? [<>=] -?[\d.]+(?:E[+-]?\d+)?(.*)$", reason, re.IGNORECASE)
    return match.group(1).strip() if match else reason


def reason_text(alert: ToldAlert) -> str:
    """The reason, one line, its comparison in the value's unit: ``315 bp > 10 bp for 2 business
    days``, ``recovered: 2 bp < 5 bp``; any other reason as written."""
    reason = " ".join(alert.reason.split())
    prefix = "recovered: " if reason.startswith("recovered:") else ""
    match = re.match(r"^(-?[\d.]+) ([<>=]) (-?[\d.]+)(.*)$", reason[len(prefix):].strip())
    if not match:
        return reason
    unit = value_unit(alert)
    value, op, level, rest = match.groups()
    return f"{prefix}{shown_value(value, unit)} {op} {shown_value(level, unit)}{rest}"


def composite_members(alert: ToldAlert) -> tuple[int, int, list[str]] | None:
    """(firing, of, member ids firing) of a composite alert (its reason names them); None for
    any other alert."""
    match = _COMPOSITE_REASON.match(alert.reason.strip())
    if not match:
        return None
    names = [n.strip() for n in match.group(3).split(",") if n.strip() and n.strip() != "none"]
    return int(match.group(1)), int(match.group(2)), names


def composite_line(alert: ToldAlert) -> str:
    """``3 of 9 member rules firing: sofr-over-iorb, effr-over-iorb, tgcr-over-iorb``, or ''."""
    members = composite_members(alert)
    if members is None:
        return ""
    firing, of, names = members
    return f"{firing} of {of} member rules firing" + (f": {', '.join(names)}" if names else "")


def input_unit(name: str) -> str:
    """The unit of an input: its series' (an attribute's own where it has one, e.g. a volume
    in USD bn), or '' for a name that is no series (a composite's member rules)."""
    base, _, attribute = name.partition(".")
    series = SERIES.get(base)
    if series is None:
        return ""
    if attribute:
        band = series.attribute_band(attribute)
        return (band.unit if band is not None and band.unit else None) or series.unit
    return series.unit


def input_value(name: str, value: str) -> str:
    """An input's value with its unit: ``5.25%``, ``$2,900bn``; a member rule's plainly."""
    return shown_value(value, input_unit(name))


def new_york(text: str | None) -> str:
    """A recorded UTC instant as New York time with its zone (``2019-09-18 08:00 EDT``); ''
    for none, the text as written when it is no instant."""
    if not text:
        return ""
    try:
        return new_york_time(text)
    except ValueError:
        return text


def runbook_url(alert: ToldAlert) -> str:
    """The rule's ``runbook_url`` label when it is a plain http(s) link, else ''."""
    url = alert.labels.get("runbook_url", "").strip()
    return url if _LINK.match(url) else ""


def shown_labels(alert: ToldAlert) -> list[tuple[str, str]]:
    """The labels a message lists (the runbook link is shown as a link of its own)."""
    return [(k, v) for k, v in sorted(alert.labels.items()) if not (k == "runbook_url" and runbook_url(alert))]



def recent_values_text(values: list, unit: str, indent: str = "") -> str:
    """One line: the sparkline of the last 20 values and what it spans, in the value's unit
    (``▁▁▂█  11 readings: 7 bp → 315 bp, low 2 bp, high 315 bp``); '' without numbers."""
    recent = list(values)[-20:]
    numbers = [n for n in (as_decimal(v) for v in recent) if n is not None]
    if not numbers:
        return ""
    def shown(n) -> str:
        return shown_value(str(n), unit)
    return (f"{indent}{sparkline(recent)}  {len(recent)} readings: {shown(numbers[0])} → {shown(numbers[-1])}, "
            f"low {shown(min(numbers))}, high {shown(max(numbers))}")
