"""The Slack message: Block Kit formatting of a ``ToldAlert``, pure (golden-file tested).

``format_slack_message(alert, sparkline_values=...)`` turns a ``ToldAlert`` (what a receiver is
told about one alert) into ``{"text", "blocks", "attachments"}``: a two-line headline
(state, severity, rule id, observation date) in ``blocks``; the details in one attachment whose
colour bar says the severity (critical red, warning amber, info blue; resolved green): the
summary and the rule's description (what the alert means), value against threshold with its unit
("315 bp > 10 bp · for 2 business days"; a composite names its firing members instead), the
catch-up note of a late message, a Unicode sparkline of recent values (no image URLs: the daemon
has no public address), the inputs with their units, dates and publication times (New York time
with its zone), the matched sentences of a keyword flag, the source and runbook links, the rule
id. Every number and time goes through watchdog.model.display (``watchdog.notify.text``). ``text`` is the fallback Slack shows in push notifications. Lines stay short for phones.
``format_group_message`` puts several alerts of one group flush into one message.

No I/O and no Slack SDK here (an import contract holds it): ``watchdog render`` and the golden
tests use it without a network, and ``send.py`` posts what it returns.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from watchdog.model.display import as_decimal, sparkline
from watchdog.model.events import InputValue, ToldAlert
from watchdog.notify.text import (
    catch_up_note,
    composite_line,
    composite_members,
    input_value,
    new_york,
    reason_text,
    runbook_url,
    shown_labels,
    shown_value,
    value_against_threshold,
    value_unit,
)

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
    description = alert.description.strip()
    if description:
        lines.append(f"_{_esc(description)}_")
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

    spark = _spark_line(sparkline_values, value_unit(alert))
    if spark:
        details.append(_section(spark))
    if sentences:
        details.append(_section(_quotes(sentences)))
    inputs = _inputs(alert.inputs, members=composite_members(alert) is not None)
    if inputs:
        details.append(_section(inputs))
    links = [link for link in (_link(alert.link, speech=bool(sentences)),
                               _link(runbook_url(alert), label="Runbook", emoji="📖")) if link]
    if links:
        details.append(_section("\n".join(links)))
    details.append({"type": "context", "elements": _context(alert)})

    return {
        "text": _fallback(emoji, word, severity, rule, date, summary or reason,
                          (composite_line(alert) or value_against_threshold(alert)[0])
                          if state == "firing" else "", state),
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


def _value_line(alert: ToldAlert) -> str:
    """The value against its threshold in bold, and what the reason adds; a composite's firing
    members instead (its value is only their count)."""
    members = composite_line(alert)
    if members:
        head, _, names = members.partition(": ")
        return f"*{_esc(head)}*" + (f": {_esc(names)}" if names else "")
    main, extra = value_against_threshold(alert)
    if not main:
        return ""
    return f"*{_esc(main)}*" + (f" · {_esc(extra)}" if extra else "")


def _resolved_line(reason: str, alert: ToldAlert) -> str:
    level = shown_value(alert.threshold, value_unit(alert))
    tail = f"\nalert level {_esc(level)}" if level else ""      # its own line: phones
    if reason.startswith("recovered:"):
        return f"*Recovered:* {_esc(reason_text(alert).removeprefix('recovered:').strip())}{tail}"
    members = composite_line(alert)
    if members:
        return f"*Resolved:* {_esc(members)}"
    known = {"rule-removed": "the rule was removed", "rules-changed": "the rule was changed"}
    return f"*Resolved:* {_esc(known.get(reason, reason) or 'condition cleared')}{tail}"


def _bold_head(reason: str) -> str:
    """``5 hits: a, b`` → ``*5 hits:* a, b``."""
    head, sep, rest = reason.partition(": ")
    return f"*{_esc(head)}:* {_esc(rest)}" if sep and len(head) <= 20 else _esc(reason)


def _spark_line(values: Sequence[Any] | None, unit: str = "") -> str:
    """The sparkline of the last ``MAX_SPARK`` values and a short legend under it."""
    if not values:
        return ""
    recent = list(values)[-MAX_SPARK:]
    numbers = [n for n in (as_decimal(v) for v in recent) if n is not None]
    if not numbers:
        return ""
    return f"`{sparkline(recent)}`\n{_esc(spark_legend(numbers, unit))}"


def spark_legend(numbers: Sequence[Any], unit: str = "") -> str:
    """``11 readings: 7 bp → 315 bp`` and, on a line of its own (phones),
    ``low 2 bp, high 315 bp``."""
    def shown(n: Any) -> str:
        return shown_value(str(n), unit)
    return (f"{len(numbers)} readings: {shown(numbers[0])} → {shown(numbers[-1])}\n"
            f"low {shown(min(numbers))}, high {shown(max(numbers))}")


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


def _inputs(inputs: Mapping[str, InputValue], *, members: bool = False) -> str:
    """The inputs with their units, dates and publication times; a composite's are its member
    rules' last moves (their values as the members hold them)."""
    rows = []
    for name in sorted(inputs)[:MAX_INPUTS]:
        item = inputs[name]
        row = f"• {_esc(name)} {_esc(input_value(name, item.value))}"
        if item.date:
            row += f" on {_esc(item.date)}"
        published = new_york(item.published_at)
        if published:
            row += f"\n   published {_esc(published)}"
        rows.append(row)
    if len(inputs) > MAX_INPUTS:
        rows.append(f"_+{len(inputs) - MAX_INPUTS} more inputs_")
    head = "*Members' last moves*" if members else "*Inputs*"
    return head + "\n" + "\n".join(rows) if rows else ""


def _link(url: str, *, speech: bool = False, label: str = "", emoji: str = "🔗") -> str:
    url = url.strip()
    if not re.match(r"^https?://[^\s|<>]+$", url):
        return ""                                 # only plain http(s) links become links
    label = label or ("Read the speech" if speech else "Source")
    return f"{emoji} <{url.replace('&', '&amp;')}|{label}>"


def _context(alert: ToldAlert) -> list[dict]:
    parts = [f"rule `{_esc(alert.rule)}`"]
    if alert.rule_hash:
        parts.append(f"version {_esc(alert.rule_hash[:8])}")
    for key, value in shown_labels(alert):
        parts.append(f"{_esc(key)}: {_esc(value)}")
    known = new_york(alert.evaluated_at)
    if known:
        parts.append(f"known {_esc(known)}")
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
