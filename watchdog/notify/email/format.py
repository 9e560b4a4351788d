"""The email message: a ``ToldAlert`` as a ``multipart/alternative`` email, pure (golden-file
tested).

``format_email`` turns what a receiver is told about one alert into a message with a plain-text part and an HTML
part (inline CSS, no images, every value from the data HTML-escaped); ``format_group_email`` one
group flush of several alerts. Headers: From, To, the subject (``format_subject``), a
``Message-ID`` derived from the delivery key (``message_id``: a retried delivery carries the same
id, and mail clients that de-duplicate on it show one message), ``Auto-Submitted`` and the
``X-Watchdog-*`` headers. No ``Date``: ``send.py`` stamps it when it sends.

No I/O and no SMTP here (an import contract holds it): ``watchdog render`` and the golden tests
use it without a server.
"""
from __future__ import annotations

import email.policy
import email.utils
import hashlib
import html
import re
import textwrap
from email.message import EmailMessage

from watchdog.model.events import AlertTransition, ToldAlert, alert_key
from watchdog.notify.text import (
    catch_up_note,
    composite_line,
    input_value,
    new_york,
    reason_text,
    recent_values_text,
    runbook_url,
    shown_labels,
    shown_value,
    value_unit,
)

SUBJECT_MAX = 200                 # characters; longer summaries are cut with an ellipsis

# Header bar colours by state (resolved is green whatever the severity) and by severity.
_STATE_COLOURS = {"resolved": "#067647", "pending": "#475467"}
_SEVERITY_COLOURS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3"}
_DEFAULT_COLOUR = "#475467"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def delivery_key(alert: AlertTransition, receiver: str) -> str:
    """The key for delivering ``alert`` to ``receiver`` when none is given (``render``):
    ``notify/<receiver>/<alert key>``, with ``watchdog.model.events.alert_key``."""
    return f"notify/{receiver}/{alert_key(alert)}"


def message_id(key: str, sender: str) -> str:
    """``<readable.part.of.the.key.HASH@sender-domain>``: deterministic, and safe as a
    ``msg-id`` whatever the key holds (the hash keeps two keys that read alike apart)."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9-]+", ".", key).strip(".")[:120].strip(".")
    _, at, domain = email.utils.parseaddr(sender)[1].rpartition("@")
    if not at or not _HOSTNAME.match(domain):
        domain = "watchdog.invalid"
    local = f"{readable}.{digest}" if readable else digest
    return f"<{local}@{domain.lower()}>"


def one_line(text: str) -> str:
    return " ".join(text.split())


def _is_keyword_flag(alert: ToldAlert) -> bool:
    return alert.state == "flagged" and bool(alert.sentences)


def _headline(alert: ToldAlert) -> str:
    return one_line(alert.summary or alert.reason or f"value {alert.value or ''}")


def format_subject(alert: ToldAlert) -> str:
    """``[FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB``."""
    subject = one_line(f"[{alert.state.upper()} {alert.severity}] {alert.rule} "
                        f"{alert.date}: {_headline(alert)}")
    if len(subject) > SUBJECT_MAX:
        subject = subject[:SUBJECT_MAX - 1].rstrip() + "…"
    return subject


def _status_line(alert: ToldAlert) -> str:
    """One sentence on what happened, readable for every state."""
    rule = f"{alert.rule} ({alert.severity})"
    state, reason = alert.state, alert.reason
    if state == "firing":
        return f"{rule} is firing."
    if state == "resolved":
        if reason == "rule-removed":
            return f"{rule} has resolved: the rule was removed."
        if reason == "rules-changed":
            return f"{rule} has resolved: the rule was changed."
        return f"{rule} has resolved."
    if state == "flagged":
        return f"{rule} flagged a speech." if _is_keyword_flag(alert) else f"{rule} flagged a change."
    return f"{rule} is pending: the condition holds, not yet for long enough to fire."


def _facts(alert: ToldAlert, recent: list | None = None) -> list[tuple[str, str]]:
    """(label, value) rows shown in both parts, in order; empty values are left out. ``recent``:
    the rule's recent values, shown as a sparkline (``render``)."""
    keyword = _is_keyword_flag(alert)
    rows = [("Date", alert.date), ("Meaning", one_line(alert.description))]
    unit = value_unit(alert)
    value, threshold = shown_value(alert.value, unit), shown_value(alert.threshold, unit)
    members = composite_line(alert)
    if keyword:
        rows.append(("Hits", alert.value or ""))
    elif members:
        rows.append(("Members", members))       # a composite's value is only their count
    elif value and threshold:
        # a resolved alert recovers at its own (hysteresis) level, which the reason states
        which = "firing threshold" if alert.state == "resolved" else "threshold"
        rows.append(("Value", f"{value} ({which} {threshold})"))
    else:
        rows.append(("Value", value))
        rows.append(("Threshold", threshold))
    rows.append(("Recent", recent_values_text(recent or [], unit)))
    note = catch_up_note(alert)
    if note:
        rows.append(("Note", note[0].upper() + note[1:]))
    if not members:
        rows.append(("Reason", reason_text(alert)))
    rows.append(("Evaluated at", new_york(alert.evaluated_at)))
    rows.append(("Labels", ", ".join(f"{k}={v}" for k, v in shown_labels(alert))))
    rows.append(("Runbook", runbook_url(alert)))
    rows.append(("Link", alert.link))
    return [(label, text) for label, text in rows if text]


def _inputs(alert: ToldAlert) -> list[tuple[str, str, str, str]]:
    """(name, date, value with its unit, published in New York time) of each input."""
    return [(name, item.date, input_value(name, item.value), new_york(item.published_at))
            for name, item in sorted(alert.inputs.items())]


def _sentences(alert: ToldAlert) -> list[str]:
    return [one_line(s) for s in alert.sentences if s.strip()]


def _footer(alert: ToldAlert, receiver: str, key: str) -> list[str]:
    lines = [f"Sent by watchdog to receiver {receiver}.", f"Delivery key: {key}"]
    if alert.rule_hash:
        lines.append(f"Rule version: {alert.rule_hash[:16]}")
    return lines


def format_text(alert: ToldAlert, *, receiver: str, key: str, sparkline_values: list | None = None) -> str:
    """The plain-text part."""
    out = [_headline(alert), _status_line(alert), ""]
    facts = _facts(alert, sparkline_values)
    width = max(len(label) for label, _ in facts) + 2
    for label, value in facts:
        out.append(f"{label + ':':<{width}}{value}")
    inputs = _inputs(alert)
    if inputs:
        header = ("name", "date", "value", "published")
        widths = [max(len(row[i]) for row in [header, *inputs]) for i in range(4)]

        def line(row: tuple[str, ...]) -> str:
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                     row[2].rjust(widths[2]) if row is not header else row[2].ljust(widths[2]),
                     row[3]]
            return ("  " + "  ".join(cells)).rstrip()
        out += ["", "Members' last moves:" if composite_line(alert) else "Inputs:", line(header),
                line(tuple("-" * w for w in widths[:3]) + ("-" * widths[3],))]
        out += [line(row) for row in inputs]
    sentences = _sentences(alert)
    if sentences:
        out += ["", "Matched sentences:"]
        for sentence in sentences:
            out += textwrap.wrap(sentence, width=76, initial_indent="  > ",
                                 subsequent_indent="    ", break_long_words=False,
                                 break_on_hyphens=False)
    out += ["", "--", *_footer(alert, receiver, key)]
    return "\n".join(out) + "\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _link_html(url: str) -> str:
    """A link only for http(s) URLs (never ``javascript:`` or ``data:``); else plain text."""
    if re.match(r"^https?://", url, re.IGNORECASE):
        return f'<a href="{_e(url)}" style="color:#175cd3;">{_e(url)}</a>'
    return _e(url)


