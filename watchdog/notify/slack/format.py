"""The Slack message: Block Kit formatting of a ``ToldAlert``, pure (golden-file tested).

``format_slack_message(alert, sparkline_values=...)`` turns a ``ToldAlert`` (what a receiver is
told about one alert) into ``{"text", "blocks", "attachments"}``: a two-line headline
(state, severity, rule id, observation date) in ``blocks``; the details in one attachment whose
colour bar says the severity (critical red, warning amber, info blue; resolved green): value
against threshold ("315 bp > 10"), the catch-up note of a late message, a Unicode sparkline of
recent values (no image URLs: the daemon has no public address), the inputs with their dates and
publication times (New York time), the matched sentences of a keyword flag, the source link, the
rule id. ``text`` is the fallback Slack shows in push notifications. Lines stay short for phones.
``format_group_message`` puts several alerts of one group flush into one message.

No I/O and no Slack SDK here (an import contract holds it): ``watchdog render`` and the golden
tests use it without a network, and ``send.py`` posts what it returns.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from watchdog.market.series import SERIES
from watchdog.model.display import sparkline
from watchdog.model.events import InputValue, ToldAlert
from watchdog.model.timefmt import new_york_minute, parse_utc
from watchdog.notify.text import catch_up_note

COLOURS = {"critical": "#D0021B", "warning": "#F2A900", "info": "#1D74F5"}
RESOLVED_COLOUR = "#2EB67D"
OTHER_COLOUR = "#8D8D8D"
STATES = {"firing": ("🔥", "FIRING"), "resolved": ("✅", "RESOLVED"),
          "flagged": ("🔎", "FLAGGED"), "pending": ("⏳", "PENDING")}
MAX_SPARK = 20            # values in a sparkline: ~20 glyphs fit a phone line with its label
MAX_INPUTS = 10
MAX_SENTENCES = 3
SENTENCE_CHARS = 200
FALLBACK_CHARS = 300
SECTION_CHARS = 2900      # Slack's limit for a section's text is 3000


def format_slack_message(alert: ToldAlert, *, sparkline_values: list[str] | None = None) -> dict:
    """The Slack message for one alert transition: ``{"text", "blocks", "attachments"}``.

    Pure: the same alert gives the same bytes (golden files pin them)."""
    state = alert.state
    emoji, word = STATES[state]
    rule, date, severity = alert.rule, alert.date, alert.severity
    summary = alert.summary.strip()
    reason = alert.reason.strip()
    sentences = [s for s in alert.sentences if s.strip()]
    value_line = _value_line(alert)

    sev_shown = f"was {severity}" if state == "resolved" and severity else severity
    headline = f"{emoji} *{word}*" + (f" · {_esc(sev_shown)}" if sev_shown else "")
    headline += f"\n*{_esc(rule)}*" + (f" · {_esc(date)}" if date else "")

    details: list[dict] = []
    lines = [_esc(summary)] if summary else []
    note = catch_up_note(alert)
    if note:                                        # told late: since when, or a short episode
        lines.append(f"_{_esc(note[0].upper() + note[1:])}_")
    if state == "resolved":
        lines.append(_resolved_line(reason, alert))
    elif sentences:                                 # keyword flag: the hits, then the quotes
        if reason:
            lines.append(_bold_head(reason))
    else:
        if value_line:
            lines.append(value_line)
        if reason and not (state == "firing" and value_line):   # firing: merged into the value
            lines.append(_esc(reason))
    if lines:
        details.append(_section("\n".join(lines)))

    spark = _spark_line(sparkline_values)
    if spark:
        details.append(_section(spark))
    if sentences:
        details.append(_section(_quotes(sentences)))
    inputs = _inputs(alert.inputs)
    if inputs:
        details.append(_section(inputs))
    link = _link(alert.link, speech=bool(sentences))
    if link:
        details.append(_section(link))
    details.append({"type": "context", "elements": _context(alert)})

    return {
        "text": _fallback(emoji, word, severity, rule, date, summary or reason,
                          _value_text(alert)[0] if state == "firing" else "", state),
        "blocks": [_section(headline)],
        "attachments": [{"color": _colour(state, severity), "blocks": details}],
    }


GROUP_SHOWN = 20          # alerts shown in one grouped message (Slack caps attachments)


def format_group_message(alerts: list[ToldAlert], *, group: str = "") -> dict:
    """One flush of a group with several alerts: a headline with the counts, then each alert
    as its own coloured attachment (the one-alert message's blocks). Pure, golden-tested."""
    shown = [format_slack_message(a) for a in alerts[:GROUP_SHOWN]]
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.state] = counts.get(alert.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    head = f"*{len(alerts)} alerts* · {_esc(summary)}"
    if group:
        head += f"\n`{_esc(group.split('/', 2)[-1])}`"
    attachments = [{"color": m["attachments"][0]["color"],
                    "blocks": m["blocks"] + m["attachments"][0]["blocks"]} for m in shown]
    if len(alerts) > GROUP_SHOWN:
        attachments.append({"color": _colour("", ""), "blocks": [_section(
            f"… and {len(alerts) - GROUP_SHOWN} more alerts in this group")]})
    text = f"{len(alerts)} alerts ({summary}): " + "; ".join(m["text"] for m in shown)
    return {"text": text[:3000], "blocks": [_section(head)], "attachments": attachments}


def _section(text: str) -> dict:
    if len(text) > SECTION_CHARS:
        text = text[:SECTION_CHARS - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _esc(text: str) -> str:
    """Slack's three control characters; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _colour(state: str, severity: str) -> str:
    if state == "resolved":
        return RESOLVED_COLOUR
    if state == "pending":
        return OTHER_COLOUR
    return COLOURS.get(severity, OTHER_COLOUR)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _unit(alert: ToldAlert) -> str:
    """The value's unit: an explicit ``unit`` label, else ``bp`` when the summary or reason
    writes the value in basis points ("SOFR is 315 bp over IORB"), else none."""
    explicit = alert.labels.get("unit")        # labels are a map: a rule may set any name
    if explicit:
        return explicit
    value = alert.value
    if not value:
        return ""
    text = f"{alert.summary} {alert.reason}"
    return "bp" if re.search(rf"(?<![\w.]){re.escape(value)} ?bp\b", text) else ""


def _with_unit(value: str, unit: str) -> str:
    if not unit:
        return value
    return f"{value}{unit}" if unit == "%" else f"{value} {unit}"


def _value_text(alert: ToldAlert) -> tuple[str, str]:
    """Plain text of the value against its threshold and what the reason adds to it:
    ``("315 bp > 10", "for 2 business days")`` for a firing alert, ``("33 bp (alert level 10)",
    "")`` otherwise; ``("", "")`` when the alert has no value."""
    value, threshold = alert.value, alert.threshold
    if not value:
        return "", ""
    shown = _with_unit(value, _unit(alert))
    v, t = _decimal(value), _decimal(threshold)
    if alert.state == "firing" and v is not None and t is not None:
        op = ">" if v > t else "<" if v < t else "="
        reason = alert.reason.strip()
        prefix = f"{value} {op} {threshold}"
        extra = reason[len(prefix):].strip() if reason.startswith(prefix) else reason
        return f"{shown} {op} {threshold}", extra
    if threshold:
        return f"{shown} (alert level {threshold})", ""
    return shown, ""


def _value_line(alert: ToldAlert) -> str:
    main, extra = _value_text(alert)
    if not main:
        return ""
    return f"*{_esc(main)}*" + (f" · {_esc(extra)}" if extra else "")


def _resolved_line(reason: str, alert: ToldAlert) -> str:
    level = alert.threshold
    tail = f" · alert level {_esc(level)}" if level else ""
    if reason.startswith("recovered:"):
        return f"*Recovered:* {_esc(reason[len('recovered:'):].strip())}{tail}"
    known = {"rule-removed": "the rule was removed", "rules-changed": "the rule was changed"}
    return f"*Resolved:* {_esc(known.get(reason, reason) or 'condition cleared')}{tail}"


def _bold_head(reason: str) -> str:
    """``5 hits: a, b`` → ``*5 hits:* a, b``."""
    head, sep, rest = reason.partition(": ")
    return f"*{_esc(head)}:* {_esc(rest)}" if sep and len(head) <= 20 else _esc(reason)


def _spark_line(values: Sequence[Any] | None) -> str:
    """The sparkline of the last ``MAX_SPARK`` values and a short legend under it."""
    if not values:
        return ""
    recent = list(values)[-MAX_SPARK:]
    numbers = [n for n in (_decimal(v) for v in recent) if n is not None]
    if not numbers:
        return ""
    legend = (f"{len(recent)} readings: {_plain(numbers[0])} → {_plain(numbers[-1])}"
              f" (low {_plain(min(numbers))}, high {_plain(max(numbers))})")
    return f"`{sparkline(recent)}`\n{_esc(legend)}"


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _quotes(sentences: list[str]) -> str:
    shown = []
    for sentence in sentences[:MAX_SENTENCES]:
        text = " ".join(sentence.split())
        if len(text) > SENTENCE_CHARS:
            text = text[:SENTENCE_CHARS - 1].rstrip() + "…"
        shown.append(f"> {_esc(text)}")
    more = len(sentences) - MAX_SENTENCES
    if more > 0:
        shown.append(f"_+{more} more {'sentence' if more == 1 else 'sentences'}_")
    return "\n".join(shown)


def _inputs(inputs: Mapping[str, InputValue]) -> str:
    rows = []
    for name in sorted(inputs)[:MAX_INPUTS]:
        item = inputs[name]
        series = SERIES.get(name.split(".", 1)[0])
        unit = series.unit if series is not None and "." not in name else ""
        row = f"• {_esc(name)} {_esc(_with_unit(item.value, unit))}"
        if item.date:
            row += f" on {_esc(item.date)}"
        published = _new_york(item.published_at)
        if published:
            row += f"\n   published {published}"
        rows.append(row)
    if len(inputs) > MAX_INPUTS:
        rows.append(f"_+{len(inputs) - MAX_INPUTS} more inputs_")
    return "*Inputs*\n" + "\n".join(rows) if rows else ""


def _new_york(text: str) -> str:
    if not text:
        return ""
    try:
        moment = parse_utc(text)
    except ValueError:
        return _esc(text)
    return new_york_minute(moment)


def _link(url: str, *, speech: bool) -> str:
    url = url.strip()
    if not re.match(r"^https?://[^\s|<>]+$", url):
        return ""                                 # only plain http(s) links become links
    return f"🔗 <{url.replace('&', '&amp;')}|{'Read the speech' if speech else 'Source'}>"


def _context(alert: ToldAlert) -> list[dict]:
    parts = [f"rule `{_esc(alert.rule)}`"]
    if alert.rule_hash:
        parts.append(f"version {_esc(alert.rule_hash[:8])}")
    for key, value in sorted(alert.labels.items()):
        parts.append(f"{_esc(key)}: {_esc(value)}")
    known = _new_york(alert.evaluated_at)
    if known:
        parts.append(f"known {known}")
    return [{"type": "mrkdwn", "text": part} for part in parts[:10]]


def _fallback(emoji: str, word: str, severity: str, rule: str, date: str, what: str,
              value: str, state: str) -> str:
    """The notification text: one plain line, escaped once."""
    head = f"{emoji} {word}" + (f" ({severity})" if severity and state != "resolved" else "")
    text = f"{head} {rule} {date}".rstrip()
    if what:
        text += f": {what}"
    if value:
        text += f" ({value})" if what else f": {value}"
    text = " ".join(text.split())
    if len(text) > FALLBACK_CHARS:
        text = text[:FALLBACK_CHARS - 1] + "…"
    return _esc(text)
