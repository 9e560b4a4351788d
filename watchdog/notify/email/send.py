"""The email receiver: a pure formatter (golden-file tested) and an SMTP sender (aiosmtplib).

``format_email`` turns one alert transition into a ``multipart/alternative`` message: a plain-text
part and an HTML part (inline CSS, no images, every value from the data HTML-escaped). The
``Message-ID`` is derived from the delivery key, so a retried delivery carries the same id and
mail clients that de-duplicate on it show one message.

``EmailNotifier.send`` never raises: it returns a ``SendResult`` the outbox records as an event.

=====================================================  =========  ==========
what happened                                          outcome    permanent
=====================================================  =========  ==========
server accepted the message (all recipients)           sent       -
some recipients refused, the rest accepted             sent       - (detail names the refused)
connection refused / reset, DNS failure                failed     no
timeout before the message was handed over             failed     no
timeout or disconnect *during* DATA                    unknown    - (may have been delivered)
4xx reply (greeting, AUTH, MAIL, RCPT, DATA)           failed     no
5xx reply (e.g. 535 auth failed, 550 mailbox)          failed     yes
every recipient refused                                failed     yes if all 5xx, else no
TLS handshake / certificate failure                    failed     yes (tls mode or CA wrong)
server lacks STARTTLS or AUTH that the config needs    failed     yes
password missing (env var and credential file)         failed     yes
=====================================================  =========  ==========

Secrets: the password is read at send time (a rotated credential file is picked up) from
``$<password_env>`` or ``$CREDENTIALS_DIRECTORY/<password_env lowercased>`` (or the exact name),
is never stored on the notifier, and is scrubbed (with its base64 forms, as AUTH PLAIN/LOGIN
send it) from every detail string, because a server may echo what it was sent.
"""
from __future__ import annotations

import asyncio
import base64
import email.policy
import email.utils
import hashlib
import html
import logging
import os
import re
import socket
import ssl
import textwrap
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from watchdog.model.config import ReceiverConfig
from watchdog.model.errors import ConfigError
from watchdog.notify import SendResult, catch_up_note
from watchdog.model.numbers import norm
from watchdog.model.redact import REDACTED, scrub
from watchdog.model.secrets import read_secret

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0            # seconds, each SMTP step (connect, TLS, AUTH, MAIL, RCPT, DATA)
TOTAL_TIMEOUT_STEPS = 4           # the whole exchange: at most this many step timeouts
SUBJECT_MAX = 200                 # characters; longer summaries are cut with an ellipsis

# Header bar colours by state (resolved is green whatever the severity) and by severity.
_STATE_COLOURS = {"resolved": "#067647", "pending": "#475467"}
_SEVERITY_COLOURS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3"}
_DEFAULT_COLOUR = "#475467"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


# ---- pure formatting ----

def delivery_key(alert: dict, receiver: str) -> str:
    """The outbox's key for delivering ``alert`` to ``receiver`` (``notify/<receiver>/<alert
    key>``), rebuilt from the payload the way ``watchdog.model.events.alert_key`` builds it."""
    deadline = alert.get("deadline") or ""
    cause = f"t{deadline}" if deadline else str(alert.get("cause_seq", 0))
    alert_key = (f"alert/{alert['rule']}/{str(alert.get('rule_hash', ''))[:16]}/{alert['state']}/"
                 f"{alert.get('date', '')}/{cause}")
    return f"notify/{receiver}/{alert_key}"


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


