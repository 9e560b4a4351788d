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
from urllib.parse import urlsplit

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
from watchdog.daemon.replica import Replica, holder_name
from watchdog.engine.data import SeriesData
from watchdog.engine.fold import Engine
from watchdog.market.announce import announcement_events
from watchdog.model.config import (
    Config,
    ConsoleReceiver,
    EmailReceiver,
    SlackReceiver,
    load_config,
)
from watchdog.model.errors import ConfigError, RuleError, WatchdogError
from watchdog.model.redact import redact_url
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
from watchdog.store import AsyncWriter, SqliteEventStore, iter_events, iter_published, verify_file
from watchdog.store.postgres import PostgresEventStore, is_url, verify_url


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
    """The event log ``path`` names: a SQLite file, or a ``postgresql://`` URL (whose password
    comes from PGPASSWORD or a passfile: a URL holding one is refused, as it would show in the
    process list and in messages)."""
    target = str(path)
    if is_url(target):
        return PostgresEventStore(_without_password(target), now=now, readonly=readonly)
    return SqliteEventStore(path, now=now, readonly=readonly)


def _without_password(url: str) -> str:
    """``url``, refused when it holds a password (it would show in the process list and in
    messages): PGPASSWORD or a passfile give it."""
    if urlsplit(url).password is not None:
        raise WatchdogError(f"event log {redact_url(url)}: the URL holds a password; give "
                            "it in PGPASSWORD or a passfile (PGPASSFILE) instead")
    return url


def migrate(source: str, target: str, page: int = 5000) -> tuple[int, int, str]:
    """``watchdog migrate``: copy the log at ``source`` (a file or a URL) into ``target``
    row for row, every hash kept, continuing where an interrupted copy stopped (the target must
    be empty or a prefix of the source). Returns (rows copied, head seq, head hash), after
    checking that both logs verify to the same head; raises WatchdogError otherwise."""
    if str(source) == str(target):
        raise WatchdogError("migrate: --from and --to name the same log")
    with closing(open_store(source, readonly=True)) as src, closing(open_store(target)) as dst:
        seq, digest = dst.head()
        if seq:
            held = src.raw_rows(after=seq - 1, limit=1)
            if not held or held[0][6] != digest:
                raise WatchdogError(f"migrate: {redact_url(str(target))} already holds {seq} events that "
                                    "are not the start of the source log: copy into an empty log")
        copied = 0
        while rows := src.raw_rows(after=seq, limit=page):
            copied += dst.copy_rows(rows)
            seq = rows[-1][0]
    heads = verify_log(str(source)), verify_log(str(target))
    if heads[0] != heads[1]:
        raise WatchdogError(f"migrate: the heads differ after the copy: {heads[0]} against {heads[1]}")
    return copied, heads[1][0], heads[1][1]


def verify_log(target: str, head_hash: str | None = None) -> tuple[int, str]:
    """``watchdog verify``: re-hash the chain of a file or a PostgreSQL log."""
    if is_url(target):
        return verify_url(_without_password(target), head_hash)
    return verify_file(target, head_hash)


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
    store = open_store(db or config.store.target, now=now)
    engine = Engine()

    def recent(alert: ToldAlert) -> list:  # the Slack sparkline: the rule's recent values
        return engine.recent_values(alert.rule, alert.date)
    # a shared PostgreSQL log: one replica of several, leading by its lease (daemon.replica)
    replica = (Replica(store, holder_name(config.store.replica), config.store.lease_ttl)
               if hasattr(store, "acquire_lease") else None)
    return Daemon(store=store, writer=AsyncWriter(store), sources=build_sources(config, env), replica=replica,
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
                    sources=build_sources(config, env), store_path=str(db or config.store.target))


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
    with closing(open_store(db or config.store.target)) as store:
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


def alert_to_render(db: str, rule_id: str, rule_paths: list[str], on_date: str | None) -> tuple[ToldAlert, list]:
    """``watchdog render --rule``: the latest alert of ``rule_id`` (recorded, or replayed with the
    rules given) and the values its sparkline shows, the rule that made it resolved once."""
    latest = _latest_alert_payload(db, rule_id, rule_paths, on_date)
    rule = alert_rule(db, latest["rule"], latest["rule_hash"], rule_paths)
    alert = ToldAlert.model_validate({**latest, "description": getattr(rule, "description", "") if rule else ""})
    return alert, recent_values(db, alert, rule)


def _latest_alert_payload(db: str, rule_id: str, rule_paths: list[str], on_date: str | None) -> dict:
    """The latest alert of ``rule_id`` (for ``on_date``) recorded in the log at ``db``, or,
    given ``rule_paths``, replayed from it with those rules."""
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
    return latest


