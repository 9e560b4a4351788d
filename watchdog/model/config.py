"""Daemon configuration (TOML), validated strictly at load: unknown keys are errors.

Secrets are never in the file: it names environment variables (``*_env``) and the values are
read from the environment or ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential``) at the edge.
"""
from __future__ import annotations

import os
import re
import types
from datetime import timedelta
from typing import Annotated, Any, Literal, Mapping, Union, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from watchdog.model import tomlpos
from watchdog.model.errors import ConfigError
from watchdog.model.numbers import parse_size
from watchdog.model.patterns import PatternError, compile_pattern
from watchdog.model.timefmt import Duration

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")      # DESIGN: upper-case names, never a value
# Keys someone might paste a secret under. They are unknown keys anyway; the message says why.
_SECRET_KEYS = frozenset({"webhook_url", "token", "password", "api_key", "secret", "smtp_password"})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return Duration(value)


# A duration written as text ("30s", "5m", "6h"), parsed once at load into a Duration (a timedelta
# that keeps its text): consumers do arithmetic on it, the recorded config keeps the text.
DurationText = Annotated[Duration, PlainValidator(_duration), PlainSerializer(str, return_type=str)]


MAX_BODY_DEFAULT = "20MB"       # DESIGN: answers are read with a size cap (decompressed)
MAX_BODY_CEILING = 10**9        # a cap above 1 GB would be no cap on a 2-core, shared machine


def _check_size(value: str) -> str:
    """``max_body``: a size such as ``"20MB"``; answers larger than it are refused."""
    size = parse_size(value)
    if not 1000 <= size <= MAX_BODY_CEILING:
        raise PydanticCustomError("size", "must be between 1kB and 1GB")
    return value


def _check_env_name(value: str | None) -> str | None:
    """``*_env`` names an environment variable. Never echo the value: a person who pasted the
    secret itself here must not find it in an error message or a log."""
    if value is not None and not _ENV_NAME.match(value):
        raise PydanticCustomError(
            "env_name", "must name an environment variable (upper-case letters, digits and _, "
                        "starting with a letter, e.g. SLACK_WEBHOOK_URL), not hold the secret itself")
    return value


class StoreConfig(_Strict):
    path: str = "events.db"
    # A PostgreSQL log shared by replicas instead of the file: "postgresql://watchdog@db.internal/
    # watchdog". The password is never written here: libpq reads PGPASSWORD or a passfile
    # (PGPASSFILE, e.g. a systemd credential), so it stays out of the config and its events.
    url: str | None = None
    # Replicas sharing that log (README "Running two replicas"): one leads by a lease renewed on
    # the database's clock every lease_ttl/3; a replica stopped, paused or cut off for lease_ttl
    # is replaced by a follower. `replica` names this one in the lease, /readyz and the log
    # (default: the host name); the process id is added, so a restart is a new holder.
    replica: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    lease_ttl: DurationText = Duration("10s")

    @field_validator("lease_ttl")
    @classmethod
    def _lease_bounds(cls, value: Duration) -> Duration:
        if not timedelta(seconds=2) <= value <= timedelta(minutes=10):
            raise ValueError("must be between 2s and 10m: the longest a dead leader stays silent")
        return value

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise ValueError("must be a postgresql:// URL naming a database, e.g. "
                             "postgresql://watchdog@db.internal:5432/watchdog")
        if parts.password is not None:
            raise ValueError("must not hold a password: give it in PGPASSWORD or a passfile "
                             "(PGPASSFILE, e.g. a systemd credential)")
        return value

    @property
    def target(self) -> str:
        """What the store opens: the PostgreSQL URL when set, else the file."""
        return self.url or self.path


class RulesConfig(_Strict):
    paths: list[str] = Field(default_factory=lambda: ["rules"])


class NyFedConfig(_Strict):
    base_url: str = "https://markets.newyorkfed.org"
    poll_every: DurationText | None = None
    timeout: DurationText = Duration("30s")
    rates: list[str] = Field(default_factory=lambda: ["sofr", "tgcr", "bgcr", "effr", "obfr"])
    lookback_days: int = Field(default=10, ge=1, le=3650)
    operations: bool = False          # repo / reverse repo results: SRF and ON RRP take-up
    retries: int = Field(default=3, ge=0, le=10)
    max_body: str = MAX_BODY_DEFAULT  # the largest answer read (after decompression)

    _s1 = field_validator("max_body")(_check_size)