def _text(value: Any) -> str:
    """A value from the data as display text: decimals normalised, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return norm(value)
    if isinstance(value, float):
        return norm(Decimal(repr(value)))
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_keyword_flag(alert: dict) -> bool:
    return alert.get("state") == "flagged" and bool(alert.get("sentences"))


def _headline(alert: dict) -> str:
    return _one_line(_text(alert.get("summary")) or _text(alert.get("reason"))
                     or f"value {_text(alert.get('value'))}")


def format_subject(alert: dict) -> str:
    """``[FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB``."""
    state = _text(alert.get("state")).upper()
    subject = _one_line(f"[{state} {_text(alert.get('severity'))}] {_text(alert.get('rule'))} "
                        f"{_text(alert.get('date'))}: {_headline(alert)}")
    if len(subject) > SUBJECT_MAX:
        subject = subject[:SUBJECT_MAX - 1].rstrip() + "…"
    return subject


def _status_line(alert: dict) -> str:
    """One sentence on what happened, readable for every state."""
    rule = f"{_text(alert.get('rule'))} ({_text(alert.get('severity'))})"
    state, reason = alert.get("state"), _text(alert.get("reason"))
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
    if state == "pending":
        return f"{rule} is pending: the condition holds, not yet for long enough to fire."
    return f"{rule}: {_text(state)}."


def _facts(alert: dict) -> list[tuple[str, str]]:
    """(label, value) rows shown in both parts, in order; empty values are left out."""
    keyword = _is_keyword_flag(alert)
    rows = [("Date", _text(alert.get("date")))]
    value, threshold = _text(alert.get("value")), _text(alert.get("threshold"))
    if keyword:
        rows.append(("Hits", value))
    elif value and threshold:
        # a resolved alert recovers at its own (hysteresis) level, which the reason states
        which = "firing threshold" if alert.get("state") == "resolved" else "threshold"
        rows.append(("Value", f"{value} ({which} {threshold})"))
    else:
        rows.append(("Value", value))
        rows.append(("Threshold", threshold))
    note = catch_up_note(alert)
    if note:
        rows.append(("Note", note[0].upper() + note[1:]))
    rows.append(("Reason", _one_line(_text(alert.get("reason")))))
    rows.append(("Evaluated at", _text(alert.get("evaluated_at"))))
    labels = alert.get("labels") or {}
    rows.append(("Labels", ", ".join(f"{k}={_text(v)}" for k, v in sorted(labels.items()))))
    rows.append(("Link", _text(alert.get("link"))))
    return [(label, text) for label, text in rows if text]


def _inputs(alert: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, item in sorted((alert.get("inputs") or {}).items()):
        item = item if isinstance(item, Mapping) else {}
        rows.append((_text(name), _text(item.get("date")), _text(item.get("value")),
                     _text(item.get("published_at"))))
    return rows


def _sentences(alert: dict) -> list[str]:
    return [_one_line(_text(s)) for s in alert.get("sentences") or [] if _text(s).strip()]


def _footer(alert: dict, receiver: str, key: str) -> list[str]:
    lines = [f"Sent by watchdog to receiver {receiver}.", f"Delivery key: {key}"]
    if alert.get("rule_hash"):
        lines.append(f"Rule version: {_text(alert['rule_hash'])[:16]}")
    return lines


def format_text(alert: dict, *, receiver: str, key: str) -> str:
    """The plain-text part."""
    out = [_headline(alert), _status_line(alert), ""]
    facts = _facts(alert)
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
        out += ["", "Inputs:", line(header),
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


def format_html(alert: dict, *, receiver: str, key: str, subject: str) -> str:
    """The HTML part: tables and inline CSS only, as mail clients strip ``<style>``."""
    return _page(subject, _card(alert, receiver=receiver, key=key))


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


def _card(alert: dict, *, receiver: str, key: str) -> list[str]:
    """One alert as a table (a page holds one, or a group's several)."""
    state = _text(alert.get("state"))
    severity = _text(alert.get("severity"))
    colour = _STATE_COLOURS.get(state) or _SEVERITY_COLOURS.get(severity, _DEFAULT_COLOUR)
    cell = "padding:4px 12px 4px 0;vertical-align:top;"
    rows = []
    for label, value in _facts(alert):
        shown = _link_html(value) if label == "Link" else _e(value)
        rows.append(f'<tr><th align="left" style="{cell}color:#475467;font-weight:normal;'
                    f'white-space:nowrap;">{_e(label)}</th><td style="{cell}">{shown}</td></tr>')
    parts = [
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="max-width:720px;border-collapse:collapse;background:#ffffff;'
        'border:1px solid #d0d5dd;">',
        f'<tr><td style="padding:12px 16px;background:{colour};color:#ffffff;font-weight:bold;">'
        f"{_e(state.upper())} &middot; {_e(severity)} &middot; {_e(_text(alert.get('rule')))}"
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
            '<h3 style="margin:20px 0 8px 0;font-size:15px;">Inputs</h3>',
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
    return _one_line(text)


def _transfer_encoding(text: str) -> str:
    """7bit when the part is plain ASCII in short lines (readable as sent), else
    quoted-printable: the message stays 7-bit clean, so no server needs 8BITMIME."""
    if text.isascii() and all(len(line) <= 78 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def format_email(alert: dict, *, sender: str, to: list[str], receiver: str,
                 key: str | None = None) -> EmailMessage:
    """One alert transition as a ``multipart/alternative`` email (text, then HTML).

    ``key`` is the delivery's idempotency key; by default the outbox's key for ``alert`` and
    ``receiver``. Pure: no ``Date`` header (the sender stamps it when it sends)."""
    key = key or delivery_key(alert, receiver)
    subject = format_subject(alert)
    text = format_text(alert, receiver=receiver, key=key)
    page = format_html(alert, receiver=receiver, key=key, subject=subject)
    return _message(subject, text, page, sender=sender, to=to, key=key,
                    rule=_text(alert.get("rule")), state=_text(alert.get("state")),
                    severity=_text(alert.get("severity")))


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


def format_group_subject(alerts: list[dict]) -> str:
    """``[watchdog] 3 alerts: 2 firing, 1 resolved: sofr-over-iorb, effr-over-iorb, …``."""
    counts: dict[str, int] = {}
    for alert in alerts:
        state = _text(alert.get("state"))
        counts[state] = counts.get(state, 0) + 1
    rules = list(dict.fromkeys(_text(a.get("rule")) for a in alerts))
    subject = _one_line(f"[watchdog] {len(alerts)} alerts: "
                        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
                        + ": " + ", ".join(rules))
    if len(subject) > SUBJECT_MAX:
        subject = subject[:SUBJECT_MAX - 1].rstrip() + "…"
    return subject


def format_group_email(alerts: list[dict], *, sender: str, to: list[str], receiver: str,
                       key: str) -> EmailMessage:
    """One flush of a group with several alerts: every alert's text and card in one email."""
    subject = format_group_subject(alerts)
    rule = "\n" + "=" * 72 + "\n\n"
    text = rule.join(format_text(a, receiver=receiver, key=key) for a in alerts)
    cards: list[str] = []
    for alert in alerts:
        cards += [*_card(alert, receiver=receiver, key=key), '<div style="height:16px;"></div>']
    return _message(subject, text, _page(subject, cards), sender=sender, to=to, key=key,
                    rule=", ".join(dict.fromkeys(_text(a.get("rule")) for a in alerts)), state="group",
                    severity=", ".join(sorted({_text(a.get("severity")) for a in alerts})))


# ---- sending ----

def read_password(env: Mapping[str, str], var: str) -> str | None:
    """The SMTP password from the environment or a systemd credential; spaces are kept (a
    password may hold them), only a credential file's trailing newline is dropped."""
    return read_secret(env, var, keep_spaces=True)


def _secret_forms(username: str | None, password: str | None) -> list[str]:
    """The password and the base64 texts AUTH PLAIN and AUTH LOGIN put on the wire."""
    if not password:
        return []
    forms = [password, base64.b64encode(password.encode("utf-8")).decode("ascii")]
    if username is not None:
        plain = f"\0{username}\0{password}".encode("utf-8")
        forms.append(base64.b64encode(plain).decode("ascii"))
    return forms


class _Failure(Exception):
    """Internal: a classified failure, raised inside ``_deliver`` and turned into a result."""

    def __init__(self, result: SendResult):
        super().__init__(result.detail)
        self.result = result


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return _one_line(f"{exc.code} {exc.message}")


def _by_code(code: int, what: str) -> SendResult:
    """4xx: the server asks us to try again; 5xx: it refused for good."""
    return SendResult("failed", permanent=not 400 <= code < 500, detail=what)


class EmailNotifier:
    """Sends one email per alert transition through the configured SMTP server.

    ``ssl_context`` overrides the CA/verification used for ``tls`` and ``starttls`` (tests use a
    trustme CA); by default the system's trust store verifies the server's certificate and name.
    ``timeout`` bounds each SMTP step; ``now`` stamps the ``Date`` header."""

    def __init__(self, receiver_name: str, config: ReceiverConfig,
                 env: Mapping[str, str] | None = None, *, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = DEFAULT_TIMEOUT, local_hostname: str | None = None,
                 now: Callable[[], datetime] | None = None):
        def problem(field: str, message: str) -> ConfigError:
            return ConfigError(f"receivers.{receiver_name}: {field}: {message}")
        if config.type != "email":
            raise problem("type", f"is {config.type!r}, not 'email'")
        if not config.smtp_host:
            raise problem("smtp_host", "required for an email receiver")
        if not config.from_:
            raise problem("from", "required for an email receiver")
        if not config.to:
            raise problem("to", "needs at least one address")
        if config.username and not config.password_env:
            raise problem("password_env", "required when username is set")
        self.name = receiver_name
        self.config = config
        self.env = os.environ if env is None else env
        self.tls = config.tls or "starttls"
        self.host = config.smtp_host
        self.port = config.smtp_port or DEFAULT_PORTS[self.tls]
        self.sender = config.from_
        self.to = list(config.to)
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.now = now or (lambda: datetime.now(timezone.utc))

    def __repr__(self) -> str:
        return (f"EmailNotifier({self.name!r}, {self.host}:{self.port}, tls={self.tls}, "
                f"to={len(self.to)})")

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} ({self.tls})"

    def message(self, alert: dict, *, key: str) -> EmailMessage:
        message = format_email(alert, sender=self.sender, to=self.to, receiver=self.name, key=key)
        message["Date"] = email.utils.format_datetime(self.now().astimezone(timezone.utc))
        return message

    @property
    def problem(self) -> str:
        """Why this receiver cannot send (a missing password), or ''. For ``check``/``notify-test``."""
        if self.config.username and read_password(self.env, self.config.password_env or "") is None:
            return self._missing_password()
        return ""

    def _missing_password(self) -> str:
        var = self.config.password_env or ""
        return (f"email {self.name}: no password: ${var} is not set and there is no credential "
                f"{var.lower()} in $CREDENTIALS_DIRECTORY")

    async def send(self, alert: dict, *, key: str) -> SendResult:
        """Deliver one alert to every configured recipient. Never raises (module table)."""
        return await self._send(lambda: self.message(alert, key=key))

    async def send_group(self, alerts: list[dict], *, key: str, group: str = "") -> SendResult:
        """Deliver one flush of several alerts as one email. Never raises."""
        def build() -> EmailMessage:
            message = format_group_email(alerts, sender=self.sender, to=self.to, receiver=self.name, key=key)
            message["Date"] = email.utils.format_datetime(self.now().astimezone(timezone.utc))
            return message
        return await self._send(build)

    async def _send(self, build: Callable[[], EmailMessage]) -> SendResult:
        password = None
        if self.config.username:
            password = read_password(self.env, self.config.password_env or "")
            if password is None:
                return SendResult("failed", permanent=True, detail=self._missing_password())
        secrets = _secret_forms(self.config.username, password)
        try:
            message = build()
            envelope_from = email.utils.parseaddr(self.sender)[1] or self.sender
            envelope_to = [email.utils.parseaddr(a)[1] or a for a in self.to]
            data = message.as_bytes(policy=email.policy.SMTP)
        except (ValueError, TypeError, KeyError) as exc:
            return SendResult("failed", permanent=True, detail=_scrub_all(
                f"email {self.name}: cannot build the message: {type(exc).__name__}: {exc}", secrets))
        phase = ["connect"]
        try:
            # Each step has its own timeout; the whole exchange is bounded too (a server that
            # trickles its replies must not hold the outbox for ever).
            result = await asyncio.wait_for(
                self._deliver(data, envelope_from, envelope_to, password, phase),
                self.timeout * TOTAL_TIMEOUT_STEPS)
        except asyncio.CancelledError:
            raise
        except _Failure as failure:
            result = failure.result
        except Exception as exc:   # noqa: BLE001 - send() reports, never raises
            result = self._classify(exc, phase[0])
        if result.outcome == "sent":
            result = SendResult("sent", detail=result.detail, reference=message["Message-ID"])
        detail = _scrub_all(f"email {self.name} via {self.where}: {result.detail}", secrets)
        return SendResult(result.outcome, permanent=result.permanent, detail=detail,
                          retry_after=result.retry_after, reference=result.reference)

    async def _deliver(self, data: bytes, sender: str, recipients: list[str],
                       password: str | None, phase: list[str]) -> SendResult:
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, use_tls=self.tls == "tls",
                               start_tls=False, timeout=self.timeout,
                               tls_context=self.ssl_context if self.tls != "none" else None,
                               local_hostname=self.local_hostname)
        phase[0] = "connect"
        await smtp.connect()
        try:
            if self.tls == "starttls":
                phase[0] = "starttls"
                await smtp.starttls()
            if self.config.username:
                phase[0] = "auth"
                await smtp.login(self.config.username, password or "")
            phase[0] = "mail"
            await smtp.mail(sender)
            phase[0] = "rcpt"
            refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
            for recipient in recipients:
                try:
                    await smtp.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[recipient] = exc
            listed = "; ".join(f"{r}: {_reply(e)}" for r, e in refused.items())
            if len(refused) == len(recipients):
                transient = any(400 <= e.code < 500 for e in refused.values())
                try:
                    await smtp.rset()
                except Exception:   # noqa: BLE001 - the answer is already known
                    pass
                raise _Failure(SendResult("failed", permanent=not transient,
                                          detail=f"every recipient refused: {listed}"))
            phase[0] = "data"
            response = await smtp.data(data)
            phase[0] = "quit"
            try:
                await smtp.quit()
            except Exception:   # noqa: BLE001 - the message is already accepted
                pass
        finally:
            smtp.close()
        detail = f"accepted: {_one_line(response.message)}"
        if refused:
            detail += (f"; delivered to {len(recipients) - len(refused)} of {len(recipients)} "
                       f"recipients, refused {listed}")
        return SendResult("sent", detail=detail)

    def _classify(self, exc: Exception, phase: str) -> SendResult:
        """Map an aiosmtplib/OS/TLS error raised in ``phase`` to a result (module table)."""
        cause = exc.__cause__ or exc.__context__
        tls_error = next((e for e in (exc, cause) if isinstance(e, ssl.SSLError)), None)
        if isinstance(tls_error, ssl.SSLCertVerificationError):
            return SendResult("failed", permanent=True, detail=(
                f"TLS certificate not trusted during {phase}: {tls_error.verify_message or tls_error}"))
        if tls_error is not None:
            return SendResult("failed", permanent=True, detail=(
                f"TLS handshake failed during {phase} ({type(tls_error).__name__}: "
                f"{getattr(tls_error, 'reason', None) or tls_error}); check the tls mode and port"))
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return _by_code(exc.code, f"authentication failed for user "
                                      f"{self.config.username!r}: {_reply(exc)}")
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            return _by_code(exc.code, f"sender {exc.sender} refused: {_reply(exc)}")
        if isinstance(exc, aiosmtplib.SMTPDataError):
            return _by_code(exc.code, f"message refused: {_reply(exc)}")
        if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
            return _by_code(exc.code, f"server refused the connection: {_reply(exc)}")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return _by_code(exc.code, f"{phase} refused: {_reply(exc)}")
        if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
            if phase == "data":
                return SendResult("unknown", detail=(
                    "timed out during DATA: the server may or may not have accepted the message"))
            limit = (self.timeout if isinstance(exc, aiosmtplib.SMTPTimeoutError)
                     else self.timeout * TOTAL_TIMEOUT_STEPS)
            return SendResult("failed", detail=f"timed out after {limit:g}s during {phase}")
        if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, ConnectionError)) and phase == "data":
            return SendResult("unknown", detail=(
                f"connection lost during DATA: the server may or may not have accepted the "
                f"message ({_one_line(str(exc))})"))
        if isinstance(exc, OSError):      # SMTPConnectError, SMTPServerDisconnected included
            reason = cause if isinstance(cause, OSError) else exc
            if isinstance(reason, ConnectionRefusedError):
                text = "connection refused"
            elif isinstance(reason, socket.gaierror):
                text = f"cannot resolve {self.host}: {reason.strerror}"
            else:
                text = _one_line(str(reason)) or type(reason).__name__
            where = "cannot connect" if phase == "connect" else f"connection lost during {phase}"
            return SendResult("failed", detail=f"{where}: {text}")
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or (
                type(exc) is aiosmtplib.SMTPException and phase in ("starttls", "auth")):
            # The server lacks what the config requires (STARTTLS, AUTH): retrying cannot help.
            return SendResult("failed", permanent=True, detail=f"{phase}: {_one_line(str(exc))}")
        if isinstance(exc, aiosmtplib.SMTPException):
            return SendResult("failed", detail=f"{phase}: {_one_line(str(exc))}")
        if isinstance(exc, ValueError):
            # aiosmtplib rejects addresses it cannot put on a command line (non-ASCII, spaces).
            return SendResult("failed", permanent=True, detail=f"{phase}: {_one_line(str(exc))}")
        return SendResult("failed", detail=f"{phase}: unexpected {type(exc).__name__}: "
                                           f"{_one_line(str(exc))}")


def _scrub_all(text: str, secrets: list[str]) -> str:
    """``redact.scrub`` and, for secrets shorter than it handles, an exact replace as well."""
    text = scrub(text, secrets)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
