"""The one composition root: builds the concrete store, sources, notifiers and daemon from config.
Everything below it takes its collaborators as arguments.

The end of the module holds what a command does when it composes several rooms (a store and the
outbox, a config and a notifier, the log and the sweep): the CLI calls one function and prints."""
from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import closing
from datetime import date, datetime, timezone
from pathlib import Path

import aiohttp

from watchdog.alerting.dispatch import default_receivers
from watchdog.alerting.outbox import Outbox
from watchdog.alerting.silences import (
    Silence,
    fold_silences,
    silence_added_event,
    silence_expired_event,
)
from watchdog.daemon import lifecycle
from watchdog.daemon.logs import secret_values, setup_logging
from watchdog.daemon.loop import CycleReport, Daemon, Reloaded
from watchdog.engine.fold import Engine
from watchdog.market.announce import announcement_events
from watchdog.model.config import (
    Config,
    ConsoleReceiver,
    EmailReceiver,
    SlackReceiver,
    load_config,
)
from watchdog.model.errors import ConfigError, WatchdogError
from watchdog.model.events import (
    ALERT_FIRING,
    ALERT_FLAGGED,
    ALERT_RESOLVED,
    CONFIG_LOADED,
    FACT_TYPES,
    SILENCE_ADDED,
    SILENCE_EXPIRED,
    ConfigLoaded,
    SilenceAdded,
    SilenceExpired,
    ToldAlert,
    canonical_json,
    content_hash,
    decode,
)
from watchdog.model.timefmt import NEW_YORK, parse_duration, utc_text
from watchdog.notify.console import ConsoleNotifier
from watchdog.notify.email.send import EmailNotifier
from watchdog.notify.slack.send import SlackNotifier
from watchdog.rules.ruleset import RuleSet, load_rules
from watchdog.sources.base import BodyLimit, limit_bodies
from watchdog.sources.registry import FAMILIES
from watchdog.store import AsyncWriter, SqliteEventStore, iter_events, iter_published


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
    """Every configured source, family by family (``sources.registry``; a missing table
    disables its family), each reading its answers under its table's ``max_body``."""
    sources: list = []
    for family in FAMILIES:
        table = getattr(config.sources, family.table)
        if table is not None:
            limit = BodyLimit.of(family.table, table.max_body)
            sources += [limit_bodies(source, limit) for source in family.build(table, env)]
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
        match receiver:
            case SlackReceiver():
                notifiers[name] = SlackNotifier(name, receiver, env, recent_values=recent_values)
            case EmailReceiver():
                notifiers[name] = EmailNotifier(name, receiver, env)
            case ConsoleReceiver():
                notifiers[name] = ConsoleNotifier()
    return notifiers or {"console": ConsoleNotifier()}


