"""The Slack receiver: Block Kit formatting (pure, golden-file tested) and delivery.

Formatting
    ``format_slack_message(alert, sparkline_values=...)`` turns an alert event payload
    (``AlertTransition`` fields) into ``{"text", "blocks", "attachments"}``: a two-line headline
    (state, severity, rule id, observation date) in ``blocks``; the details in one attachment
    whose colour bar says the severity (critical red, warning amber, info blue; resolved green):
    value against threshold ("315 bp > 10"), a Unicode sparkline of recent values (no image
    URLs: the daemon has no public address), the inputs with their dates and publication times
    (New York time), the matched sentences of a keyword flag, the source link, the rule id.
    ``text`` is the fallback Slack shows in push notifications. Lines stay short for phones.

Delivery: two modes, chosen by the receiver config
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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from watchdog.model.config import ReceiverConfig
from watchdog.model.errors import ConfigError, NotifyError
from watchdog.notify import SendResult, catch_up_note
from watchdog.model.redact import scrub
from watchdog.market.series import SERIES
from watchdog.model.timefmt import new_york_minute, parse_utc
from watchdog.model.secrets import read_secret as _read_secret

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Formatting (pure)
# ---------------------------------------------------------------------------------------------

SPARK_BARS = "▁▂▃▄▅▆▇█"
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
EVENT_TYPE = "watchdog_alert"


def sparkline(values: Iterable[Any]) -> str:
    """One block glyph per value, lowest ``▁`` to highest ``█`` on a linear scale; a missing
    value (None, empty, not a number) is a space; all-equal values are a flat ``▄`` line."""
    numbers = [_decimal(v) for v in values]
    present = [n for n in numbers if n is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    out = []
    for n in numbers:
        if n is None:
            out.append(" ")
        elif high == low:
            out.append(SPARK_BARS[3])
        else:
            step = ((n - low) * (len(SPARK_BARS) - 1) / (high - low)).to_integral_value(ROUND_HALF_UP)
            out.append(SPARK_BARS[int(step)])
    return "".join(out)


def format_slack_message(alert: dict, *, sparkline_values: list[str] | None = None) -> dict:
    """The Slack message for one alert transition: ``{"text", "blocks", "attachments"}``.

    Pure: the same alert gives the same bytes (golden files pin them)."""
    state = alert.get("state", "")
    emoji, word = STATES.get(state, ("•", state.upper() or "ALERT"))
    rule = alert.get("rule", "")
    date = alert.get("date", "")
    severity = alert.get("severity", "")
    summary = (alert.get("summary") or "").strip()
    reason = (alert.get("reason") or "").strip()
    sentences = [s for s in alert.get("sentences") or [] if s and s.strip()]
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
    inputs = _inputs(alert.get("inputs") or {})
    if inputs:
        details.append(_section(inputs))
    link = _link(alert.get("link") or "", speech=bool(sentences))
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


def format_group_message(alerts: list[dict], *, group: str = "") -> dict:
    """One flush of a group with several alerts: a headline with the counts, then each alert
    as its own coloured attachment (the one-alert message's blocks). Pure, golden-tested."""
    shown = [format_slack_message(a) for a in alerts[:GROUP_SHOWN]]
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.get("state", "")] = counts.get(alert.get("state", ""), 0) + 1
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


def _unit(alert: dict) -> str:
    """The value's unit: an explicit ``unit`` (payload or label), else ``bp`` when the summary or
    reason writes the value in basis points ("SOFR is 315 bp over IORB"), else none."""
    explicit = alert.get("unit") or (alert.get("labels") or {}).get("unit")
    if explicit:
        return str(explicit)
    value = alert.get("value")
    if value in (None, ""):
        return ""
    text = f"{alert.get('summary') or ''} {alert.get('reason') or ''}"
    return "bp" if re.search(rf"(?<![\w.]){re.escape(str(value))} ?bp\b", text) else ""


def _with_unit(value: str, unit: str) -> str:
    if not unit:
        return value
    return f"{value}{unit}" if unit == "%" else f"{value} {unit}"


def _value_text(alert: dict) -> tuple[str, str]:
    """Plain text of the value against its threshold and what the reason adds to it:
    ``("315 bp > 10", "for 2 business days")`` for a firing alert, ``("33 bp (alert level 10)",
    "")`` otherwise; ``("", "")`` when the alert has no value."""
    value, threshold = alert.get("value"), alert.get("threshold")
    if value in (None, ""):
        return "", ""
    shown = _with_unit(str(value), _unit(alert))
    v, t = _decimal(value), _decimal(threshold)
    if alert.get("state") == "firing" and v is not None and t is not None:
        op = ">" if v > t else "<" if v < t else "="
        reason = (alert.get("reason") or "").strip()
        prefix = f"{value} {op} {threshold}"
        extra = reason[len(prefix):].strip() if reason.startswith(prefix) else reason
        return f"{shown} {op} {threshold}", extra
    if threshold not in (None, ""):
        return f"{shown} (alert level {threshold})", ""
    return shown, ""


