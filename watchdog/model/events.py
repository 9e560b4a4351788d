"""Events: frozen pydantic payload models with stable kebab-case wire names, and the envelope.

Every fact the daemon learns and every decision it takes is one row of the log. A producer builds
a ``NewEvent`` (type, idempotency key, payload, and ``published_at`` for facts about the world);
the store stamps ``seq``, ``recorded_at`` and the chained ``hash`` and hands back ``StoredEvent``.

Payloads are stored as canonical JSON (sorted keys, ``,``/``:`` separators, decimals as normalised
strings, UTF-8) so the hash of a fact never depends on who serialised it. No payload is larger
than ``MAX_PAYLOAD_BYTES`` (1 MB) of it: a ``NewEvent`` over it is refused (``PayloadTooLarge``)
before anything is hashed or written, so a hostile answer cannot become a permanent huge row.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from watchdog.model.config import check_matchers
from watchdog.model.numbers import norm, to_decimal
from watchdog.model.timefmt import parse_utc

ZERO_HASH = "0" * 64
MAX_PAYLOAD_BYTES = 1_000_000   # DESIGN: no event payload exceeds 1 MB (of canonical JSON)

# Wire names. Renaming one breaks every existing log: add new ones, never rename.
OBSERVATION_RECORDED = "observation-recorded"
OBSERVATION_REVISED = "observation-revised"
SPEECH_RECORDED = "speech-recorded"
SOURCE_FAILED = "source-failed"
RULES_LOADED = "rules-loaded"
CONFIG_LOADED = "config-loaded"
RELOAD_REFUSED = "reload-refused"
ALERT_PENDING = "alert-pending"
ALERT_FIRING = "alert-firing"
ALERT_RESOLVED = "alert-resolved"
ALERT_FLAGGED = "alert-flagged"
NOTIFICATION_REQUESTED = "notification-requested"
NOTIFICATION_ATTEMPTED = "notification-attempted"
NOTIFICATION_SENT = "notification-sent"
NOTIFICATION_FAILED = "notification-failed"
NOTIFICATION_UNKNOWN = "notification-unknown"
NOTIFICATION_SUPPRESSED = "notification-suppressed"
SILENCE_ADDED = "silence-added"
SILENCE_EXPIRED = "silence-expired"
DAEMON_STARTED = "daemon-started"
DAEMON_STOPPED = "daemon-stopped"
# The deadman timer: no evaluation completed for [daemon].deadman_after, and its recovery.
DEADMAN_TRIPPED = "deadman-tripped"
DEADMAN_CLEARED = "deadman-cleared"

FACT_TYPES = frozenset({OBSERVATION_RECORDED, OBSERVATION_REVISED, SPEECH_RECORDED})
ALERT_TYPES = frozenset({ALERT_PENDING, ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})
EVENT_TYPES = frozenset(FACT_TYPES | ALERT_TYPES | {
    SOURCE_FAILED, RULES_LOADED, CONFIG_LOADED, RELOAD_REFUSED,
    NOTIFICATION_REQUESTED, NOTIFICATION_ATTEMPTED, NOTIFICATION_SENT, NOTIFICATION_FAILED,
    NOTIFICATION_UNKNOWN, NOTIFICATION_SUPPRESSED, SILENCE_ADDED, SILENCE_EXPIRED,
    DAEMON_STARTED, DAEMON_STOPPED, DEADMAN_TRIPPED, DEADMAN_CLEARED,
})


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return norm(obj)
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="python", exclude_none=True)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def canonical_json(payload: Any) -> str:
    """Canonical text of a payload: the bytes that get hashed.

    The definition is the stdlib call below (sorted keys, ``,``/``:``, UTF-8 unescaped). orjson
    produces the same bytes ten times faster for what payloads hold (str, int, bool, None, dicts,
    lists, Decimal via ``_default``) — a property test pins the equality; anything orjson refuses
    (e.g. an int beyond 64 bits) takes the stdlib path.
    """
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=_default).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return stdlib_canonical_json(payload)


def stdlib_canonical_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default, allow_nan=False)


def chain_hash(prev_hash: str, seq: int, type_: str, key: str, published_at: str,
               recorded_at: str, payload_text: str) -> str:
    """DESIGN's row hash: sha256 of the fields joined by newlines, previous hash first."""
    joined = f"{prev_hash}\n{seq}\n{type_}\n{key}\n{published_at}\n{recorded_at}\n{payload_text}"
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PayloadTooLarge(ValueError):
    """A payload over ``MAX_PAYLOAD_BYTES`` of canonical JSON. A producer turns it into what it
    records instead (a source: a ``source-failed`` naming the URL)."""