def config_payload(config: Config) -> ConfigLoaded:
    """``config-loaded``: the validated config (it names env variables, never holds secrets)."""
    body = config.model_dump(mode="json", by_alias=True)
    return ConfigLoaded(hash=content_hash(canonical_json(body)), config=body)


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

    def recent(alert: ToldAlert) -> list:  # the Slack sparkline: the rule's recent values
        return engine.recent_values(alert.rule, alert.date)
    return Daemon(store=store, writer=AsyncWriter(store), sources=build_sources(config, env),
                  ruleset=ruleset, rule_paths=paths, config_payload=config_payload(config),
                  notifiers=build_notifiers(config, env, recent_values=recent), config=config, now=now,
                  catchup_horizon=config.daemon.catchup_horizon, engine=engine,
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


# ---- what the commands do: `watchdog.cli` parses the options, calls one of these, prints ----

def run_daemon(config_path: str | None, *, db: str | None, rule_paths: list[str] | None, http: bool,
               accept_broken_chain: bool, once: bool, exit_when_idle: bool, every: str,
               log_level: str, log_format: str, on_cycle: Callable[[CycleReport], None]) -> None:
    """``watchdog run``: logging first (every secret the config names scrubbed from it), then
    the daemon over the config, run in the mode asked for (``daemon.lifecycle``; ``every`` is
    the pause between cycles until idle), closed however it ends."""
    secret_filter = setup_logging(level=log_level, fmt=log_format)
    config = resolve_config(config_path)
    secret_filter.add(secret_values(config))
    daemon = build_daemon(config, db=db, rule_paths=rule_paths, config_path=config_path, http=http)
    daemon.accept_broken_chain = accept_broken_chain
    pause = parse_duration(every).total_seconds()
    try:
        lifecycle.run(daemon, once=once, exit_when_idle=exit_when_idle, pause=pause, on_cycle=on_cycle)
    finally:
        close_daemon(daemon)


def announce(db: str, settings: list[str], effective: date, announced: datetime | None,
             url: str | None) -> tuple[list, int]:
    """``watchdog announce``: an FOMC decision (``market.announce``) appended to the log at
    ``db``, announced now unless ``announced`` says when. Returns the events stored and how
    many were built (the others the log already held)."""
    events = announcement_events(settings, effective, announced or system_now(), url)
    with closing(open_store(db)) as store:
        return store.append(events), len(events)


def import_history(db: str, paths: list[Path], recorded_at: datetime | None) -> dict:
    """``watchdog import``: history files into the log at ``db`` (created if missing); per file
    kind, (facts read, events added). ``recorded_at`` fixes the log's clock, for a reproducible
    file."""
    # imported here, as in the functions below: `watchdog run` does not load what it never uses
    from watchdog.sources.history import import_paths
    store = open_store(db, now=(lambda: recorded_at) if recorded_at else system_now)
    # No row may be dated after the day the import really runs (New York); recorded_at only
    # fixes the log's clock, it does not move "today".
    today = system_now().astimezone(NEW_YORK).date()
    with closing(store):
        return import_paths(store, paths, today=today)


def backfill(config_path: str, source_name: str, db: str | None, since: date) -> tuple[list, list]:
    """``watchdog backfill``: one configured source's history since ``since``, through the
    daemon's parsers, appended to ``db`` (default: the config's store). Returns the events
    fetched and those stored (the others the log already held)."""
    config = resolve_config(config_path)
    source = source_named(config, source_name, os.environ)
    with closing(open_store(db or config.store.path)) as store:
        events = asyncio.run(_fetch_history(source, since))
        return events, store.append(events)


async def _fetch_history(source, since: date) -> list:
    async with aiohttp.ClientSession() as session:
        return await source.backfill(session, since, system_now())


def send_test_notification(config_path: str, receiver: str, alert: ToldAlert):
    """``watchdog notify-test``: ``alert`` sent once through the configured ``receiver`` (under
    a delivery key of its own); the receiver's result."""
    notifiers = build_notifiers(resolve_config(config_path))
    if receiver not in notifiers:
        raise WatchdogError(f"no receiver {receiver!r} (configured: {', '.join(sorted(notifiers))})")
    return asyncio.run(notifiers[receiver].send(alert, key=f"notify-test/{receiver}/{system_now().timestamp()}"))


def owed_notifications(db: str) -> list[dict]:
    """``watchdog outbox``: each notification the daemon still owes, with why it waits (the
    outbox's pending rows), re-folded from the log under the routing and grouping the daemon
    last recorded (config-loaded)."""
    with closing(open_store(db, readonly=True)) as store:
        config = Config()
        for event in iter_events(store, types={CONFIG_LOADED}):
            config = Config.model_validate(decode(event).config)
        box = Outbox(routes=list(config.routes), default_receivers=default_receivers(config))
        for event in iter_events(store):
            box.apply(event)
    return box.pending(utc_text(system_now()))


def add_silence(db: str, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str,
                created_by: str) -> SilenceAdded:
    """``watchdog silence add``: a silence of the alerts whose labels equal ``matchers``,
    appended to the log at ``db`` under a new id."""
    added = SilenceAdded(id=uuid.uuid4().hex[:12], matchers=matchers, starts_at=utc_text(starts),
                         ends_at=utc_text(ends), comment=comment, created_by=created_by)
    with closing(open_store(db)) as store:
        store.append([silence_added_event(added)])
    return added


def silences(db: str) -> list[Silence]:
    """``watchdog silence list``: every silence the log at ``db`` holds, oldest start first."""
    with closing(open_store(db, readonly=True)) as store:
        folded = fold_silences(iter_events(store, types={SILENCE_ADDED, SILENCE_EXPIRED}))
    return sorted(folded.values(), key=lambda s: s.starts_at)


def expire_silence(db: str, silence_id: str, expired_by: str) -> None:
    """``watchdog silence expire``: the silence ends now; a WatchdogError if the log at ``db``
    has no such silence."""
    with closing(open_store(db)) as store:
        if store.get(f"silence/{silence_id}/added") is None:
            raise WatchdogError(f"no silence {silence_id!r} in {db}")
        store.append([silence_expired_event(SilenceExpired(
            id=silence_id, expired_at=utc_text(system_now()), expired_by=expired_by))])


def latest_alert(db: str, rule_id: str, rule_paths: list[str], on_date: str | None) -> ToldAlert:
    """``watchdog render --rule``: the latest alert of ``rule_id`` (for ``on_date``) recorded in
    the log at ``db``, or, given ``rule_paths``, replayed from it with those rules."""
    with closing(open_store(db, readonly=True)) as store:
        if rule_paths:
            from watchdog.tuning.replay import replay
            found = (t.model_dump() for t in replay(store, load_rules(rule_paths))
                     if t.rule == rule_id and t.state != "pending")
        else:
            found = (e.payload for e in iter_events(store, types={ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})
                     if decode(e).rule == rule_id)
        latest = None
        for payload in found:
            if on_date is None or payload["date"] == on_date:
                latest = payload
    if latest is None:
        where = "replayed" if rule_paths else "recorded"
        raise WatchdogError(f"no {where} alert of rule {rule_id!r}{f' for {on_date}' if on_date else ''} in {db}"
                            + ("" if rule_paths else " (a log of facts only? add --rules to replay it)"))
    return ToldAlert.model_validate(latest)


def sweep_results(store, ruleset: RuleSet, variants: list, episodes) -> list:
    """``(variant, BacktestResult)`` for every variant (``tuning.sweep``), from one pass over
    the log."""
    from watchdog.tuning.backtest import backtest, scored_rules
    from watchdog.tuning.sweep import run_sweep
    facts = iter_published(store, types=FACT_TYPES)
    return [(variant, backtest(transitions, episodes, scored_rules(variant.ruleset)))
            for variant, transitions in zip(variants, run_sweep(facts, ruleset, variants))]