def alert_rule(db: str, rule_id: str, rule_hash: str, rule_paths: list[str]):
    """``render``: the rule that made an alert: from ``rule_paths`` when given, else the version
    (by hash) the log's ``rules-loaded`` events recorded; None when neither has it."""
    from watchdog.model.events import RULES_LOADED
    from watchdog.rules.ruleset import rule_from_canonical
    if rule_paths:
        return load_rules(rule_paths).by_id.get(rule_id)
    with closing(open_store(db, readonly=True)) as store:
        for event in iter_events(store, types={RULES_LOADED}):
            for text in decode(event).rules:
                if text.hash == rule_hash:
                    return rule_from_canonical(text.text)
    return None


def recent_values(db: str, alert: ToldAlert, rule, n: int = 20) -> list:
    """``render``: ``rule``'s value on its last ``n`` evaluable dates up to the alert's date,
    from the facts published by the time it was known (the sparkline the daemon's Slack messages
    carry). Empty for a rule without a value series (composite, staleness, keyword)."""
    from watchdog.engine.fold import replay_events
    from watchdog.rules.ruleset import ruleset_from_canonical
    if rule is None or rule.KIND != "threshold":
        return []
    engine = Engine(ruleset_from_canonical([rule.canonical_text]))
    with closing(open_store(db, readonly=True)) as store:
        for _ in replay_events(engine, iter_published(store, types=FACT_TYPES, until=alert.evaluated_at),
                               until=alert.evaluated_at):
            pass
    return engine.recent_values(alert.rule, alert.date, n)


class SweepResults:
    """A sweep over an open log, made when first read: ``(variant, BacktestResult)`` for every
    variant (``tuning.sweep``), in order, from one pass over the log; ``(variant, None)`` for a
    skipped one (``variant.problem`` says why). Iterate it, or ``run(on_fact)`` to watch the
    pass (a progress bar: ``on_fact`` is called per fact read, of ``events`` in the log)."""

    def __init__(self, store, ruleset: RuleSet, variants: list, episodes):
        self.store, self.ruleset, self.variants, self.episodes = store, ruleset, list(variants), episodes
        self._results: list | None = None

    @property
    def events(self) -> int:
        """The events in the log (its head seq): what the facts read are counted against."""
        return self.store.head()[0]

    def run(self, on_fact: Callable | None = None) -> list:
        if self._results is None:
            from watchdog.tuning.backtest import backtest, scored_rules
            from watchdog.tuning.sweep import run_sweep
            valid = [v for v in self.variants if not v.skipped]
            facts = iter_published(self.store, types=FACT_TYPES) if valid else iter(())
            if on_fact is not None:
                facts = _tapped(facts, on_fact)
            scored = {id(v): backtest(transitions, self.episodes, scored_rules(v.ruleset))
                      for v, transitions in zip(valid, run_sweep(facts, self.ruleset, valid), strict=True)}
            self._results = [(v, scored.get(id(v))) for v in self.variants]
        return self._results

    def __iter__(self):
        return iter(self.run())

    def __len__(self) -> int:
        return len(self.variants)


def _tapped(events, on_event: Callable):
    for event in events:
        on_event(event)
        yield event


def sweep_results(store, ruleset: RuleSet, variants: list, episodes) -> SweepResults:
    """``backtest --set``: the sweep of ``variants`` over the open ``store``, scored against
    ``episodes``; one pass over the log when the result is first read (``SweepResults``)."""
    return SweepResults(store, ruleset, variants, episodes)


# ---- at a glance: `watchdog status` and `watchdog series` (tuning.status) ----

