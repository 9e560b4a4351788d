"""Daemon configuration (TOML), validated strictly at load: unknown keys are errors.

Secrets are never in the file: it names environment variables (``*_env``) and the values are
read from the environment or ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential``) at the edge.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchdog.timefmt import parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
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

    _d1 = field_validator("poll_every", "timeout")(_check_duration)


class FiscalDataConfig(_Strict):
    base_url: str = "https://api.fiscaldata.treasury.gov"
    poll_every: str | None = None
    timeout: str = "30s"


class SpeechesConfig(_Strict):
    feeds: list[str] = Field(default_factory=list)
    pages: list[str] = Field(default_factory=list)
    poll_every: str | None = None
    timeout: str = "30s"


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

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in {"slack", "email", "console"}:
            raise ValueError(f"unknown receiver type {value!r} (slack, email or console)")
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
