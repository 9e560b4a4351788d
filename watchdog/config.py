"""Daemon configuration (TOML), validated strictly at load: unknown keys are errors.

Secrets are never in the file: it names environment variables (``*_env``) and the values are
read from the environment or ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential``) at the edge.
"""
from __future__ import annotations

import os
import re
import tomllib
import types
from typing import Any, Mapping, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from watchdog import tomlpos
from watchdog.errors import ConfigError
from watchdog.timefmt import parse_duration

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Keys someone might paste a secret under. They are unknown keys anyway; the message says why.
_SECRET_KEYS = frozenset({"webhook_url", "token", "password", "api_key", "secret", "smtp_password"})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


def _check_env_name(value: str | None) -> str | None:
    """``*_env`` names an environment variable. Never echo the value: a person who pasted the
    secret itself here must not find it in an error message or a log."""
    if value is not None and not _ENV_NAME.match(value):
        raise PydanticCustomError(
            "env_name", "must name an environment variable (letters, digits, _), "
                        "not hold the secret itself")
    return value


class StoreConfig(_Strict):
    path: str = "events.db"


class RulesConfig(_Strict):
    paths: list[str] = Field(default_factory=lambda: ["rules"])


class NyFedConfig(_Strict):
    base_url: str = "https://markets.newyorkfed.org"
    poll_every: str | None = None
    timeout: str = "30s"
    rates: list[str] = Field(default_factory=lambda: ["sofr", "tgcr", "bgcr", "effr", "obfr"])
    lookback_days: int = Field(default=10, ge=1, le=3650)
    operations: bool = False          # repo / reverse repo results: SRF and ON RRP take-up
    retries: int = Field(default=3, ge=0, le=10)

    _d1 = field_validator("poll_every", "timeout")(_check_duration)


class FredConfig(_Strict):
    base_url: str = "https://api.stlouisfed.org"
    csv_base_url: str = "https://fred.stlouisfed.org"
    api_key_env: str = "FRED_API_KEY"
    poll_every: str | None = None
    timeout: str = "30s"
    # canonical series -> FRED series id
    series: dict[str, str] = Field(default_factory=lambda: {"iorb": "IORB"})
    lookback_days: int = Field(default=10, ge=1, le=36500)
    # Revised series (M2, GDP) are taken as first prints (ALFRED), so history has no look-ahead.
    first_release: list[str] = Field(default_factory=lambda: ["m2", "gdp"])
    requests_per_minute: int = Field(default=120, ge=1, le=120)   # FRED's published limit
    retries: int = Field(default=3, ge=0, le=10)

    _d1 = field_validator("poll_every", "timeout")(_check_duration)
    _e1 = field_validator("api_key_env")(_check_env_name)


class FiscalDataConfig(_Strict):
    base_url: str = "https://api.fiscaldata.treasury.gov"
    poll_every: str | None = None
    timeout: str = "30s"
    lookback_days: int = Field(default=10, ge=1, le=3650)
    page_size: int = Field(default=1000, ge=1, le=10000)
    retries: int = Field(default=3, ge=0, le=10)


class SpeechesConfig(_Strict):
    feeds: list[str] = Field(default_factory=list)     # RSS 2.0 or RSS 1.0/RDF feeds
    pages: list[str] = Field(default_factory=list)     # index pages of Reserve Bank speeches
    poll_every: str | None = None
    timeout: str = "30s"
    max_items: int = Field(default=30, ge=1, le=500)   # newest items fetched per feed/page
    retries: int = Field(default=3, ge=0, le=10)


class SourcesConfig(_Strict):
    nyfed: NyFedConfig | None = None
    fred: FredConfig | None = None
    fiscaldata: FiscalDataConfig | None = None
    speeches: SpeechesConfig | None = None


class ReceiverConfig(_Strict):
    type: str
    webhook_url_env: str | None = None
    token_env: str | None = None
    channel: str | None = None
    api_base_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    tls: str | None = None
    username: str | None = None
    password_env: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)

    _e1 = field_validator("webhook_url_env", "token_env", "password_env")(_check_env_name)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in {"slack", "email", "console"}:
            raise ValueError(f"unknown receiver type {value!r} (slack, email or console)")
        return value

    @field_validator("tls")
    @classmethod
    def _tls(cls, value: str | None) -> str | None:
        if value is not None and value not in {"starttls", "tls", "none"}:
            raise ValueError(f"unknown tls mode {value!r} (starttls, tls or none)")
        return value


class DaemonConfig(_Strict):
    catchup_horizon: str = "3d"
    _d1 = field_validator("catchup_horizon")(_check_duration)


class HttpConfig(_Strict):
    listen: str = "127.0.0.1:9464"


class Config(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)
    routes: list[dict] = Field(default_factory=list)
    inhibit: list[dict] = Field(default_factory=list)
    mute: dict[str, dict] = Field(default_factory=dict)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)


# ---- loading ----

def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a daemon config file. Raises ``ConfigError`` with one
    ``FILE:LINE: field: message`` line per problem."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}:1: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(tomlpos.decode_problem(str(path), raw, exc)) from None
    return parse_config(text.removeprefix("\ufeff"), str(path))


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Validate config text; ``filename`` is only used in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(tomlpos.syntax_problem(filename, text, exc)) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = tomlpos.positions(text)
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = where.line_of(loc)
            problems.append((line, f"{filename}:{line}: {tomlpos.dotted(loc)}: {_message(err)}"))
        problems.sort(key=lambda item: item[0])
        raise ConfigError("\n".join(text for _, text in problems)) from None


def _message(err: Mapping[str, Any]) -> str:
    """A pydantic error worded for the config's author. Never includes the input value."""
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        if loc and loc[-1] in _SECRET_KEYS:
            return (f"secrets do not belong in the config file: name an environment variable "
                    f"with {loc[-1]}_env instead")
        known = _known_keys(loc[:-1])
        return "unknown key" + (f"; known keys: {', '.join(known)}" if known else "")
    if err["type"] == "missing":
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
