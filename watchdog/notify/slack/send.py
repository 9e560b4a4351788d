"""The Slack sender: ``SlackNotifier`` posts what ``format.py`` makes, with ``slack_sdk``.

Delivery: two modes, chosen by the receiver config (``SlackReceiver.mode``)
    - webhook (``webhook_url_env``): ``AsyncWebhookClient``. It does not raise on HTTP errors,
      so the status code is checked: 429 waits ``Retry-After``, 5xx and timeouts back off and
      retry, other 4xx (``invalid_payload``, ``no_service``, ``channel_not_found`` …) fail
      permanently. A webhook cannot read the channel back.
    - bot token (``token_env`` + ``channel``, optional ``api_base_url``): ``AsyncWebClient``.
      Each message carries ``metadata = {"event_type": "watchdog_alert", "event_payload":
      {"key", "rule", "state", "date"}}`` so ``find_delivered(key)`` can look an idempotency key
      up in the channel's recent history (``conversations.history``, ``include_all_metadata``;
      needs the ``channels:history`` scope, ``groups:history`` for a private channel, and
      ``channel`` given as an ID). A resolved alert
      edits the firing message (``chat.update``, which also moves the metadata to the resolved
      key, so exactly one message carries each key) and then replies in its thread (shown in
      the channel too unless ``broadcast_resolved=False``); the firing message is known from
      ``firing_reference``, from this process, or from the channel history (the newest message
      of the rule whose metadata still says ``firing``). When it cannot be edited (deleted, too
      old) the resolved message is posted anew.

    The SDK's own retry handlers are switched off: they sleep inside the call with
    ``asyncio.sleep`` (not injectable, and unbounded by us). Retries here use the injected
    ``sleep``; a ``Retry-After`` longer than ``max_wait`` is not waited for but handed back
    (``SendResult.retry_after``) so the outbox can schedule the next try.

Delivery guarantee: at-least-once
    The outbox records ``notification-attempted`` before a send and the outcome after it. A
    crash between Slack accepting a message and the outcome being recorded leaves an attempt
    with no outcome, which is sent again: **a duplicate message is possible**. In bot-token mode
    the outbox can call ``find_delivered(key)`` first and record the delivery instead of
    resending; the notifier itself does the same before retrying a post that timed out (the
    post may have landed). A webhook cannot be reconciled: ``find_delivered`` returns None and
    a timed-out webhook post that is retried may show twice. A send whose last attempt timed
    out returns ``outcome="unknown"``.

Secrets
    The webhook URL (the whole URL is the credential) and the bot token are read from the
    environment variable the config names, or from ``$CREDENTIALS_DIRECTORY/<name lowercased>``
    (systemd ``LoadCredential``). They never appear in ``SendResult.detail``, log lines,
    exception text or ``repr``: details are built from status codes and Slack error codes only,
    then scrubbed; the SDK logs through a logger whose debug records (which can carry the
    webhook URL) are dropped.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from watchdog.model.config import SlackReceiver
from watchdog.model.errors import NotifyError
from watchdog.model.events import ToldAlert
from watchdog.model.redact import scrub
from watchdog.model.secrets import read_secret as _read_secret
from watchdog.notify import SendResult
from watchdog.notify.slack.format import format_group_message, format_slack_message

log = logging.getLogger(__name__)

EVENT_TYPE = "watchdog_alert"      # the metadata event type that marks this daemon's messages

Sleep = Callable[[float], Awaitable[None]]
RecentValues = Callable[[ToldAlert], "Sequence[Any] | None"]

# An SDK logger of our own: slack_sdk writes the webhook URL into debug records ("Sending a
# request - url: …"). Its level keeps the SDK from building them; the filter drops any that
# are made anyway (someone turning this logger to DEBUG).
_SDK_LOG = logging.getLogger("watchdog.notify.slack.send.sdk")
_SDK_LOG.setLevel(logging.INFO)
_SDK_LOG.addFilter(lambda record: record.levelno > logging.DEBUG)

WEBHOOK_PERMANENT_HINTS = {
    "invalid_payload": "Slack could not read the message (a formatting bug: please report it)",
    "user_not_found": "the user in the message does not exist",
    "action_prohibited": "the workspace forbids this webhook from posting here",
    "channel_not_found": "the webhook's channel no longer exists",
    "channel_is_archived": "the webhook's channel is archived",
    "no_service": "the webhook was disabled or removed: create a new one",
    "no_team": "the webhook's workspace no longer exists",
    "team_disabled": "the webhook's workspace is disabled",
    "invalid_token": "the webhook URL is not valid",
    "posting_to_general_channel_denied": "only admins may post to this channel",
}
API_PERMANENT_HINTS = {
    "invalid_auth": "Slack rejected the bot token (revoked, mistyped or for another workspace)",
    "not_authed": "no bot token reached Slack",
    "account_inactive": "the bot token belongs to a deactivated user or workspace",
    "token_revoked": "the bot token was revoked",
    "token_expired": "the bot token expired",
    "no_permission": "the bot token lacks permission for this",
    "missing_scope": "the bot token lacks a scope (chat:write; channels:history to reconcile)",
    "channel_not_found": "the channel does not exist or the bot cannot see it (use its ID, invite the bot)",
    "not_in_channel": "the bot is not in the channel: invite it",
    "is_archived": "the channel is archived",
    "restricted_action": "the workspace forbids the bot from posting here",
    "msg_too_long": "the message is too long",
    "invalid_blocks": "Slack rejected the message blocks (a formatting bug: please report it)",
    "invalid_attachments": "Slack rejected the attachments (a formatting bug: please report it)",
    "invalid_metadata_format": "Slack rejected the message metadata",
    "invalid_metadata_schema": "Slack rejected the message metadata",
    "metadata_too_large": "the message metadata is too large",
    "too_many_attachments": "too many attachments",
    "ekm_access_denied": "the workspace's encryption keys deny access",
    "team_access_not_granted": "the token has no access to this workspace",
    "invalid_arguments": "Slack rejected the call's arguments",
}
API_RETRY_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "ratelimited"})
# chat.update failures that mean "that message cannot be edited": post a new message instead
UPDATE_FALLBACK_ERRORS = frozenset({"message_not_found", "cant_update_message",
                                    "edit_window_closed", "thread_not_found"})


@dataclass(frozen=True)
class _Try:
    """One call's outcome. kind: ok | permanent | failed (give up, not permanent) |
    ratelimited | server | timeout | unreachable (the last four are retried)."""
    kind: str
    detail: str = ""
    retry_after: float | None = None
    data: dict | None = None
    error: str = ""
    attempts: int = 1
    reference: str = ""          # channel:ts of the message a successful post made


RETRIED = frozenset({"ratelimited", "server", "timeout", "unreachable"})


def read_secret(env: Mapping[str, str], var: str) -> str | None:
    """The webhook URL or token from the environment or a systemd credential (never logged)."""
    return _read_secret(env, var)


def _retry_after(headers: Any) -> float:
    raw = ""
    try:
        raw = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or ""
    except AttributeError:
        pass
    try:
        return max(0.0, float(str(raw).strip()))
    except ValueError:
        return 1.0                               # Slack always sends seconds; be safe


def _reference(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def _split_reference(reference: str) -> tuple[str, str] | None:
    channel, sep, ts = (reference or "").partition(":")
    return (channel, ts) if sep and channel and ts else None


class SlackNotifier:
    """One Slack receiver. ``send`` never raises: it returns a ``SendResult`` for the outbox.

    ``sleep`` is the wait between retries (inject a fake in tests); ``timeout`` bounds each HTTP
    call; ``max_attempts`` counts the first try; backoff doubles from ``backoff`` seconds;
    ``Retry-After`` above ``max_wait`` is handed back instead of waited for. ``recent_values``
    (alert -> values) feeds the sparkline. ``broadcast_resolved`` also shows the resolved thread
    reply in the channel.
    """

    def __init__(self, receiver_name: str, config: SlackReceiver, env: Mapping[str, str], *,
                 sleep: Sleep = asyncio.sleep, timeout: float = 10.0, max_attempts: int = 4,
                 backoff: float = 1.0, max_wait: float = 30.0, history_limit: int = 200,
                 history_pages: int = 3, recent_values: RecentValues | None = None,
                 broadcast_resolved: bool = True):
        self.name = receiver_name
        self._sleep = sleep
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_wait = max_wait
        self.history_limit = history_limit
        self.history_pages = history_pages
        self._recent_values = recent_values
        self.broadcast_resolved = broadcast_resolved
        self._secrets: list[str] = []
        self._problem = ""
        self._webhook: AsyncWebhookClient | None = None
        self._web: AsyncWebClient | None = None
        self._firing: dict[str, str] = {}        # rule -> reference of its firing message

        self.mode = config.mode                  # the model holds one: webhook, or token + channel
        if self.mode == "webhook":
            self.secret_var = config.webhook_url_env
            self.channel = ""
            url = read_secret(env, self.secret_var)
            if url is None:
                self._problem = self._missing()
            else:
                self._remember_secret(url)
                if not re.match(r"^https?://[^\s/]+/\S*$", url):
                    self._problem = f"{self.secret_var} does not hold an http(s) webhook URL"
                else:
                    self._webhook = AsyncWebhookClient(url=url, timeout=timeout, logger=_SDK_LOG,
                                                       retry_handlers=[])
        else:
            self.secret_var = config.token_env
            self.channel = config.channel
            token = read_secret(env, self.secret_var)
            if token is None:
                self._problem = self._missing()
            else:
                self._remember_secret(token)
                kwargs: dict[str, Any] = {}
                if config.api_base_url:
                    kwargs["base_url"] = config.api_base_url
                self._web = AsyncWebClient(token=token, timeout=timeout, logger=_SDK_LOG,
                                           retry_handlers=[], **kwargs)
        self._channel_id = self.channel if re.fullmatch(r"[CGD][A-Z0-9]{2,}", self.channel) else ""

    def __repr__(self) -> str:
        where = f", channel={self.channel!r}" if self.channel else ""
        return f"SlackNotifier({self.name!r}, mode={self.mode!r}{where})"

    @property
    def problem(self) -> str:
        """Why this receiver cannot send (a missing secret), or ''. For ``check``/``notify-test``."""
        return self._problem

    @property
    def can_reconcile(self) -> bool:
        """Whether ``find_delivered`` can look a delivery up (bot-token mode only)."""
        return self.mode == "bot" and self._web is not None

    # ---- the Notifier protocol ----

    async def send(self, alert: ToldAlert, *, key: str, firing_reference: str | None = None) -> SendResult:
        """Deliver one alert. ``key`` is the delivery's idempotency key; ``firing_reference``
        (``channel:ts`` from the firing delivery's SendResult) lets a resolved alert edit the
        firing message. Never raises."""
        return await self._guarded(alert.rule, lambda: self._send(alert, key, firing_reference))

    async def _guarded(self, what: str, send: Callable[[], Awaitable[SendResult]]) -> SendResult:
        """A missing secret fails for good, an unexpected error is a retryable failure, and the
        detail is scrubbed of secrets before it is logged or recorded."""
        if self._problem:
            result = SendResult("failed", permanent=True, detail=self._problem)
        else:
            try:
                result = await send()
            except Exception as exc:   # noqa: BLE001 — the outbox needs an outcome, not a crash
                result = SendResult("failed", detail=f"unexpected {type(exc).__name__} while sending")
        result = replace(result, detail=self._scrub(result.detail))
        level = logging.INFO if result.outcome == "sent" else logging.WARNING
        log.log(level, "slack %s: %s %s: %s", self.name, what, result.outcome, result.detail)
        return result

    async def send_group(self, alerts: list[ToldAlert], *, key: str, group: str = "") -> SendResult:
        """Deliver one flush of several alerts as one message (no resolve-in-place: the firing
        messages it answers may be several). Never raises."""
        return await self._guarded(f"group of {len(alerts)}", lambda: self._send_group(alerts, key, group))

    async def _send_group(self, alerts: list[ToldAlert], key: str, group: str) -> SendResult:
        message = format_group_message(alerts, group=group)
        if self.mode == "webhook":
            return self._result(await self._attempt(lambda: self._post_webhook(message)), "posted via webhook")
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"key": key, "rule": "", "state": "group", "date": ""}}
        return self._result(await self._post(message, metadata, key), "posted")

    async def find_delivered(self, key: str) -> str | None:
        """The ``channel:ts`` of a message in the channel's recent history whose metadata carries
        ``key``, or None when there is none (or in webhook mode, which cannot look). Raises
        ``NotifyError`` (secret-free) when the history cannot be read, so "not found" and
        "could not tell" stay distinct."""
        if not self.can_reconcile:
            return None
        found = await self._scan(lambda payload: payload.get("key") == key)
        if isinstance(found, _Try):
            raise NotifyError(self._scrub(f"slack {self.name}: cannot read the channel history: "
                                          f"{found.detail}"), retryable=found.kind != "permanent") from None
        return found

    # ---- internals ----

    def _missing(self) -> str:
        return (f"{self.secret_var} is not set (environment, or $CREDENTIALS_DIRECTORY/"
                f"{self.secret_var.lower()})")

    def _remember_secret(self, secret: str) -> None:
        self._secrets.append(secret)
        if "://" in secret:                      # a webhook URL: its path alone is secret too
            path = "/" + secret.split("://", 1)[1].partition("/")[2]
            self._secrets += [p for p in (path, path.rstrip("/").rsplit("/", 1)[-1]) if len(p) >= 8]

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def _send(self, alert: ToldAlert, key: str, firing_reference: str | None) -> SendResult:
        values = self._recent_values(alert) if self._recent_values is not None else None
        message = format_slack_message(alert, sparkline_values=list(values) if values else None)
        if self.mode == "webhook":
            got = await self._attempt(lambda: self._post_webhook(message))
            return self._result(got, "posted via webhook")
        rule = alert.rule
        metadata = {"event_type": EVENT_TYPE,
                    "event_payload": {"key": key, "rule": rule, "state": alert.state, "date": alert.date}}
        if alert.state == "resolved":
            reference = firing_reference or self._firing.get(rule) or await self._find_firing(rule)
            if reference:
                return await self._resolve(message, metadata, reference, rule, key)
        got = await self._post(message, metadata, key)
        result = self._result(got, "posted")
        if result.outcome == "sent" and alert.state == "firing" and result.reference:
            self._firing[rule] = result.reference
        return result

    async def _post(self, message: dict, metadata: dict, key: str, **extra: Any) -> _Try:
        async def post() -> _Try:
            got = await self._api("chat_postMessage", channel=self._channel_id or self.channel,
                                  metadata=metadata, unfurl_links=False, unfurl_media=False,
                                  **message, **extra)
            if got.kind == "ok" and got.data:
                self._channel_id = got.data.get("channel") or self._channel_id
                got = replace(got, reference=_reference(got.data.get("channel", ""), got.data.get("ts", "")))
            return got

        async def landed() -> _Try | None:
            """After a timeout the post may have landed: look before posting it again."""
            try:
                found = await self.find_delivered(key)
            except NotifyError:
                return None
            return _Try("ok", reference=found, detail="found after a timeout") if found else None
        return await self._attempt(post, after_timeout=landed if self._channel_id else None)

    async def _resolve(self, message: dict, metadata: dict, reference: str, rule: str,
                       key: str) -> SendResult:
        """Edit the firing message into the resolved one (moving the metadata to this key, so
        ``find_delivered`` sees the delivery), then reply in its thread."""
        channel_ts = _split_reference(reference)
        if channel_ts is None:
            got = await self._post(message, metadata, key)
            return self._result(got, "posted (firing message reference unreadable)")
        channel, ts = channel_ts
        updated = await self._attempt(lambda: self._api(
            "chat_update", channel=channel, ts=ts, metadata=metadata, **message))
        if updated.kind != "ok":
            if updated.error in UPDATE_FALLBACK_ERRORS:
                self._firing.pop(rule, None)
                got = await self._post(message, metadata, key)
                return self._result(got, f"posted (firing message not editable: {updated.error})")
            return self._result(updated, "")
        self._firing.pop(rule, None)
        reply = {"text": message["text"], "blocks": message["blocks"]}
        replied = await self._attempt(lambda: self._api(
            "chat_postMessage", channel=channel, thread_ts=ts, reply_broadcast=self.broadcast_resolved,
            unfurl_links=False, unfurl_media=False, **reply))
        detail = "updated the firing message and replied in its thread"
        if replied.kind != "ok":
            detail = f"updated the firing message; thread reply failed: {replied.detail}"
        return SendResult("sent", detail=detail, reference=_reference(channel, ts))

    async def _find_firing(self, rule: str) -> str | None:
        if not self._channel_id:
            return None
        found = await self._scan(lambda p: p.get("rule") == rule and p.get("state") == "firing")
        return found if isinstance(found, str) else None

    async def _scan(self, wanted: Callable[[dict], bool]) -> str | None | _Try:
        """Newest-first walk of the channel history (``history_pages`` pages); the reference of
        the first watchdog message whose metadata payload matches, None, or the failed _Try."""
        if not self._channel_id:
            return _Try("permanent", detail="the channel must be given by ID (C…) to read its history")
        cursor = None
        for _ in range(max(1, self.history_pages)):
            kwargs: dict[str, Any] = {"channel": self._channel_id, "include_all_metadata": True,
                                      "limit": self.history_limit}
            if cursor:
                kwargs["cursor"] = cursor
            got = await self._attempt(lambda: self._api("conversations_history", **kwargs))
            if got.kind != "ok":
                return got
            data = got.data or {}
            for msg in data.get("messages") or []:
                meta = msg.get("metadata") or {}
                if meta.get("event_type") == EVENT_TYPE and wanted(meta.get("event_payload") or {}):
                    return _reference(self._channel_id, msg.get("ts", ""))
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not data.get("has_more") or not cursor:
                return None
        return None

    async def _attempt(self, call: Callable[[], Awaitable[_Try]],
                       after_timeout: Callable[[], Awaitable[_Try | None]] | None = None) -> _Try:
        """Run ``call`` until it succeeds, fails for good, or ``max_attempts`` are spent."""
        got = _Try("failed", "not attempted")
        for attempt in range(1, self.max_attempts + 1):
            got = replace(await call(), attempts=attempt)
            if got.kind not in RETRIED or attempt == self.max_attempts:
                return got
            if got.kind == "ratelimited":
                if got.retry_after is not None and got.retry_after > self.max_wait:
                    return got                   # too long to hold the outbox: hand it back
                wait = got.retry_after if got.retry_after is not None else self.backoff
            else:
                wait = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
            log.warning("slack %s: %s; retry %d of %d in %gs", self.name, self._scrub(got.detail),
                        attempt, self.max_attempts - 1, wait)
            await self._sleep(wait)
            if got.kind == "timeout" and after_timeout is not None:
                found = await after_timeout()
                if found is not None:
                    return replace(found, attempts=attempt)
        return got

    def _result(self, got: _Try, sent_detail: str) -> SendResult:
        after = f" (after {got.attempts} attempts)" if got.attempts > 1 else ""
        if got.kind == "ok":
            detail = sent_detail or "sent"
            if got.detail:
                detail += f" ({got.detail})"
            return SendResult("sent", detail=detail + after, reference=got.reference)
        if got.kind == "permanent":
            return SendResult("failed", permanent=True, detail=got.detail + after)
        if got.kind == "timeout":
            return SendResult("unknown", detail=f"{got.detail}{after}; the message may have been posted")
        return SendResult("failed", detail=got.detail + after,
                          retry_after=got.retry_after if got.kind == "ratelimited" else None)

    async def _post_webhook(self, message: dict) -> _Try:
        assert self._webhook is not None
        body = {**message, "unfurl_links": False, "unfurl_media": False}
        try:
            response = await self._webhook.send_dict(body)
        except Exception as exc:  # noqa: BLE001
            return self._transport_failure(exc)
        status = response.status_code
        code = self._scrub((response.body or "").strip())
        code = code if re.fullmatch(r"[a-z0-9_]{1,60}", code) else ""
        if 200 <= status < 300:
            return _Try("ok")
        if status == 429:
            wait = _retry_after(response.headers)
            return _Try("ratelimited", detail=f"rate limited (HTTP 429); Slack asked to wait {wait:g}s",
                        retry_after=wait, error=code)
        if status >= 500:
            return _Try("server", detail=f"Slack answered HTTP {status}" + (f" {code}" if code else ""),
                        error=code)
        hint = WEBHOOK_PERMANENT_HINTS.get(code, "Slack refused the webhook post")
        return _Try("permanent", detail=f"HTTP {status} {code or 'error'}: {hint}", error=code)

    async def _api(self, method: str, **kwargs: Any) -> _Try:
        assert self._web is not None
        try:
            response = await getattr(self._web, method)(**kwargs)
        except SlackApiError as exc:
            return self._api_failure(method, exc.response)
        except Exception as exc:  # noqa: BLE001
            return self._transport_failure(exc)
        data = response.data if isinstance(response.data, dict) else {}
        return _Try("ok", data=data)

    def _api_failure(self, method: str, response: Any) -> _Try:
        status = getattr(response, "status_code", 0) or 0
        data = getattr(response, "data", None)
        error = data.get("error", "") if isinstance(data, dict) else ""
        error = error if re.fullmatch(r"[a-z0-9_]{1,60}", error or "") else ""
        call = method.replace("_", ".", 1)
        if status == 429 or error == "ratelimited":
            wait = _retry_after(getattr(response, "headers", None))
            return _Try("ratelimited", detail=f"{call}: ratelimited; Slack asked to wait {wait:g}s",
                        retry_after=wait, error="ratelimited")
        if status >= 500 or error in API_RETRY_ERRORS:
            return _Try("server", detail=f"{call}: Slack answered HTTP {status}"
                        + (f" {error}" if error else ""), error=error)
        if error in API_PERMANENT_HINTS:
            hint = API_PERMANENT_HINTS[error]
            if error in ("invalid_auth", "token_revoked", "token_expired", "account_inactive"):
                hint += f" — check {self.secret_var}"
            elif error in ("channel_not_found", "not_in_channel", "is_archived"):
                hint += f" — channel {self.channel}"
            return _Try("permanent", detail=f"{call}: {error}: {hint}", error=error)
        if 400 <= status < 500:
            return _Try("permanent", detail=f"{call}: HTTP {status}" + (f" {error}" if error else ""),
                        error=error)
        if error in UPDATE_FALLBACK_ERRORS:
            return _Try("failed", detail=f"{call}: {error}", error=error)
        return _Try("failed", detail=f"{call}: Slack error {error or 'unknown'}", error=error)

    def _transport_failure(self, exc: Exception) -> _Try:
        """Only the exception's type name is kept: aiohttp messages can quote the URL."""
        if isinstance(exc, asyncio.TimeoutError):
            return _Try("timeout", detail=f"no answer from Slack within {self.timeout:g}s")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return _Try("unreachable", detail=f"cannot connect to Slack ({type(exc).__name__})")
        if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                            aiohttp.ClientOSError)):
            return _Try("timeout", detail=f"connection to Slack lost ({type(exc).__name__})")
        if isinstance(exc, aiohttp.ClientError):
            return _Try("unreachable", detail=f"HTTP client error ({type(exc).__name__})")
        return _Try("failed", detail=f"unexpected {type(exc).__name__} calling Slack")
