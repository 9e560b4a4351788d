"""The email sender: ``EmailNotifier`` hands what ``format.py`` makes to the SMTP server
(aiosmtplib), with TLS and credentials.

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
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.message import EmailMessage

import aiosmtplib

from watchdog.model.config import EmailReceiver
from watchdog.model.events import ToldAlert
from watchdog.model.redact import REDACTED, scrub
from watchdog.model.secrets import read_secret
from watchdog.notify import SendResult
from watchdog.notify.email.format import format_email, format_group_email, one_line

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0            # seconds, each SMTP step (connect, TLS, AUTH, MAIL, RCPT, DATA)
TOTAL_TIMEOUT_STEPS = 4           # the whole exchange: at most this many step timeouts


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
    return one_line(f"{exc.code} {exc.message}")


def _by_code(code: int, what: str) -> SendResult:
    """4xx: the server asks us to try again; 5xx: it refused for good."""
    return SendResult("failed", permanent=not 400 <= code < 500, detail=what)


class EmailNotifier:
    """Sends one email per alert transition through the configured SMTP server.

    ``ssl_context`` overrides the CA/verification used for ``tls`` and ``starttls`` (tests use a
    trustme CA); by default the system's trust store verifies the server's certificate and name.
    ``timeout`` bounds each SMTP step; ``now`` stamps the ``Date`` header."""

    def __init__(self, receiver_name: str, config: EmailReceiver,
                 env: Mapping[str, str] | None = None, *, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = DEFAULT_TIMEOUT, local_hostname: str | None = None,
                 now: Callable[[], datetime] | None = None):
        self.name = receiver_name
        self.config = config
        self.env = os.environ if env is None else env
        self.tls = config.tls
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

    def message(self, alert: ToldAlert, *, key: str) -> EmailMessage:
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

    async def send(self, alert: ToldAlert, *, key: str) -> SendResult:
        """Deliver one alert to every configured recipient. Never raises (module table)."""
        return await self._send(lambda: self.message(alert, key=key))

    async def send_group(self, alerts: list[ToldAlert], *, key: str, group: str = "") -> SendResult:
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
        detail = f"accepted: {one_line(response.message)}"
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
                f"message ({one_line(str(exc))})"))
        if isinstance(exc, OSError):      # SMTPConnectError, SMTPServerDisconnected included
            reason = cause if isinstance(cause, OSError) else exc
            if isinstance(reason, ConnectionRefusedError):
                text = "connection refused"
            elif isinstance(reason, socket.gaierror):
                text = f"cannot resolve {self.host}: {reason.strerror}"
            else:
                text = one_line(str(reason)) or type(reason).__name__
            where = "cannot connect" if phase == "connect" else f"connection lost during {phase}"
            return SendResult("failed", detail=f"{where}: {text}")
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or (
                type(exc) is aiosmtplib.SMTPException and phase in ("starttls", "auth")):
            # The server lacks what the config requires (STARTTLS, AUTH): retrying cannot help.
            return SendResult("failed", permanent=True, detail=f"{phase}: {one_line(str(exc))}")
        if isinstance(exc, aiosmtplib.SMTPException):
            return SendResult("failed", detail=f"{phase}: {one_line(str(exc))}")
        if isinstance(exc, ValueError):
            # aiosmtplib rejects addresses it cannot put on a command line (non-ASCII, spaces).
            return SendResult("failed", permanent=True, detail=f"{phase}: {one_line(str(exc))}")
        return SendResult("failed", detail=f"{phase}: unexpected {type(exc).__name__}: "
                                           f"{one_line(str(exc))}")


def _scrub_all(text: str, secrets: list[str]) -> str:
    """``redact.scrub`` and, for secrets shorter than it handles, an exact replace as well."""
    text = scrub(text, secrets)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
