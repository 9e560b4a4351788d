"""Email receiver: the pure formatter against golden files, and the SMTP sender end to end against
real aiosmtpd servers on 127.0.0.1 (plain, STARTTLS + AUTH, implicit TLS + AUTH, with a trustme
CA), plus scripted servers for the cases aiosmtpd cannot produce (no greeting, a drop in DATA).

Regenerate the golden files after an intended change with ``WATCHDOG_UPDATE_GOLDEN=1``."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import logging
import os
import socket
import ssl
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from watchdog.model.config import EmailReceiver
from watchdog.model.events import ToldAlert, alert_key
from watchdog.notify.email.format import (
    delivery_key,
    format_email,
    format_group_email,
    message_id,
)
from watchdog.notify.email.send import EmailNotifier, read_password

GOLDEN = Path(__file__).parent / "golden"
CANARY = "canary-SMTP-pass-4242"
USER = "watchdog"
SENDER = "Watchdog <watchdog@example.org>"
DESK = "desk@example.org"
NOW = datetime(2019, 9, 18, 12, 5, tzinfo=timezone.utc)

def told(alert: ToldAlert, **changes) -> ToldAlert:
    """``alert`` with ``changes``, validated as a receiver is handed it."""
    return ToldAlert.model_validate({**alert.model_dump(), **changes})


# Payloads as the engine writes them (AlertTransition.model_dump()): the real replay results,
# as the outbox tells them.
SOFR_FIRING = ToldAlert.model_validate({
    "rule": "sofr-over-iorb",
    "rule_hash": "ea2965bd75fbb5790ab02e158a8c80f8d8adfe3d8616763bcdf7cee319380996",
    "state": "firing", "date": "2019-09-17", "value": "315", "severity": "warning",
    "threshold": "10",
    "inputs": {
        "iorb": {"date": "2019-08-01", "value": "2.1", "published_at": "2019-07-31T18:00:00.000000Z"},
        "sofr": {"date": "2019-09-17", "value": "5.25", "published_at": "2019-09-18T12:00:00.000000Z"},
    },
    "evaluated_at": "2019-09-18T12:00:00.000000Z", "reason": "315 > 10 for 2 business days",
    "summary": "SOFR is 315 bp over IORB", "labels": {"area": "repo"}, "cause_seq": 48213,
    "deadline": "", "link": "", "sentences": [],
    "description": "Secured overnight funding trades above the rate the Fed pays on reserves: "
                   "repo cash is scarce.",
})
SOFR_RESOLVED = told(
    SOFR_FIRING, state="resolved", date="2019-09-27", value="2",
    inputs={
        "iorb": {"date": "2019-09-19", "value": "1.8", "published_at": "2019-09-18T18:00:00.000000Z"},
        "sofr": {"date": "2019-09-27", "value": "1.82", "published_at": "2019-09-30T12:00:00.000000Z"},
    },
    evaluated_at="2019-09-30T12:00:00.000000Z", reason="recovered: 2 < 5",
    summary="SOFR is 2 bp over IORB", cause_seq=48377,
)
KEYWORD_FLAG = ToldAlert.model_validate({
    "rule": "reserves-not-abundant",
    "rule_hash": "ca1cbdd52ee15e096ec3ffc709aa27886f160ad152319026be82beeb134abf27",
    "state": "flagged", "date": "2019-01-10", "value": "2", "severity": "info", "threshold": None,
    "inputs": {}, "evaluated_at": "2019-01-11T04:59:59.999999Z",
    "reason": "2 hits: reserve near abundant",
    "summary": 'Richard H. Clarida (2019-01-10) on reserves and ampleness: "reserve near abundant" '
               "in Monetary Policy Outlook for 2019",
    "labels": {"area": "reserves", "topic": "speech"}, "cause_seq": 30211, "deadline": "",
    "link": "https://www.federalreserve.gov/newsevents/speech/clarida20190110a.htm",
    "sentences": [
        "In that vein, as indicated in the minutes from our recent meetings, the Committee has been "
        "weighing the costs and benefits of an implementation system with abundant reserves.",
        "The current system for policy implementation with abundant reserves has, to date, served "
        "us well.",
    ],
})


# ---- helpers ----

def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("WATCHDOG_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs (WATCHDOG_UPDATE_GOLDEN=1 rewrites)"


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    return text, page


def headers_text(message: email.message.EmailMessage) -> str:
    names = ["From", "To", "Subject", "Message-ID", "Auto-Submitted", "X-Watchdog-Rule",
             "X-Watchdog-State", "X-Watchdog-Severity", "X-Watchdog-Key", "Content-Type"]
    return "".join(f"{name}: {message[name].split(';')[0] if name == 'Content-Type' else message[name]}\n"
                   for name in names)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def receiver(port: int, **fields) -> EmailReceiver:
    body = {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "tls": "none",
            "from": SENDER, "to": [DESK], **fields}
    return EmailReceiver.model_validate(body)


def notifier(port: int, *, env=None, ssl_context=None, timeout=5.0, **fields) -> EmailNotifier:
    return EmailNotifier("oncall", receiver(port, **fields), env=env or {}, ssl_context=ssl_context,
                         timeout=timeout, local_hostname="watchdog.test", now=lambda: NOW)


class Collector:
    """aiosmtpd handler: keeps every envelope with what the session knew (TLS, login)."""

    def __init__(self, refuse: dict[str, str] | None = None, data_reply: str = "250 2.0.0 OK queued as 42"):
        self.refuse = refuse or {}
        self.data_reply = data_reply
        self.received: list[dict] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply.startswith("250"):
            self.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "content": envelope.original_content or envelope.content,
                                  "tls": session.ssl is not None,
                                  "login": getattr(session.auth_data, "login", None)})
        return self.data_reply


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
          and auth_data.password == CANARY.encode())
    # handled=False: aiosmtpd itself answers 535 on failure
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@contextlib.contextmanager
def smtp_server(handler: Collector, **kwargs):
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            server_hostname="mail.test", ready_timeout=5, **kwargs)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def scripted_server(after_data: str):
    """A minimal SMTP server that behaves until the message body, then drops the connection
    (``after_data="drop"``) or never answers (``"hang"``); ``"silent"`` never even greets."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            if after_data == "silent":
                await asyncio.sleep(30)
                return
            writer.write(b"220 scripted ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-scripted\r\n250 HELP\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    while (await reader.readline()) not in (b".\r\n", b""):
                        pass
                    if after_data == "hang":
                        await asyncio.sleep(30)
                    return
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        finally:
            writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def received_message(handler: Collector) -> email.message.EmailMessage:
    assert len(handler.received) == 1
    return email.message_from_bytes(handler.received[0]["content"], policy=email.policy.default)


# ---- the formatter: golden files ----

@pytest.mark.parametrize("name, alert", [
    ("sofr_firing", SOFR_FIRING),
    ("sofr_resolved", SOFR_RESOLVED),
    ("keyword_flag", KEYWORD_FLAG),
])
def test_email_matches_golden_subject_headers_text_and_html(name, alert):
    message = format_email(alert, sender=SENDER, to=[DESK], receiver="oncall")
    text, page = parts(message)
    golden(f"email_{name}_headers.txt", headers_text(message))
    golden(f"email_{name}.txt", text)
    golden(f"email_{name}.html", page)


def test_a_group_flush_is_one_email_with_every_alert_golden():
    key = 'notify/oncall/routes[0]/{area="repo"}/3'
    message = format_group_email([SOFR_FIRING, SOFR_RESOLVED, KEYWORD_FLAG], sender=SENDER, to=[DESK],
                                 receiver="oncall", key=key)
    assert message["Subject"].startswith("[watchdog] 3 alerts: 1 firing, 1 flagged, 1 resolved: ")
    assert message["X-Watchdog-Key"] == key and message["Message-ID"] == message_id(key, SENDER)
    text, page = parts(message)
    assert text.count("Delivery key: " + key) == 3 and page.count("<table role=\"presentation\" width") == 3
    golden("email_group_headers.txt", headers_text(message))
    golden("email_group.txt", text)
    golden("email_group.html", page)


def test_firing_subject_reads_state_severity_rule_date_and_summary():
    message = format_email(SOFR_FIRING, sender=SENDER, to=[DESK], receiver="oncall")
    assert message["Subject"] == "[FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, page = parts(message)
    assert "315 bp (threshold 10 bp)" in text and "315 bp (threshold 10 bp)" in page
    assert "Reason:       315 bp > 10 bp for 2 business days" in text
    assert "Evaluated at: 2019-09-18 08:00 EDT" in text and "T12:00:00" not in text
    assert "Meaning:      Secured overnight funding trades above the rate the Fed pays" in text
    assert "Date" not in message          # pure: the sender stamps it


def test_resolved_message_says_it_resolved_and_why():
    message = format_email(SOFR_RESOLVED, sender=SENDER, to=[DESK], receiver="oncall")
    assert message["Subject"].startswith("[RESOLVED warning] sofr-over-iorb 2019-09-27: ")
    text, page = parts(message)
    assert "sofr-over-iorb (warning) has resolved." in text
    assert "recovered: 2 bp &lt; 5 bp" in page and "recovered: 2 bp < 5 bp" in text
    removed = told(SOFR_RESOLVED, reason="rule-removed", value=None, summary="", inputs={})
    text, _ = parts(format_email(removed, sender=SENDER, to=[DESK], receiver="oncall"))
    assert "has resolved: the rule was removed." in text and "Value" not in text


def test_keyword_flag_shows_the_matched_sentences_and_the_speech_link():
    text, page = parts(format_email(KEYWORD_FLAG, sender=SENDER, to=[DESK], receiver="oncall"))
    assert "Matched sentences:" in text and "  > The current system for policy implementation" in text
    assert page.count("<blockquote") == 2
    assert '<a href="https://www.federalreserve.gov/newsevents/speech/clarida20190110a.htm"' in page
    assert "Hits:" in text and "Inputs" not in text


def test_everything_from_the_data_is_html_escaped_and_headers_stay_one_line():
    hostile = told(
        KEYWORD_FLAG,
        rule="r<1>", summary="<script>alert(1)</script> & \"co\"\r\nBcc: evil@example.com",
        reason="<b>bold</b>", labels={"a<": "b>&"}, link="javascript:alert(1)",
        sentences=["<img src=x onerror=alert(1)>"],
        inputs={"<i>": {"date": "<d>", "value": "<v>", "published_at": "<p>"}},
    )
    message = format_email(hostile, sender=SENDER, to=[DESK], receiver="oncall")
    _, page = parts(message)
    for raw in ("<script>", "<b>bold", "<img", "<i>", "<d>", "<v>", "<p>", "a<", "r<1>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;" in page
    assert 'href="javascript' not in page and "javascript:alert(1)" in page   # text, not a link
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    flattened = message.as_bytes(policy=email.policy.SMTP)
    assert b"\r\nBcc:" not in flattened


def test_html_has_no_external_resources_or_style_blocks():
    for alert in (SOFR_FIRING, KEYWORD_FLAG):
        _, page = parts(format_email(alert, sender=SENDER, to=[DESK], receiver="oncall"))
        assert "<img" not in page and "<style" not in page and "<link" not in page
        assert "src=" not in page and "url(" not in page


def test_default_key_names_the_receiver_and_the_alert_and_message_id_follows_it():
    for alert in (SOFR_FIRING, told(SOFR_FIRING, deadline="2019-09-18T13:00:00.000000Z")):
        expected = f"notify/oncall/{alert_key(alert)}"
        assert delivery_key(alert, "oncall") == expected
        message = format_email(alert, sender=SENDER, to=[DESK], receiver="oncall")
        assert message["X-Watchdog-Key"] == expected
        assert message["Message-ID"] == message_id(expected, SENDER)


def test_message_id_is_deterministic_and_domain_safe():
    key = "notify/on call/alert/ü-rule/<x>@y/firing/2019-09-17/1"
    first, again = message_id(key, SENDER), message_id(key, SENDER)
    assert first == again and first.endswith("@example.org>")
    local = first[1:-1].split("@")[0]
    assert set(local) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
    assert ".." not in local and not local.startswith(".")
    assert message_id(key + "x", SENDER) != first
    assert message_id(key, "no-domain").endswith("@watchdog.invalid>")
    assert message_id(key, "a@bad_domain!").endswith("@watchdog.invalid>")


# ---- configuration and secrets ----

def test_default_ports_follow_the_tls_mode():
    assert notifier(0, smtp_port=None, tls="starttls").port == 587
    assert notifier(0, smtp_port=None, tls="tls").port == 465
    assert notifier(0, smtp_port=None, tls="none").port == 25
    unset = EmailReceiver.model_validate({"type": "email", "smtp_host": "127.0.0.1", "from": SENDER, "to": [DESK]})
    assert EmailNotifier("x", unset, env={}).tls == "starttls"


def test_password_comes_from_env_then_systemd_credentials(tmp_path):
    assert read_password({"SMTP_PASSWORD": CANARY}, "SMTP_PASSWORD") == CANARY
    (tmp_path / "smtp_password").write_text(CANARY + "\n")
    assert read_password({"CREDENTIALS_DIRECTORY": str(tmp_path)}, "SMTP_PASSWORD") == CANARY
    assert read_password({"CREDENTIALS_DIRECTORY": str(tmp_path / "none")}, "SMTP_PASSWORD") is None
    assert read_password({}, "SMTP_PASSWORD") is None


async def test_missing_password_is_a_permanent_failure_naming_where_it_looked():
    sender = notifier(free_port(), username=USER, password_env="SMTP_PASSWORD")
    assert "$SMTP_PASSWORD is not set" in sender.problem
    result = await sender.send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and result.permanent
    assert "$SMTP_PASSWORD is not set" in result.detail and "smtp_password" in result.detail
    assert notifier(25, env={"SMTP_PASSWORD": CANARY}, username=USER,
                    password_env="SMTP_PASSWORD").problem == ""


# ---- end to end against aiosmtpd ----

async def test_plain_smtp_delivers_subject_text_and_html_to_every_recipient():
    handler = Collector()
    with smtp_server(handler) as port:
        sender = notifier(port, to=[DESK, "ops@example.org"])
        result = await sender.send(SOFR_FIRING, key="notify/oncall/alert/x/1")
    assert result.outcome == "sent", result.detail
    assert "accepted: 2.0.0 OK queued as 42" in result.detail
    got = handler.received[0]
    assert got["from"] == "watchdog@example.org" and got["to"] == [DESK, "ops@example.org"]
    message = received_message(handler)
    assert message["Subject"] == "[FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB"
    assert message["Message-ID"] == result.reference == message_id("notify/oncall/alert/x/1", SENDER)
    assert message["X-Watchdog-Rule"] == "sofr-over-iorb"
    assert message["X-Watchdog-Key"] == "notify/oncall/alert/x/1"
    assert message["Date"] == "Wed, 18 Sep 2019 12:05:00 +0000"
    text, page = parts(message)
    assert "SOFR is 315 bp over IORB" in text and "sofr  2019-09-17  5.25%" in text
    assert page.startswith("<!DOCTYPE html>") and "<td style" in page


async def test_starttls_with_auth_delivers_over_tls_as_the_configured_user(server_tls, client_tls):
    handler = Collector()
    with smtp_server(handler, tls_context=server_tls, require_starttls=True,
                     authenticator=authenticator, auth_required=True) as port:
        sender = notifier(port, env={"SMTP_PASSWORD": CANARY}, ssl_context=client_tls,
                          tls="starttls", username=USER, password_env="SMTP_PASSWORD")
        result = await sender.send(KEYWORD_FLAG, key="k1")
    assert result.outcome == "sent", result.detail
    assert handler.received[0]["tls"] and handler.received[0]["login"] == USER.encode()
    message = received_message(handler)
    assert message["Subject"].startswith("[FLAGGED info] reserves-not-abundant 2019-01-10: ")
    text, page = parts(message)
    assert "abundant reserves" in text and "<blockquote" in page


async def test_a_group_flush_arrives_over_starttls_as_one_email(server_tls, client_tls):
    handler = Collector()
    with smtp_server(handler, tls_context=server_tls, require_starttls=True,
                     authenticator=authenticator, auth_required=True) as port:
        sender = notifier(port, env={"SMTP_PASSWORD": CANARY}, ssl_context=client_tls,
                          tls="starttls", username=USER, password_env="SMTP_PASSWORD")
        result = await sender.send_group([SOFR_FIRING, KEYWORD_FLAG], key="notify/oncall/g/1")
    assert result.outcome == "sent", result.detail
    message = received_message(handler)
    assert message["Subject"] == ("[watchdog] 2 alerts: 1 firing, 1 flagged: sofr-over-iorb, "
                                  "reserves-not-abundant")
    text, page = parts(message)
    assert "SOFR is 315 bp over IORB" in text and "abundant reserves" in text
    assert "<blockquote" in page and CANARY not in text + page


async def test_implicit_tls_with_auth_reads_the_password_from_a_credential_file(
        server_tls, client_tls, tmp_path):
    (tmp_path / "smtp_password").write_text(CANARY + "\n")
    handler = Collector()
    # aiosmtpd cannot tell that a connection is wrapped in TLS: offer AUTH without STARTTLS.
    with smtp_server(handler, ssl_context=server_tls, authenticator=authenticator,
                     auth_require_tls=False) as port:
        sender = notifier(port, env={"CREDENTIALS_DIRECTORY": str(tmp_path)},
                          ssl_context=client_tls, tls="tls", username=USER,
                          password_env="SMTP_PASSWORD")
        result = await sender.send(SOFR_RESOLVED, key="k2")
    # The listener speaks only TLS, so a delivery is a TLS delivery (aiosmtpd marks
    # session.ssl for STARTTLS sessions only).
    assert result.outcome == "sent", result.detail
    assert handler.received[0]["login"] == USER.encode()
    assert received_message(handler)["Subject"].startswith("[RESOLVED warning] sofr-over-iorb")


async def test_wrong_password_is_a_permanent_failure_that_never_shows_the_password(
        server_tls, client_tls, caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="watchdog")
    wrong = CANARY + "-wrong"
    handler = Collector()
    with smtp_server(handler, tls_context=server_tls, require_starttls=True,
                     authenticator=authenticator) as port:
        sender = notifier(port, env={"SMTP_PASSWORD": wrong}, ssl_context=client_tls,
                          tls="starttls", username=USER, password_env="SMTP_PASSWORD")
        result = await sender.send(SOFR_FIRING, key="k3")
    assert result.outcome == "failed" and result.permanent
    assert "authentication failed for user 'watchdog': 535" in result.detail
    assert handler.received == []
    plain = base64.b64encode(f"\0{USER}\0{wrong}".encode()).decode()
    shown = [result.detail, repr(result), repr(sender), capsys.readouterr().out,
             *(r.getMessage() for r in caplog.records if r.name.startswith("watchdog"))]
    for text in shown:
        assert CANARY not in text and plain not in text


async def test_server_echoing_the_password_has_it_scrubbed_from_the_detail():
    handler = Collector(data_reply=f"554 5.7.1 rejected, you sent {CANARY}")
    with smtp_server(handler, authenticator=authenticator, auth_require_tls=False) as port:
        sender = notifier(port, env={"P": CANARY}, username=USER, password_env="P")
        result = await sender.send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and result.permanent
    assert CANARY not in result.detail and "REDACTED" in result.detail


async def test_server_down_is_a_retryable_failure():
    result = await notifier(free_port()).send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and not result.permanent
    assert "cannot connect: connection refused" in result.detail and "127.0.0.1" in result.detail


async def test_server_that_never_greets_times_out_as_a_retryable_failure():
    async with scripted_server("silent") as port:
        result = await notifier(port, timeout=0.3).send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and not result.permanent
    assert "timed out" in result.detail


@pytest.mark.parametrize("after_data", ["drop", "hang"])
async def test_losing_the_server_during_data_is_an_unknown_outcome(after_data):
    async with scripted_server(after_data) as port:
        result = await notifier(port, timeout=0.3).send(SOFR_FIRING, key="k")
    assert result.outcome == "unknown", result.detail
    assert "may or may not have accepted" in result.detail


@pytest.mark.parametrize("reply, permanent", [
    ("451 4.3.0 Temporary local problem, try again", False),
    ("552 5.3.4 Message too big", True),
])
async def test_4xx_data_reply_is_retryable_and_5xx_is_permanent(reply, permanent):
    handler = Collector(data_reply=reply)
    with smtp_server(handler) as port:
        result = await notifier(port).send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and result.permanent is permanent
    assert f"message refused: {reply}" in result.detail


async def test_some_recipients_refused_is_sent_and_names_the_refused():
    handler = Collector(refuse={"gone@example.org": "550 5.1.1 mailbox unavailable"})
    with smtp_server(handler) as port:
        result = await notifier(port, to=[DESK, "gone@example.org"]).send(SOFR_FIRING, key="k")
    assert result.outcome == "sent"
    assert "delivered to 1 of 2 recipients" in result.detail
    assert "gone@example.org: 550 5.1.1 mailbox unavailable" in result.detail
    assert handler.received[0]["to"] == [DESK]


@pytest.mark.parametrize("reply, permanent", [
    ("550 5.1.1 mailbox unavailable", True),
    ("450 4.2.1 mailbox busy", False),
])
async def test_every_recipient_refused_fails_by_reply_class(reply, permanent):
    handler = Collector(refuse={DESK: reply})
    with smtp_server(handler) as port:
        result = await notifier(port).send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and result.permanent is permanent
    assert f"every recipient refused: {DESK}: {reply}" in result.detail
    assert handler.received == []


async def test_untrusted_server_certificate_is_a_permanent_failure(server_tls):
    untrusting = ssl.create_default_context(cafile=None, capath=None, cadata=None)
    untrusting.load_verify_locations(cadata=trustme.CA().cert_pem.bytes().decode())
    handler = Collector()
    with smtp_server(handler, ssl_context=server_tls) as port:
        result = await notifier(port, tls="tls", ssl_context=untrusting).send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and result.permanent
    assert "certificate" in result.detail


async def test_starttls_configured_but_not_offered_is_a_permanent_failure(client_tls):
    handler = Collector()
    with smtp_server(handler) as port:
        result = await notifier(port, tls="starttls", ssl_context=client_tls).send(SOFR_FIRING, key="k")
    assert result.outcome == "failed" and result.permanent
    assert "STARTTLS" in result.detail and handler.received == []


def test_a_late_email_says_since_when_it_fires_and_a_short_episode_says_so():
    from watchdog.notify.email.format import format_text
    alert = told(SOFR_FIRING, date="2025-10-31", value="15", reason="15 > 10", summary="SOFR is 15 bp over IORB",
                 since="2025-10-31", inputs={}, labels={}, evaluated_at="2025-11-10T14:00:00.000000Z")
    assert "Still firing since 2025-10-31" in format_text(alert, receiver="desk", key="k")
    episode = told(alert, state="resolved", date="2025-12-02", since=None,
                   episode={"fired_date": "2025-12-01", "fired_value": "315"})
    assert ("Short episode: fired for 2025-12-01 at 315 bp and resolved for 2025-12-02"
            in format_text(episode, receiver="desk", key="k"))


def test_render_shows_the_description_and_the_sparkline_in_every_format():
    from click.testing import CliRunner

    from watchdog.cli import cli
    repo = Path(__file__).resolve().parent.parent
    args = ["render", "--db", str(repo / "events.db.example"), "--rules", str(repo / "rules"),
            "--rule", "sofr-over-iorb", "--date", "2019-09-17", "--format"]
    console = CliRunner().invoke(cli, args + ["console"])
    assert console.exit_code == 0, console.output
    line, spark = console.output.splitlines()
    assert line == ("[FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB "
                    "(315 bp > 10 bp for 2 business days)")
    assert spark.endswith("█  20 readings: 3 bp → 315 bp, low -1 bp, high 315 bp")
    mail = CliRunner().invoke(cli, args + ["email"])
    text = email.message_from_string(mail.output, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "Meaning:      Secured overnight funding trades above the rate the Fed pays on reserves" in text
    assert "20 readings: 3 bp → 315 bp, low -1 bp, high 315 bp" in text