def payload_size(payload: Any) -> int:
    """Bytes of the payload's canonical JSON (key order does not change the length, so orjson
    measures it without sorting); 0 when it cannot be serialised (the store then says why)."""
    try:
        return len(orjson.dumps(payload, default=_default))
    except (orjson.JSONEncodeError, TypeError):
        try:
            return len(stdlib_canonical_json(payload).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError):
            return 0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The payload as stored: every field (a model with optional fields omits the unset)."""
        return self.model_dump()


_UTC_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class _NewEventFields(NamedTuple):
    type: str
    key: str
    payload: dict[str, Any]
    published_at: str | None = None
    text: str | None = None


class NewEvent(_NewEventFields):
    """What a producer hands to the store: ``NewEvent(type, key, payload, published_at=None)``.
    ``published_at=None`` means 'not a fact about the world': the store sets it to
    ``recorded_at``. Validated on construction (cheaply: the payload itself was validated by its
    payload model). Immutable (a tuple: a producer builds a hundred thousand a second, and a
    frozen dataclass's ``__init__`` cost twice the validation).

    ``text`` is the payload's canonical JSON, taken here once: the size check needs it and the
    store hashes and writes it. So a payload is not to be changed after its event is built
    (build a new event instead); nothing in the project does."""
    __slots__ = ()

    def __new__(cls, type: str, key: str, payload: dict[str, Any], published_at: str | None = None):
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        if not isinstance(key, str) or not key:
            raise ValueError("an event needs a non-empty string key")
        if not isinstance(payload, dict):
            raise ValueError(f"payload of {key} is not an object")
        if published_at is not None and not _UTC_TEXT.match(published_at):
            raise ValueError(f"published_at of {key} is not fixed-width UTC: {published_at!r}")
        text = None
        try:
            raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=_default)
        except (orjson.JSONEncodeError, TypeError):
            size = payload_size(payload)       # the stdlib path; the store says what fails
        else:
            size = len(raw)
            text = raw.decode("utf-8")          # = canonical_json(payload)
        if size > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"{type} payload of {size:,} bytes is over the {MAX_PAYLOAD_BYTES:,}-byte "
                f"limit on one event; not recorded ({key[:200]})")
        return tuple.__new__(cls, (type, key, payload, published_at, text))

    def __repr__(self) -> str:
        return (f"NewEvent(type={self.type!r}, key={self.key!r}, payload={self.payload!r}, "
                f"published_at={self.published_at!r})")

    def model_dump(self) -> dict[str, Any]:
        return {"type": self.type, "key": self.key, "payload": self.payload, "published_at": self.published_at}


class StoredEvent(NamedTuple):
    """One committed row of the log. Immutable; a NamedTuple, not a pydantic model nor a frozen
    dataclass: rows are built by the store from already-validated events, a million at a time in
    replay and a hundred thousand a second on append, and a frozen dataclass's ``__init__``
    (one ``object.__setattr__`` per field) cost ten times a tuple's."""
    seq: int
    type: str
    key: str
    published_at: str
    recorded_at: str
    payload: dict[str, Any]
    hash: str

    @property
    def is_fact(self) -> bool:
        return self.type in FACT_TYPES

    def model_dump(self) -> dict[str, Any]:
        return self._asdict()


# ---- payload models: validated when written, read back as plain dicts on hot paths ----

class Observation(_Frozen):
    """``observation-recorded``: one value of one canonical series for one observation date."""
    series: str
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    value: str
    unit: Literal["%", "USD bn", "ratio", "index"]
    source: str
    attributes: dict[str, str] = Field(default_factory=dict)
    provenance: dict[str, str] = Field(default_factory=dict)

    @field_validator("value")
    @classmethod
    def _normalised_value(cls, value: str) -> str:
        return norm(to_decimal(value))   # "4.220" and "4.22" are the same fact

    @field_validator("attributes")
    @classmethod
    def _normalised_attributes(cls, attributes: dict[str, str]) -> dict[str, str]:
        return {name: norm(to_decimal(text)) for name, text in attributes.items()}

    def fact_identity(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """What makes two observations the same fact (provenance does not)."""
        return (self.value, self.unit, tuple(sorted(self.attributes.items())))


class ObservationRevision(Observation):
    """``observation-revised``: a changed value for a (series, date) already in the log."""
    revision: int = Field(ge=1)
    previous_value: str
    previous_attributes: dict[str, str] = Field(default_factory=dict)


class Speech(_Frozen):
    """``speech-recorded``: one Fed speech with its full text, recorded once (the first text seen
    under its key is kept; a later edit of the page is not recorded again).

    ``content_hash`` is the sha256 of the text, so anyone can check that the text the keyword
    rules read is the text that was recorded."""
    speaker: str
    institution: str
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    title: str
    url: str = ""
    text: str
    content_hash: str
    source: str
    position: str = ""
    provenance: dict[str, str] = Field(default_factory=dict)


def speech_key(speech: Speech) -> str:
    """One speech, one key: its URL when it has one, else institution, date and text hash."""
    if speech.url:
        # the 2016 feeds say http://, today's https://: one speech, one key
        url = "https://" + speech.url[len("http://"):] if speech.url.startswith("http://") else speech.url
        return f"speech/{url}"
    return f"speech/{speech.institution}/{speech.date}/{speech.content_hash[:16]}"


def new_speech(speech: Speech, published_at: str) -> NewEvent:
    return NewEvent(type=SPEECH_RECORDED, key=speech_key(speech), payload=speech.model_dump(),
                    published_at=published_at)


class SourceFailure(_Frozen):
    """``source-failed``: what went wrong, precisely, with secrets already redacted."""
    source: str
    reason: str
    url: str = ""
    bad_rows: list[str] = Field(default_factory=list)
    recorded_rows: int = 0
    attempt: int = 1


class InputValue(_Frozen):
    date: str
    value: str
    published_at: str


class AlertTransition(_Frozen):
    """``alert-pending|firing|resolved|flagged``: one state change of one rule."""
    rule: str
    rule_hash: str
    state: Literal["pending", "firing", "resolved", "flagged"]
    date: str
    value: str | None
    severity: str
    threshold: str | None = None
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    evaluated_at: str
    reason: str
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    cause_seq: int = 0
    deadline: str = ""               # deadline-driven transitions (staleness): the instant
    link: str = ""                   # the source: a speech URL, the data source's page
    sentences: list[str] = Field(default_factory=list)   # keyword flags: what matched


# ---- the daemon's own records ----

class RuleText(_Frozen):
    id: str
    hash: str
    text: str                # canonical TOML: ruleset_from_canonical rebuilds the rule from it


class RulesLoaded(_Frozen):
    """``rules-loaded``: the rule set in force from here on, in full (audit re-derives with it)."""
    hash: str
    paths: list[str] = Field(default_factory=list)
    rules: list[RuleText] = Field(default_factory=list)


class ConfigLoaded(_Frozen):
    """``config-loaded``: the validated config (it names env variables, never holds secrets)."""
    hash: str
    config: dict[str, Any]


class ReloadRefused(_Frozen):
    """``reload-refused``: a SIGHUP whose files were invalid; what stays in force."""
    reason: str
    problems: list[str] = Field(default_factory=list)
    kept_rules_hash: str
    kept_config_hash: str


class DaemonStarted(_Frozen):
    """``daemon-started``: one run's start, the head it found, and how it runs."""
    version: str
    pid: int
    head_seq: int
    head_hash: str
    mode: Literal["serve", "one-shot"] = "serve"   # audit re-derives flush timing with this
    accepted_broken_chain: str | None = None       # run --accept-broken-chain: what was broken

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class DaemonStopped(_Frozen):
    """``daemon-stopped``: a clean stop (a crash leaves none)."""
    reason: str
    head_seq: int
    previous_hash: str


class DeadmanTripped(_Frozen):
    """``deadman-tripped``: no evaluation completed for ``deadman_after``."""
    last_evaluation: str
    deadman_after: str
    detected_at: str


class DeadmanCleared(_Frozen):
    """``deadman-cleared``: evaluation completed again."""
    evaluated_at: str


# ---- notifications: a flush requested, then each delivery step ----

class FlushRequested(_Frozen):
    """``notification-requested`` payload of a group flush; ``notification-sent``/``-failed``
    for it carry the same ``group`` and ``flush`` (``GroupState.apply`` reads those two)."""
    group: str
    receiver: str
    route: str
    flush: int = Field(ge=1)
    requested_at: str
    reason: str
    firing: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    flagged: list[str] = Field(default_factory=list)
    episodes: list[str] = Field(default_factory=list)   # short episodes (told as resolved)
    since: list[str] = Field(default_factory=list)      # firing from before the catch-up horizon

    def wire(self) -> dict[str, Any]:
        body = self.model_dump()
        for name in ("episodes", "since"):     # absent when empty: flushes read as they always did
            if not body[name]:
                del body[name]
        return body


class NotificationOutcome(_Frozen):
    """``notification-attempted|sent|failed|unknown``: one step of one delivery. A primary
    delivery's steps carry ``group`` and ``flush`` (the group's state folds them); a fallback's
    name the flush it stands in for (``fallback_for``, ``flush_number``, ``flush_delivery``).
    Fields a step does not have are absent from the wire."""
    delivery: str
    receiver: str
    rules: list[str] = Field(default_factory=list)
    group: str | None = None
    flush: int | None = None
    fallback_for: str | None = None
    flush_number: int | None = None
    flush_delivery: str | None = None
    attempt: int | None = None
    reference: str | None = None          # sent: the receiver's id of the message
    reconciled: bool | None = None        # sent: found already delivered after a crash
    sent_at: str | None = None
    detail: str | None = None             # failed / unknown: what happened
    permanent: bool | None = None         # failed: no retry
    fallback: str | None = None           # failed for good: the receiver tried instead
    not_before: str | None = None         # failed, will retry: not before this instant

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class NotificationSuppressed(_Frozen):
    """``notification-suppressed``: an alert left out of a flush, and why (silence, inhibition,
    mute, catch-up, ...)."""
    group: str
    receiver: str
    route: str
    rule: str
    instance: str
    date: str
    reason: str
    detail: str
    decided_at: str


# ---- silences: an operator's decisions, stored so live, audit and replay agree ----

_SILENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SilenceAdded(_Frozen):
    """``silence-added`` payload. ``matchers`` are exact label values (``rule`` = the rule id,
    ``severity``, rule labels), ``matchers_re`` whole-value regexes; at least one is needed.
    Active from ``starts_at`` (inclusive) to ``ends_at`` (exclusive), fixed-width UTC."""
    id: str
    matchers: dict[str, str] = Field(default_factory=dict)
    matchers_re: dict[str, str] = Field(default_factory=dict)
    starts_at: str
    ends_at: str
    comment: str
    created_by: str

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _SILENCE_ID.match(value):
            raise ValueError("silence id: letters, digits, '.', '_' and '-'")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parse_utc(value)
        return value

    @field_validator("matchers")
    @classmethod
    def _exact(cls, value: dict[str, str]) -> dict[str, str]:
        return check_matchers(value)

    @field_validator("matchers_re")
    @classmethod
    def _regex(cls, value: dict[str, str]) -> dict[str, str]:
        return check_matchers(value, regex=True)

    @field_validator("comment", "created_by")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: a silence says who and why")
        return value

    @model_validator(mode="after")
    def _sane(self) -> SilenceAdded:
        if not (self.matchers or self.matchers_re):
            raise ValueError("a silence needs at least one matcher (it would silence everything)")
        if self.ends_at <= self.starts_at:   # fixed-width UTC: text order is time order
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceExpired(_Frozen):
    """``silence-expired`` payload: the silence ends at ``expired_at`` (if before its end)."""
    id: str
    expired_at: str
    expired_by: str = ""
    comment: str = ""

    @field_validator("expired_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parse_utc(value)
        return value



# ---- one payload model per wire name ----

PAYLOADS: Mapping[str, type[_Frozen]] = MappingProxyType({
    OBSERVATION_RECORDED: Observation,
    OBSERVATION_REVISED: ObservationRevision,
    SPEECH_RECORDED: Speech,
    SOURCE_FAILED: SourceFailure,
    RULES_LOADED: RulesLoaded,
    CONFIG_LOADED: ConfigLoaded,
    RELOAD_REFUSED: ReloadRefused,
    ALERT_PENDING: AlertTransition,
    ALERT_FIRING: AlertTransition,
    ALERT_RESOLVED: AlertTransition,
    ALERT_FLAGGED: AlertTransition,
    NOTIFICATION_REQUESTED: FlushRequested,
    NOTIFICATION_ATTEMPTED: NotificationOutcome,
    NOTIFICATION_SENT: NotificationOutcome,
    NOTIFICATION_FAILED: NotificationOutcome,
    NOTIFICATION_UNKNOWN: NotificationOutcome,
    NOTIFICATION_SUPPRESSED: NotificationSuppressed,
    SILENCE_ADDED: SilenceAdded,
    SILENCE_EXPIRED: SilenceExpired,
    DAEMON_STARTED: DaemonStarted,
    DAEMON_STOPPED: DaemonStopped,
    DEADMAN_TRIPPED: DeadmanTripped,
    DEADMAN_CLEARED: DeadmanCleared,
})


def decode(event: Any) -> Any:
    """An event's payload as its typed model (``PAYLOADS[event.type]``): what readers use
    instead of picking at the dict.

    A log outlives the code that wrote it: a field an earlier version wrote and the model no longer
    has is ignored when read (wire names are never renamed, fields are only added with defaults).
    A payload that still does not fit (an early version's notification without a group) raises
    ``pydantic.ValidationError``; folds that must survive such rows use ``decode_or_none``."""
    model = PAYLOADS[event.type]
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        retired = {e["loc"][0] for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1}
        if not retired or len(retired) != len(errors):
            raise
        return model.model_validate({k: v for k, v in event.payload.items() if k not in retired})


def decode_or_none(event: Any) -> Any:
    """``decode``, or None for a payload no model of this version reads: a fold skips it, as
    the code that wrote it would be the only one to understand it."""
    try:
        return decode(event)
    except ValidationError:
        return None


def typed_event(type_: str, key: str, payload: _Frozen, published_at: str | None = None) -> NewEvent:
    """A ``NewEvent`` whose payload is written by its model (``wire()``): the one way the daemon's
    own records reach the log, so every payload decodes again."""
    if not isinstance(payload, PAYLOADS[type_]):
        raise TypeError(f"{type_} takes a {PAYLOADS[type_].__name__} payload, not {type(payload).__name__}")
    return NewEvent(type=type_, key=key, payload=payload.wire(), published_at=published_at)


class EpisodeNote(_Frozen):
    """A short episode told as one message: when it fired, and at what value."""
    fired_date: str | None = None
    fired_value: str | None = None
    fired_at: str | None = None


class ToldAlert(AlertTransition):
    """What a receiver is told about one alert: its transition's payload, plus, when the outbox
    tells it late, ``since`` (firing from before the catch-up horizon) or ``episode`` (fired and
    resolved before any notification went out). Not a wire payload: the message's model.
    ``description`` is the rule's (what the alert means), filled by whoever builds the message
    from the rule set that made the alert (the outbox from ``rules-loaded``, by rule hash);
    the recorded alert does not carry it."""
    since: str | None = None
    episode: EpisodeNote | None = None
    description: str = ""


ALERT_EVENT_TYPE = {
    "pending": ALERT_PENDING, "firing": ALERT_FIRING,
    "resolved": ALERT_RESOLVED, "flagged": ALERT_FLAGGED,
}


def observation_key(series: str, date: str) -> str:
    return f"obs/{series}/{date}"


def revision_key(series: str, date: str, revision: int) -> str:
    return f"obs/{series}/{date}/rev/{revision}"


def new_observation(obs: Observation, published_at: str) -> NewEvent:
    return NewEvent(type=OBSERVATION_RECORDED, key=observation_key(obs.series, obs.date),
                    payload=obs.model_dump(), published_at=published_at)


def alert_key(t: AlertTransition) -> str:
    """Deterministic, so re-deriving the same transition after a crash appends nothing. A
    deadline-driven transition is keyed by its deadline, which live, audit and replay share."""
    cause = f"t{t.deadline}" if t.deadline else str(t.cause_seq)
    return f"alert/{t.rule}/{t.rule_hash[:16]}/{t.state}/{t.date}/{cause}"


def new_alert(t: AlertTransition) -> NewEvent:
    return NewEvent(type=ALERT_EVENT_TYPE[t.state], key=alert_key(t), payload=t.model_dump())