class FredConfig(_Strict):
    base_url: str = "https://api.stlouisfed.org"
    csv_base_url: str = "https://fred.stlouisfed.org"
    api_key_env: str = "FRED_API_KEY"
    poll_every: DurationText | None = None
    timeout: DurationText = Duration("30s")
    # canonical series -> FRED series id
    series: dict[str, str] = Field(default_factory=lambda: {"iorb": "IORB"})
    lookback_days: int = Field(default=10, ge=1, le=36500)
    # Revised series (M2, GDP) are taken as first prints (ALFRED), so history has no look-ahead.
    first_release: list[str] = Field(default_factory=lambda: ["m2", "gdp"])
    requests_per_minute: int = Field(default=120, ge=1, le=120)   # FRED's published limit
    retries: int = Field(default=3, ge=0, le=10)
    max_body: str = MAX_BODY_DEFAULT

    _s1 = field_validator("max_body")(_check_size)
    _e1 = field_validator("api_key_env")(_check_env_name)


class FiscalDataConfig(_Strict):
    base_url: str = "https://api.fiscaldata.treasury.gov"
    poll_every: DurationText | None = None
    timeout: DurationText = Duration("30s")
    lookback_days: int = Field(default=10, ge=1, le=3650)
    page_size: int = Field(default=1000, ge=1, le=10000)
    retries: int = Field(default=3, ge=0, le=10)
    max_body: str = MAX_BODY_DEFAULT

    _s1 = field_validator("max_body")(_check_size)


class SpeechesConfig(_Strict):
    feeds: list[str] = Field(default_factory=list)     # RSS 2.0 or RSS 1.0/RDF feeds
    pages: list[str] = Field(default_factory=list)     # index pages of Reserve Bank speeches
    # Reserve Bank speeches, each its own source (off unless true): the bank's speech index
    # pages, the speeches they link read with the bank's page layout, kept when the speaker is
    # one of `*_speakers` (surnames or full names, as keyword rules' `speakers`; [] keeps all).
    new_york: bool = False             # source "speeches-new-york"
    new_york_pages: list[str] = Field(
        default_factory=lambda: ["https://www.newyorkfed.org/newsevents/speeches/index"])
    new_york_speakers: list[str] = Field(default_factory=lambda: ["Williams", "Perli"])
    dallas: bool = False               # source "speeches-dallas"
    dallas_pages: list[str] = Field(
        default_factory=lambda: ["https://www.dallasfed.org/news/speeches/logan"])
    dallas_speakers: list[str] = Field(default_factory=list)
    poll_every: DurationText | None = None
    timeout: DurationText = Duration("30s")
    max_items: int = Field(default=30, ge=1, le=500)   # newest items fetched per feed/page
    retries: int = Field(default=3, ge=0, le=10)
    max_body: str = MAX_BODY_DEFAULT   # per feed, index page or speech page

    _s1 = field_validator("max_body")(_check_size)

    @model_validator(mode="after")
    def _banks_have_pages(self) -> "SpeechesConfig":
        # A bank switched on with no index page would poll nothing and look healthy.
        for bank in ("new_york", "dallas"):
            if getattr(self, bank) and not getattr(self, f"{bank}_pages"):
                raise ValueError(f"{bank} = true needs {bank}_pages (its speech index pages)")
        return self


class OfrConfig(_Strict):
    base_url: str = "https://www.financialresearch.gov"
    poll_every: DurationText | None = None
    timeout: DurationText = Duration("30s")
    # The whole history comes with every answer: only rows dated this many days back are
    # recorded (a revision within them is recorded as such; `backfill` takes older ones).
    lookback_days: int = Field(default=30, ge=1, le=36500)
    retries: int = Field(default=3, ge=0, le=10)
    max_body: str = MAX_BODY_DEFAULT

    _s1 = field_validator("max_body")(_check_size)


class SourcesConfig(_Strict):
    nyfed: NyFedConfig | None = None
    fred: FredConfig | None = None
    fiscaldata: FiscalDataConfig | None = None
    speeches: SpeechesConfig | None = None
    ofr: OfrConfig | None = None


# ---- receivers: one model per ``type`` (sent by watchdog.notify.<type>) ----

