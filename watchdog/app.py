"""The one composition root: builds the concrete store, sources, notifiers and daemon from config.
Everything below it takes its collaborators as arguments."""
from __future__ import annotations

import gc
import importlib.util
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from watchdog.model.config import Config, load_config
from watchdog.daemon.loop import Daemon, Reloaded
from watchdog.engine.fold import Engine
from watchdog.model.errors import ConfigError
from watchdog.model.events import canonical_json, content_hash
from watchdog.notify.console import ConsoleNotifier
from watchdog.notify.email.send import EmailNotifier
from watchdog.notify.slack.send import SlackNotifier
from watchdog.rules.ruleset import RuleSet, load_rules
from watchdog.sources.base import BodyLimit, limit_bodies
from watchdog.sources.fiscaldata.live import FiscalDataSource
from watchdog.sources.fred.live import FredSource
from watchdog.sources.nyfed.rates import NyFedSource
from watchdog.sources.nyfed.operations import NyFedOperationsSource
from watchdog.sources.speeches.live import SpeechesSource
from watchdog.store import AsyncWriter, SqliteEventStore
from watchdog.model.timefmt import parse_duration


def tune_gc() -> None:
    """The daemon and replay hold many long-lived, immutable facts: gen-2 collections rescan them
    all and free nothing, which cost more than half of the append path in `make bench`. Collect
    the young generation less often; cycles are still collected."""
    gc.set_threshold(100_000, 50, 100)


def freeze_heap() -> None:
    """After a warm-up (the log folded into the engine), move what exists to the permanent
    generation so later collections skip it."""
    gc.collect()
    gc.freeze()


def system_now() -> datetime:
    return datetime.now(timezone.utc)


def open_store(path: str | Path, now: Callable[[], datetime] = system_now, readonly: bool = False):
    return SqliteEventStore(path, now=now, readonly=readonly)


def resolve_config(config_path: str | None) -> Config:
    return load_config(config_path) if config_path else Config()


def build_sources(config: Config, env: Mapping[str, str]) -> list:
    """Every configured source (a missing table disables it), each reading its answers under
    its table's ``max_body``."""
    cfg = config.sources
    sources: list = []

    def add(source, table: str, max_body: str) -> None:
        sources.append(limit_bodies(source, BodyLimit.of(table, max_body)))
    if cfg.nyfed is not None:
        add(NyFedSource(cfg.nyfed), "nyfed", cfg.nyfed.max_body)
        if cfg.nyfed.operations:
            add(NyFedOperationsSource(cfg.nyfed), "nyfed", cfg.nyfed.max_body)
    if cfg.fred is not None:
        add(FredSource(cfg.fred, env), "fred", cfg.fred.max_body)
    if cfg.fiscaldata is not None:
        add(FiscalDataSource(cfg.fiscaldata), "fiscaldata", cfg.fiscaldata.max_body)
    if cfg.speeches is not None:
        add(SpeechesSource(cfg.speeches), "speeches", cfg.speeches.max_body)
    return sources


def source_named(config: Config, name: str, env: Mapping[str, str]):
    """The configured source called ``name`` (for ``backfill``), or a ConfigError listing them."""
    sources = {s.name: s for s in build_sources(config, env)}
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none configured"
        raise ConfigError(f"no source {name!r} in the config (configured: {known})")
    return sources[name]


def build_notifiers(config: Config, env: Mapping[str, str] | None = None,
                    recent_values: Callable | None = None) -> dict:
    """One notifier per configured receiver (secrets read from the environment or systemd
    credentials); with none configured, the console. ``recent_values`` (alert -> values) feeds
    Slack's sparkline."""
    env = os.environ if env is None else env
    notifiers: dict = {}
    for name, receiver in config.receivers.items():
        if receiver.type == "slack":
            notifiers[name] = SlackNotifier(name, receiver, env, recent_values=recent_values)
        elif receiver.type == "email":
            notifiers[name] = EmailNotifier(name, receiver, env)
        else:
            notifiers[name] = ConsoleNotifier()
    return notifiers or {"console": ConsoleNotifier()}


def config_payload(config: Config) -> dict:
    """``config-loaded``: the validated config (it names env variables, never holds secrets)."""
    body = config.model_dump(mode="json", by_alias=True)
    return {"hash": content_hash(canonical_json(body)), "config": body}


def build_daemon(config: Config, *, db: str | None = None, rule_paths: list[str] | None = None,
                 env: Mapping[str, str] | None = None,
                 now: Callable[[], datetime] = system_now,
                 config_path: str | None = None, http: bool = True) -> Daemon:
    """The daemon over ``config``. ``config_path`` is what SIGHUP re-reads (with the same
    ``db``/``rule_paths`` overrides); ``http=False`` keeps ``serve`` off the network."""
    env = os.environ if env is None else env     # one reading, as reload_files has: {} means empty
    paths = list(rule_paths or config.rules.paths)
    ruleset: RuleSet = load_rules(paths)
    store = open_store(db or config.store.path, now=now)
    engine = Engine()

    def recent(alert: dict) -> list:       # the Slack sparkline: the rule's recent values
        return engine.recent_values(alert.get("rule", ""), alert.get("date", ""))
    return Daemon(store=store, writer=AsyncWriter(store), sources=build_sources(config, env),
                  ruleset=ruleset, rule_paths=paths, config_payload=config_payload(config),
                  notifiers=build_notifiers(config, env, recent_values=recent), config=config, now=now,
                  catchup_horizon=parse_duration(config.daemon.catchup_horizon), engine=engine,
                  reload_config=lambda: reload_files(config_path, db=db, rule_paths=rule_paths, env=env,
                                                     recent_values=recent),
                  start_http=http_starter() if http else None)


def reload_files(config_path: str | None, *, db: str | None, rule_paths: list[str] | None,
                 env: Mapping[str, str] | None, recent_values: Callable | None = None) -> Reloaded:
    """What SIGHUP re-reads: the config file (if the daemon was given one) and the rule files.
    Raises ConfigError/RuleError (FILE:LINE: ...) for an invalid set."""
    env = os.environ if env is None else env
    config = resolve_config(config_path)
    paths = list(rule_paths or config.rules.paths)
    return Reloaded(config=config, ruleset=load_rules(paths), rule_paths=paths,
                    config_payload=config_payload(config),
                    notifiers=build_notifiers(config, env, recent_values=recent_values),
                    sources=build_sources(config, env), store_path=str(db or config.store.path))


def http_starter():
    """``watchdog.http.server.start_http`` where that module is installed."""
    if importlib.util.find_spec("watchdog.http.server") is None:
        return None
    from watchdog.http.server import start_http
    return start_http


def close_daemon(daemon: Daemon) -> None:
    daemon.writer.close()
    daemon.store.close()