def glance(db: str | None, config_path: str | None, rule_paths: list[str] | None,
           now: datetime | None = None):
    """``watchdog status``: what fires at ``now`` (default: the system clock), every catalogued
    series' newest value and whether it is stale, and the outbox. Alerts are the ones the log
    recorded; with ``rule_paths``, or when the log holds no alert events, the log's facts
    replayed with those rules (else the config's ``[rules].paths``, default ``rules``).
    Only what was published by ``now`` counts."""
    from watchdog.model.events import ALERT_TYPES, RULES_LOADED
    from watchdog.tuning import status as glance_status
    config = resolve_config(config_path)
    db = db or config.store.target
    if not is_url(db) and not Path(db).exists():
        raise WatchdogError(f"event log {db}: no such file")
    now = now or system_now()
    until = utc_text(now)
    fold = glance_status.SeriesFold()
    paths = list(rule_paths or config.rules.paths)
    with closing(open_store(db, readonly=True)) as store:
        recorded = [e for e in iter_events(store, types=ALERT_TYPES | {RULES_LOADED}) if e.published_at <= until]
        has_alerts = any(e.type in ALERT_TYPES for e in recorded)
        ruleset = None
        if rule_paths or (paths and all(Path(p).exists() for p in paths)):
            try:
                ruleset = load_rules(paths)
            except RuleError:
                if rule_paths or not has_alerts:
                    raise       # the rules are what status replays: their errors are the answer
                # else the alerts are the log's own; the derived series are not shown
        # The derived series ([[series]]) come with the rules: shown whenever the rules load.
        data = SeriesData() if ruleset is not None and ruleset.series else None
        facts = glance_status.tapped(iter_published(store, types=FACT_TYPES, until=until), fold, data)
        if has_alerts and not rule_paths:
            alerts_from, paths = "recorded", []
            firing = glance_status.recorded_firing(recorded)
            graces = glance_status.recorded_graces(recorded)
            for _ in facts:
                pass
        elif ruleset is not None:
            alerts_from = "replayed"
            firing = glance_status.replayed_firing(facts, ruleset, until)
            graces = glance_status.staleness_graces(ruleset)
        else:                   # no alert events and no rules to replay: facts only
            alerts_from, paths, firing, graces = "none", [], (), {}
            for _ in facts:
                pass
    derived = glance_status.derived_statuses(ruleset.series, data) if data is not None else ()
    gaps = ()
    if ruleset is not None:
        from watchdog.sources.registry import BACKFILL_SOURCES
        gaps = glance_status.data_gaps(ruleset, fold.dates, fold.latest_speech, now, BACKFILL_SOURCES)
    return glance_status.status(now, series=fold.statuses(now, graces), firing=firing,
                                alerts_from=alerts_from, rule_paths=paths, owed=owed_notifications(db),
                                log_has_alerts=has_alerts, derived=derived, gaps=gaps)


def series_values(db: str, names: list[str], since: date | None, until: date | None,
                  revisions: bool) -> list:
    """``watchdog series``: the observations of ``names`` in the log at ``db``
    (``tuning.status.series_rows``); a WatchdogError naming the known series for an unknown
    name."""
    from watchdog.model.events import OBSERVATION_RECORDED, OBSERVATION_REVISED
    from watchdog.tuning.status import series_rows, unknown_series
    if problem := unknown_series(names):
        raise WatchdogError(problem)
    with closing(open_store(db, readonly=True)) as store:
        return series_rows(iter_events(store, types={OBSERVATION_RECORDED, OBSERVATION_REVISED}), names,
                           since=since.isoformat() if since else None,
                           until=until.isoformat() if until else None, revisions=revisions)


# ---- a new install: `watchdog init` ----

# The credentials the shipped unit loads (deploy/watchdog.service LoadCredential=), one file each.
INIT_CREDENTIALS = ("fred_api_key", "slack_webhook_url", "slack_bot_token", "smtp_password")
# The shipped unit's state directory: the only place its dynamic user can write.
SERVICE_STATE_DIR = Path("/var/lib/watchdog")