def _value_line(alert: dict) -> str:
    main, extra = _value_text(alert)
    if not main:
        return ""
    return f"*{_esc(main)}*" + (f" · {_esc(extra)}" if extra else "")


def _resolved_line(reason: str, alert: dict) -> str:
    level = alert.get("threshold")
    tail = f" · alert level {_esc(str(level))}" if level not in (None, "") else ""
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


def _inputs(inputs: Mapping[str, Any]) -> str:
    rows = []
    for name in sorted(inputs)[:MAX_INPUTS]:
        item = inputs[name] or {}
        value = str(item.get("value", ""))
        series = SERIES.get(name.split(".", 1)[0])
        unit = series.unit if series is not None and "." not in name else ""
        row = f"• {_esc(name)} {_esc(_with_unit(value, unit))}"
        if item.get("date"):
            row += f" on {_esc(item['date'])}"
        published = _new_york(item.get("published_at") or "")
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


def _context(alert: dict) -> list[dict]:
    parts = [f"rule `{_esc(alert.get('rule', ''))}`"]
    if alert.get("rule_hash"):
        parts.append(f"version {_esc(alert['rule_hash'][:8])}")
    for key, value in sorted((alert.get("labels") or {}).items()):
        parts.append(f"{_esc(key)}: {_esc(str(value))}")
    known = _new_york(alert.get("evaluated_at") or "")
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


# ---------------------------------------------------------------------------------------------
# Delivery (edge)
# ---------------------------------------------------------------------------------------------

Sleep = Callable[[float], Awaitable[None]]
RecentValues = Callable[[dict], "Sequence[Any] | None"]

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

    def __init__(self, receiver_name: str, config: ReceiverConfig, env: Mapping[str, str], *,
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

        if config.webhook_url_env and config.token_env:
            raise ConfigError(f"receivers.{receiver_name}: set webhook_url_env or token_env "
                              "+ channel, not both")
        if config.webhook_url_env:
            self.mode = "webhook"
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
        elif config.token_env:
            if not config.channel:
                raise ConfigError(f"receivers.{receiver_name}: token_env needs a channel "
                                  "(its ID, e.g. C0123456789)")
            self.mode = "bot"
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
        else:
            raise ConfigError(f"receivers.{receiver_name}: a slack receiver needs "
                              "webhook_url_env, or token_env + channel")
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

    async def send(self, alert: dict, *, key: str, firing_reference: str | None = None) -> SendResult:
        """Deliver one alert. ``key`` is the delivery's idempotency key; ``firing_reference``
        (``channel:ts`` from the firing delivery's SendResult) lets a resolved alert edit the
        firing message. Never raises."""
        return await self._guarded(alert.get("rule", "?"), lambda: self._send(alert, key, firing_reference))

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

    async def send_group(self, alerts: list[dict], *, key: str, group: str = "") -> SendResult:
        """Deliver one flush of several alerts as one message (no resolve-in-place: the firing
        messages it answers may be several). Never raises."""
        return await self._guarded(f"group of {len(alerts)}", lambda: self._send_group(alerts, key, group))

    async def _send_group(self, alerts: list[dict], key: str, group: str) -> SendResult:
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

    async def _send(self, alert: dict, key: str, firing_reference: str | None) -> SendResult:
        values = self._recent_values(alert) if self._recent_values is not None else None
        message = format_slack_message(alert, sparkline_values=list(values) if values else None)
        if self.mode == "webhook":
            got = await self._attempt(lambda: self._post_webhook(message))
            return self._result(got, "posted via webhook")
        metadata = {"event_type": EVENT_TYPE,
                    "event_payload": {"key": key, "rule": alert.get("rule", ""),
                                      "state": alert.get("state", ""), "date": alert.get("date", "")}}
        rule = alert.get("rule", "")
        if alert.get("state") == "resolved":
            reference = firing_reference or self._firing.get(rule) or await self._find_firing(rule)
            if reference:
                return await self._resolve(message, metadata, reference, rule, key)
        got = await self._post(message, metadata, key)
        result = self._result(got, "posted")
        if result.outcome == "sent" and alert.get("state") == "firing" and result.reference:
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