def format_html(alert: ToldAlert, *, receiver: str, key: str, subject: str,
                sparkline_values: list | None = None) -> str:
    """The HTML part: tables and inline CSS only, as mail clients strip ``<style>``."""
    return _page(subject, _card(alert, receiver=receiver, key=key, recent=sparkline_values))


def _page(subject: str, cards: list[str]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{_e(subject)}</title></head>",
        '<body style="margin:0;padding:16px;background:#f2f4f7;color:#101828;'
        'font-family:-apple-system,\'Segoe UI\',Helvetica,Arial,sans-serif;font-size:14px;">',
        *cards,
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _card(alert: ToldAlert, *, receiver: str, key: str, recent: list | None = None) -> list[str]:
    """One alert as a table (a page holds one, or a group's several)."""
    state, severity = alert.state, alert.severity
    colour = _STATE_COLOURS.get(state) or _SEVERITY_COLOURS.get(severity, _DEFAULT_COLOUR)
    cell = "padding:4px 12px 4px 0;vertical-align:top;"
    rows = []
    for label, value in _facts(alert, recent):
        shown = _link_html(value) if label in ("Link", "Runbook") else _e(value)
        rows.append(f'<tr><th align="left" style="{cell}color:#475467;font-weight:normal;'
                    f'white-space:nowrap;">{_e(label)}</th><td style="{cell}">{shown}</td></tr>')
    parts = [
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="max-width:720px;border-collapse:collapse;background:#ffffff;'
        'border:1px solid #d0d5dd;">',
        f'<tr><td style="padding:12px 16px;background:{colour};color:#ffffff;font-weight:bold;">'
        f"{_e(state.upper())} &middot; {_e(severity)} &middot; {_e(alert.rule)}"
        "</td></tr>",
        '<tr><td style="padding:16px;">',
        f'<p style="margin:0 0 8px 0;font-size:17px;font-weight:bold;">{_e(_headline(alert))}</p>',
        f'<p style="margin:0 0 16px 0;">{_e(_status_line(alert))}</p>',
        '<table role="presentation" cellpadding="0" cellspacing="0" '
        'style="border-collapse:collapse;">',
        *rows,
        "</table>",
    ]
    inputs = _inputs(alert)
    if inputs:
        head = "padding:4px 12px 4px 0;border-bottom:1px solid #d0d5dd;color:#475467;"
        body = "padding:4px 12px 4px 0;border-bottom:1px solid #eaecf0;"
        parts += [
            f'<h3 style="margin:20px 0 8px 0;font-size:15px;">{"Members&#x27; last moves" if composite_line(alert) else "Inputs"}</h3>',
            '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse;">',
            f'<tr><th style="{head}text-align:left;">name</th><th style="{head}text-align:left;">date</th>'
            f'<th style="{head}text-align:right;">value</th>'
            f'<th style="{head}text-align:left;">published</th></tr>',
        ]
        for name, day, value, published in inputs:
            parts.append(
                f'<tr><td style="{body}font-family:monospace;">{_e(name)}</td>'
                f'<td style="{body}">{_e(day)}</td>'
                f'<td style="{body}text-align:right;font-family:monospace;">{_e(value)}</td>'
                f'<td style="{body}">{_e(published)}</td></tr>')
        parts.append("</table>")
    sentences = _sentences(alert)
    if sentences:
        parts.append('<h3 style="margin:20px 0 8px 0;font-size:15px;">Matched sentences</h3>')
        for sentence in sentences:
            parts.append('<blockquote style="margin:0 0 8px 0;padding:4px 12px;'
                         f'border-left:3px solid {colour};color:#344054;">{_e(sentence)}</blockquote>')
    footer = "<br>".join(_e(line) for line in _footer(alert, receiver, key))
    parts += [
        "</td></tr>",
        '<tr><td style="padding:12px 16px;border-top:1px solid #eaecf0;color:#667085;'
        f'font-size:12px;">{footer}</td></tr>',
        "</table>",
    ]
    return parts


def _header(text: str) -> str:
    """Header values from the data: one line (no CR/LF header injection)."""
    return one_line(text)


def _transfer_encoding(text: str) -> str:
    """7bit when the part is plain ASCII in short lines (readable as sent), else
    quoted-printable: the message stays 7-bit clean, so no server needs 8BITMIME."""
    if text.isascii() and all(len(line) <= 78 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def format_email(alert: ToldAlert, *, sender: str, to: list[str], receiver: str,
                 key: str | None = None, sparkline_values: list | None = None) -> EmailMessage:
    """One alert transition as a ``multipart/alternative`` email (text, then HTML).

    ``key`` is the delivery's idempotency key; by default ``delivery_key(alert, receiver)``.
    Pure: no ``Date`` header (the sender stamps it when it sends)."""
    key = key or delivery_key(alert, receiver)
    subject = format_subject(alert)
    text = format_text(alert, receiver=receiver, key=key, sparkline_values=sparkline_values)
    page = format_html(alert, receiver=receiver, key=key, subject=subject, sparkline_values=sparkline_values)
    return _message(subject, text, page, sender=sender, to=to, key=key,
                    rule=alert.rule, state=alert.state, severity=alert.severity)


def _message(subject: str, text: str, page: str, *, sender: str, to: list[str], key: str,
             rule: str, state: str, severity: str) -> EmailMessage:
    """The ``multipart/alternative`` envelope both formats share."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = _header(sender)
    message["To"] = ", ".join(_header(address) for address in to)
    message["Subject"] = subject
    message["Message-ID"] = message_id(key, sender)
    message["Auto-Submitted"] = "auto-generated"          # RFC 3834: no vacation replies
    message["X-Watchdog-Rule"] = _header(rule)
    message["X-Watchdog-State"] = _header(state)
    message["X-Watchdog-Severity"] = _header(severity)
    message["X-Watchdog-Key"] = _header(key)
    message.set_content(text, subtype="plain", charset="utf-8", cte=_transfer_encoding(text))
    message.add_alternative(page, subtype="html", charset="utf-8", cte=_transfer_encoding(page))
    return message


def format_group_subject(alerts: list[ToldAlert]) -> str:
    """``[watchdog] 3 alerts: 2 firing, 1 resolved: sofr-over-iorb, effr-over-iorb, …``."""
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.state] = counts.get(alert.state, 0) + 1
    rules = list(dict.fromkeys(a.rule for a in alerts))
    subject = one_line(f"[watchdog] {len(alerts)} alerts: "
                        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
                        + ": " + ", ".join(rules))
    if len(subject) > SUBJECT_MAX:
        subject = subject[:SUBJECT_MAX - 1].rstrip() + "…"
    return subject


def format_group_email(alerts: list[ToldAlert], *, sender: str, to: list[str], receiver: str,
                       key: str) -> EmailMessage:
    """One flush of a group with several alerts: every alert's text and card in one email."""
    subject = format_group_subject(alerts)
    rule = "\n" + "=" * 72 + "\n\n"
    text = rule.join(format_text(a, receiver=receiver, key=key) for a in alerts)
    cards: list[str] = []
    for alert in alerts:
        cards += [*_card(alert, receiver=receiver, key=key), '<div style="height:16px;"></div>']
    return _message(subject, text, _page(subject, cards), sender=sender, to=to, key=key,
                    rule=", ".join(dict.fromkeys(a.rule for a in alerts)), state="group",
                    severity=", ".join(sorted({a.severity for a in alerts})))