def init_install(folder: str | Path, *, store: str = "events.db", force: bool = False,
                 watchdog_bin: str | None = None) -> dict:
    """``watchdog init``: a working install in ``folder`` from what the package ships
    (``watchdog/shipped``: the repo's rules/ and deploy/): ``watchdog.toml`` (its ``[store]
    path`` is ``store``, its ``[rules] paths`` ``["rules"]``, both relative to the folder
    unless absolute), ``rules/`` (the default rules), ``watchdog.service`` (the shipped unit,
    running this installation's ``watchdog`` on that config, its credentials in
    ``credentials/``) and ``credentials/`` (one empty 0600 file per credential the unit loads;
    an existing one is never overwritten, even with ``force``: it may hold a key).

    Refuses (WatchdogError, nothing written) when a file it would write exists, unless
    ``force``. Returns what it wrote: ``config``, ``rules`` (paths), ``unit``, ``credentials``
    (the new ones), ``store`` (as resolved) and ``notes`` (what the person should know)."""
    import shutil
    import sys
    from importlib.resources import as_file, files

    from watchdog.model.config import parse_config, relative_to

    folder = Path(folder)
    shipped = files("watchdog") / "shipped"
    rule_files = sorted((f for f in (shipped / "rules").iterdir() if f.name.endswith(".toml")),
                        key=lambda f: f.name)
    if not rule_files:
        raise WatchdogError("this installation ships no default rules (watchdog/shipped/rules)")
    config_path, unit_path, rules_dir = folder / "watchdog.toml", folder / "watchdog.service", folder / "rules"
    targets = [config_path, unit_path, *(rules_dir / f.name for f in rule_files)]
    existing_files = [str(path) for path in targets if path.exists()]
    if existing_files and not force:
        raise WatchdogError(f"{folder}: would overwrite {', '.join(existing_files)} "
                            "(--force overwrites them; credentials/ is never overwritten)")
    if folder.exists() and not folder.is_dir():
        raise WatchdogError(f"{folder} exists and is not a folder")

    config_text = _init_config_text((shipped / "deploy" / "watchdog.toml").read_text(encoding="utf-8"),
                                    store)
    config = relative_to(parse_config(config_text, str(config_path)), str(folder))   # it must load
    home = folder.absolute()
    binary = watchdog_bin or _installed_watchdog(sys.executable, shutil.which("watchdog"))
    unit_text = _init_unit_text((shipped / "deploy" / "watchdog.service").read_text(encoding="utf-8"),
                                binary, home)

    rules_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(config_text, encoding="utf-8")
    written_rules = []
    for rule_file in rule_files:
        with as_file(rule_file) as source:
            shutil.copyfile(source, rules_dir / rule_file.name)
        written_rules.append(rules_dir / rule_file.name)
    unit_path.write_text(unit_text, encoding="utf-8")
    credentials_dir = folder / "credentials"
    credentials_dir.mkdir(mode=0o700, exist_ok=True)
    new_credentials = []
    for name in INIT_CREDENTIALS:
        path = credentials_dir / name
        if not path.exists():
            path.touch(mode=0o600)
            new_credentials.append(path)

    store_path = Path(config.store.path).absolute()
    notes = []
    if not store_path.is_relative_to(SERVICE_STATE_DIR):
        notes.append(f"the unit runs as a dynamic user that can write only {SERVICE_STATE_DIR}: to run "
                     f"{unit_path} as a service, write the log there (watchdog init {folder} --force "
                     f"--store {SERVICE_STATE_DIR / 'events.db'})")
    return {"config": config_path, "rules": written_rules, "unit": unit_path,
            "credentials": new_credentials, "credentials_dir": credentials_dir,
            "store": config.store.path, "rule_paths": list(config.rules.paths), "notes": notes}


def _init_config_text(shipped: str, store: str) -> str:
    """The shipped config with its own header, ``[store] path`` = ``store`` and ``[rules]
    paths = ["rules"]``; a WatchdogError if the template no longer has those lines."""
    import json
    import re

    body = shipped.split("\n\n", 1)[1]            # the shipped header speaks of the repo
    body, stores = re.subn(r'(?m)^(\[store\]\npath = ).*$', lambda m: m.group(1) + json.dumps(store), body)
    body, rules = re.subn(r'(?m)^(\[rules\]\npaths = ).*$', lambda m: m.group(1) + '["rules"]', body)
    if (stores, rules) != (1, 1):
        raise WatchdogError("the shipped deploy/watchdog.toml has no [store] path or [rules] paths line")
    header = ("# watchdog daemon config, written by `watchdog init` from the shipped deploy/watchdog.toml.\n"
              "# Secrets are never written here: *_env keys name environment variables (or systemd\n"
              "# credentials, see watchdog.service beside this file).\n"
              "# Relative paths ([store] path, [rules] paths) are relative to this file's folder;\n"
              "# `--db` and `--rules` on the command line replace them.\n")
    return header + "\n" + body


def _installed_watchdog(python: str, on_path: str | None) -> str:
    """The `watchdog` console script of this installation: beside its interpreter (a venv's
    bin/), else the one on PATH, else ``python -m watchdog``."""
    beside = Path(python).parent / "watchdog"
    if beside.exists():
        return str(beside)
    return on_path or f"{python} -m watchdog"


def _init_unit_text(shipped: str, binary: str, home: Path) -> str:
    """The shipped unit, running ``binary`` on ``home``/watchdog.toml, credentials from
    ``home``/credentials; a WatchdogError if the template no longer has those lines."""
    def quoted(path: str | Path) -> str:
        text = str(path)
        return f'"{text}"' if any(c.isspace() for c in text) else text

    exec_start = "ExecStart=/opt/watchdog/.venv/bin/watchdog run --config /etc/watchdog/watchdog.toml"
    if exec_start not in shipped or "/etc/watchdog/credentials/" not in shipped:
        raise WatchdogError("the shipped deploy/watchdog.service has no ExecStart or LoadCredential line to adapt")
    text = shipped.replace(exec_start, f"ExecStart={quoted(binary)} run --config {quoted(home / 'watchdog.toml')}")
    text = text.replace("/etc/watchdog/credentials/", f"{home / 'credentials'}/")
    return (f"# Written by `watchdog init` for the install in {home}.\n"
            f"#   sudo install -m 0644 {quoted(home / 'watchdog.service')} /etc/systemd/system/watchdog.service\n"
            + text)