class _Receiver(_Strict):
    """What every ``[receivers.NAME]`` model shares."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        # config-loaded events recorded before receivers were typed hold every receiver's
        # fields, unset ones as null (and `to` as []); audit and outbox read them back. TOML has
        # no null, so a config file is never changed by this.
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items()
                if value is not None and not (key == "to" and value == [] and "to" not in cls.model_fields)}

    @property
    def secret_envs(self) -> tuple[str, ...]:
        """The variables (or systemd credentials) this receiver reads its secrets from."""
        return ()


class SlackReceiver(_Receiver):
    """``type = "slack"``: an incoming webhook (``webhook_url_env``), or a bot token
    (``token_env`` + ``channel``, its ID; ``api_base_url`` for another Slack API address)."""
    type: Literal["slack"] = "slack"
    webhook_url_env: str | None = None
    token_env: str | None = None
    channel: str | None = None
    api_base_url: str | None = None

    _e1 = field_validator("webhook_url_env", "token_env")(_check_env_name)

    @model_validator(mode="after")
    def _one_mode(self) -> "SlackReceiver":
        if self.webhook_url_env and self.token_env:
            raise ValueError("set webhook_url_env or token_env + channel, not both")
        if not (self.webhook_url_env or self.token_env):
            raise ValueError("a slack receiver needs webhook_url_env, or token_env + channel")
        if self.token_env and not self.channel:
            raise ValueError("token_env needs a channel (its ID, e.g. C0123456789)")
        return self

    @property
    def mode(self) -> Literal["webhook", "bot"]:
        return "webhook" if self.webhook_url_env else "bot"

    @property
    def secret_envs(self) -> tuple[str, ...]:
        return tuple(name for name in (self.webhook_url_env, self.token_env) if name)


class EmailReceiver(_Receiver):
    """``type = "email"``: one message per notification to ``to`` through an SMTP server;
    ``smtp_port`` defaults by ``tls`` (starttls 587, tls 465, none 25)."""
    type: Literal["email"] = "email"
    smtp_host: str
    smtp_port: int | None = None
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_: str = Field(alias="from")
    to: list[str]

    _e1 = field_validator("password_env")(_check_env_name)

    @field_validator("tls", mode="before")
    @classmethod
    def _tls(cls, value: Any) -> Any:
        if value not in {"starttls", "tls", "none"}:
            raise ValueError(f"unknown tls mode {value!r} (starttls, tls or none)")
        return value

    @field_validator("smtp_host", "from_")
    @classmethod
    def _given(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("to")
    @classmethod
    def _addressed(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one address")
        return value

    @model_validator(mode="after")
    def _password_named(self) -> "EmailReceiver":
        if self.username and not self.password_env:
            raise ValueError("username needs password_env (the variable holding the SMTP password)")
        return self

    @property
    def secret_envs(self) -> tuple[str, ...]:
        return (self.password_env,) if self.password_env else ()


class ConsoleReceiver(_Receiver):
    """``type = "console"``: one line per notification on standard output; no settings."""
    type: Literal["console"] = "console"


Receiver = Annotated[Union[SlackReceiver, EmailReceiver, ConsoleReceiver], Field(discriminator="type")]
# type -> model: for the messages about a receiver's type and keys (parse_config)
_RECEIVER_TYPES: dict[str, type[_Receiver]] = {
    model.model_fields["type"].default: model for model in get_args(get_args(Receiver)[0])}


# ---- routing: routes, inhibition, mute intervals (decided by watchdog.alerting.routing) ----

SEVERITIES = ("info", "warning", "critical")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MUTE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class _Routing(_Strict):
    """Route, inhibit and mute tables were plain dicts before they were typed: item access
    (``route["match"]``, ``route["continue"]``) keeps working, by TOML key."""

    def __getitem__(self, key: str) -> Any:
        for name, info in type(self).model_fields.items():
            if key in (name, info.alias):
                return getattr(self, name)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("routing_field", "{msg}", {"msg": message})


def _check_label_name(name: str) -> None:
    if not _LABEL_NAME.match(name):
        raise _problem(f"label name {name!r} must be letters, digits and underscores")


def check_matchers(value: dict[str, str], regex: bool = False) -> dict[str, str]:
    """Label matchers: ``rule`` (the rule id), ``severity`` or any rule label. Exact values, or
    RE2 regular expressions matched against the whole value (``match_re``; watchdog.model.patterns:
    linear time, so no pattern can stall routing)."""
    for name, wanted in value.items():
        _check_label_name(name)
        if regex:
            try:
                compile_pattern(wanted)
            except PatternError as exc:
                raise _problem(f"{name}: bad regular expression: {exc}") from None
        elif name == "severity" and wanted not in SEVERITIES:
            raise _problem(f"unknown severity {wanted!r} ({', '.join(SEVERITIES)})")
    return value


def _exact(value: dict[str, str]) -> dict[str, str]:
    return check_matchers(value, regex=False)


def _regex(value: dict[str, str]) -> dict[str, str]:
    return check_matchers(value, regex=True)


def _positive_duration(value: Duration) -> Duration:
    if value.total_seconds() <= 0:
        raise _problem("must be longer than zero")
    return value


def _label_names(value: list[str]) -> list[str]:
    for name in value:
        if name != "..." and not _LABEL_NAME.match(name):
            raise _problem(f"label name {name!r} must be letters, digits and underscores "
                           "(or '...' for all labels)")
    if "..." in value and len(value) > 1:
        raise _problem("'...' (every label) stands alone")
    return value


class Route(_Routing):
    """One ``[[routes]]`` table, tried in order; the first match stops unless ``continue``.

    ``match`` compares labels exactly (``rule`` is the rule id, ``severity``, any rule label),
    ``match_re`` with a regular expression on the whole value; a route with neither matches
    every alert. ``group_by = ["..."]`` groups by every label (one group per alert)."""
    name: str | None = None
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    receivers: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")
    group_by: list[str] = Field(default_factory=lambda: ["rule"])
    group_wait: DurationText = Duration("30s")
    group_interval: DurationText = Duration("5m")
    repeat_interval: DurationText = Duration("4h")
    send_resolved: bool | list[str] = True   # or the receivers of this route that get resolves
    fallback: str | None = None              # when a receiver fails permanently
    mute: list[str] | None = None            # [mute.NAME] intervals for this route; None = all
    # an alert that fired and resolved before its group could flush (inside one catch-up batch,
    # or within group_wait): "tell" sends it as a short episode, "suppress" records it as
    # notification-suppressed (reason resolved-before-flush). A one-day spike must not vanish.
    short_episodes: Literal["tell", "suppress"] = "tell"

    _m1 = field_validator("match")(_exact)
    _m2 = field_validator("match_re")(_regex)
    _d1 = field_validator("group_interval", "repeat_interval")(_positive_duration)
    _g1 = field_validator("group_by")(_label_names)

    @field_validator("receivers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise _problem("a receiver is listed twice")
        return value

    @field_validator("send_resolved", mode="before")
    @classmethod
    def _resolved(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union.
        if isinstance(value, bool) or (isinstance(value, list)
                                       and all(isinstance(item, str) for item in value)):
            return value
        raise _problem("must be true, false or a list of this route's receivers")


class InhibitRule(_Routing):
    """One ``[[inhibit]]`` table: while an alert matching ``source`` fires, alerts matching
    ``target`` whose ``equal`` labels have the same values (absent on both counts as equal) are
    not notified. An alert never inhibits itself."""
    name: str | None = None
    source: dict[str, str] = Field(default_factory=dict)
    source_re: dict[str, str] = Field(default_factory=dict)
    target: dict[str, str] = Field(default_factory=dict)
    target_re: dict[str, str] = Field(default_factory=dict)
    equal: list[str] = Field(default_factory=list)

    _m1 = field_validator("source", "target")(_exact)
    _m2 = field_validator("source_re", "target_re")(_regex)

    @field_validator("equal")
    @classmethod
    def _equal(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_label_name(name)
        return value

    @model_validator(mode="after")
    def _both_sides(self) -> "InhibitRule":
        # An empty side would match every alert: a typo must not silence everything.
        if not (self.source or self.source_re):
            raise _problem("needs source (or source_re) matchers")
        if not (self.target or self.target_re):
            raise _problem("needs target (or target_re) matchers")
        return self


class TimeRange(_Routing):
    """``{start = "17:00", end = "08:00"}``: local wall-clock times, start inclusive, end
    exclusive; an end at or before the start wraps past midnight (17:00-24:00 and
    00:00-08:00 of each matching day); ``end = "24:00"`` is the end of the day."""
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str, info) -> str:
        if not _CLOCK.match(value) or (info.field_name == "start" and value == "24:00"):
            raise _problem(f"bad time {value!r}: use HH:MM, 00:00 to 23:59 (end may be 24:00)")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> "TimeRange":
        if self.start == self.end:
            raise _problem("start and end are equal: the range is empty (omit times for whole days)")
        return self


class MuteInterval(_Routing):
    """One ``[mute.NAME]`` table: notifications are muted at the instants that satisfy every
    condition given (weekday, time of day, calendar closed), in ``timezone``. ``match`` /
    ``match_re`` narrow the alerts it applies to; a route's ``mute`` list picks intervals."""
    timezone: str = "America/New_York"
    weekdays: list[str] = Field(default_factory=list)   # "saturday", or a range "monday:friday"
    times: list[TimeRange] = Field(default_factory=list)
    calendar: Literal["sifma", "fed", "daily"] | None = None   # mute days this calendar is closed
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)

    _m1 = field_validator("match")(_exact)
    _m2 = field_validator("match_re")(_regex)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _problem(f"unknown IANA time zone {value!r} (e.g. America/New_York)") from None
        return value

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        for item in value:
            parts = item.split(":")
            if len(parts) > 2 or any(part not in WEEKDAYS for part in parts):
                raise _problem(f"bad weekday {item!r}: use lowercase English names "
                               "(monday … sunday) or a range such as 'monday:friday'")
        return value

    @model_validator(mode="after")
    def _some_condition(self) -> "MuteInterval":
        if not (self.weekdays or self.times or self.calendar):
            raise _problem("needs weekdays, times or calendar (an interval without them would "
                           "mute every notification)")
        return self

    def weekday_numbers(self) -> frozenset[int]:
        """The weekdays named (0 = Monday), ranges expanded; empty when none are named."""
        days: set[int] = set()
        for item in self.weekdays:
            first, _, last = item.partition(":")
            a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        return frozenset(days)


class DaemonConfig(_Strict):
    catchup_horizon: DurationText = Duration("3d")
    # The deadman timer (not a rule: the engine cannot notice that it is not being run): no
    # completed evaluation for this long -> an error log, not ready, a deadman-tripped event.
    deadman_after: DurationText = Duration("30m")
    # Evaluate (deadlines, silences and outbox timers included) at least this often even when
    # no source has anything new: the deadman measures a heartbeat, not market activity.
    evaluate_every: DurationText = Duration("1m")
    # Isolation: one poll of one source (every request, retry and body included) ends within
    # poll_deadline or is a source-failed; one send to one receiver within send_deadline or its
    # outcome is unknown (reconciled or resent later). Neither holds another source or receiver.
    poll_deadline: DurationText = Duration("5m")
    send_deadline: DurationText = Duration("2m")


class HttpConfig(_Strict):
    enabled: bool = True
    listen: str = "127.0.0.1:9464"


class Config(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    inhibit: list[InhibitRule] = Field(default_factory=list)
    mute: dict[str, MuteInterval] = Field(default_factory=dict)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("mute")
    @classmethod
    def _mute_names(cls, value: dict[str, MuteInterval]) -> dict[str, MuteInterval]:
        for name in value:
            if not _MUTE_NAME.match(name):
                raise PydanticCustomError(
                    "mute_name", "mute interval name {name!r} must be letters, digits, _ or -",
                    {"name": name})
        return value

    @model_validator(mode="after")
    def _references(self) -> "Config":
        """Every receiver and mute interval a route names must exist. Reported together, each at
        its own place (``parse_config`` turns the ``problems`` into FILE:LINE lines)."""
        problems = _reference_problems(self)
        if problems:
            raise PydanticCustomError(
                "cross_reference", "{summary}",
                {"summary": "; ".join(f"{tomlpos.dotted(loc)}: {msg}" for loc, msg in problems),
                 "problems": tuple(problems)})
        return self


def _reference_problems(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    receivers = sorted(config.receivers)
    known = ", ".join(receivers) if receivers else "none: add a [receivers.NAME] table"
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, route in enumerate(config.routes):
        for j, name in enumerate(route.receivers):
            if name not in config.receivers:
                problems.append((("routes", i, "receivers", j),
                                 f"unknown receiver {name!r}; configured receivers: {known}"))
        if route.fallback is not None:
            if route.fallback not in config.receivers:
                problems.append((("routes", i, "fallback"),
                                 f"unknown receiver {route.fallback!r}; configured receivers: {known}"))
            elif route.fallback in route.receivers:
                problems.append((("routes", i, "fallback"),
                                 f"{route.fallback!r} is already a receiver of this route"))
        if isinstance(route.send_resolved, list):
            for j, name in enumerate(route.send_resolved):
                if name not in route.receivers:
                    problems.append((("routes", i, "send_resolved", j),
                                     f"{name!r} is not one of this route's receivers "
                                     f"({', '.join(route.receivers)})"))
        for j, name in enumerate(route.mute or ()):
            if name not in config.mute:
                names = ", ".join(sorted(config.mute)) or "none: add a [mute.NAME] table"
                problems.append((("routes", i, "mute", j),
                                 f"unknown mute interval {name!r}; configured: {names}"))
    return problems


# ---- loading ----

def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a daemon config file. Raises ``ConfigError`` with one
    ``FILE:LINE: field: message`` line per problem.

    A relative ``[store] path`` or ``[rules] paths`` entry (the defaults ``events.db`` and
    ``rules`` included) is relative to the file's folder, so a config runs from any working
    directory; absolute paths are kept as written (``relative_to``)."""
    try:
        text = tomlpos.read_text(path)
    except tomlpos.TomlProblem as exc:
        raise ConfigError(str(exc)) from None
    return relative_to(parse_config(text, str(path)), os.path.dirname(os.fspath(path)))


def relative_to(config: Config, folder: str) -> Config:
    """``config`` with its relative store and rules paths joined to ``folder`` (the config
    file's folder, as the file was named: a relative folder stays relative to the working
    directory it was named from). ``parse_config`` (text, no file) leaves paths as written."""
    if not folder:
        return config

    def joined(path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(folder, path)

    return config.model_copy(update={
        "store": config.store.model_copy(update={"path": joined(config.store.path)}),
        "rules": config.rules.model_copy(update={"paths": [joined(p) for p in config.rules.paths]}),
    })


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Validate config text; ``filename`` is only used in messages."""
    try:
        data = tomlpos.loads(text, filename)
    except tomlpos.TomlProblem as exc:
        raise ConfigError(str(exc)) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = tomlpos.positions(text)
        problems = []
        for err in exc.errors(include_url=False):
            located = (err["ctx"]["problems"] if err["type"] == "cross_reference"
                       else [(_path(err), _message(err))])
            for loc, message in located:
                line = where.line_of(loc)
                problems.append((line, f"{filename}:{line}: {tomlpos.dotted(loc)}: {message}"))
        problems.sort(key=lambda item: item[0])
        raise ConfigError("\n".join(text for _, text in problems)) from None


def _path(err: Mapping[str, Any]) -> tuple[str | int, ...]:
    """Where a pydantic error is, as the config's author writes it."""
    loc = tuple(err["loc"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):   # a receiver's type
        return (*loc, "type")
    if loc[:1] == ("receivers",) and len(loc) > 2 and loc[2] in _RECEIVER_TYPES:
        return loc[:2] + loc[3:]        # pydantic names the model in the path: receivers.desk.slack.channel
    return loc


def _message(err: Mapping[str, Any]) -> str:
    """A pydantic error worded for the config's author. Never includes the input value."""
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        if loc and loc[-1] in _SECRET_KEYS:
            return (f"secrets do not belong in the config file: name an environment variable "
                    f"with {loc[-1]}_env instead")
        known = _known_keys(loc[:-1])
        hint = f"; known keys: {', '.join(known)}" if known else ""
        if len(loc) == 4 and loc[0] == "receivers":          # receivers.NAME.<type>.KEY
            owners = [kind for kind, model in _RECEIVER_TYPES.items()
                      if any(loc[3] in (name, info.alias) for name, info in model.model_fields.items())]
            if owners:
                return f"a key of {' and '.join(owners)} receivers, not of {loc[2]} receivers{hint}"
        return "unknown key" + hint
    if err["type"] == "union_tag_invalid":
        *others, last = _RECEIVER_TYPES
        return f"unknown receiver type {err['ctx']['tag']!r} ({', '.join(others)} or {last})"
    if err["type"] in ("missing", "union_tag_not_found"):
        return "required key is missing"
    return err["msg"].removeprefix("Value error, ")


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts, for an 'unknown key' hint."""
    target: Any = Config
    for part in loc:
        target = _unwrap_optional(target)
        if isinstance(target, type) and issubclass(target, BaseModel):
            fields = {info.alias or name: info for name, info in target.model_fields.items()}
            if part not in fields:
                return []
            target = fields[part].annotation
        elif get_origin(target) in (dict, list):
            target = get_args(target)[-1]  # a dict's value type, a list's item type
        elif get_origin(target) is Annotated and part in _RECEIVER_TYPES:
            target = _RECEIVER_TYPES[part]  # a receiver's model, named by its type
        else:
            return []
    target = _unwrap_optional(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return sorted(info.alias or name for name, info in target.model_fields.items())
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
