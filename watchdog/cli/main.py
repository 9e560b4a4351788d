"""The command line: thin click commands over ``app``; errors are one line, never a traceback.

Exit codes: 0 ok; 1 the input is wrong or a check found differences/failures; 2 usage.
"""
from __future__ import annotations

import asyncio
import functools
import os
import json
import sys
from pathlib import Path

import click

from watchdog import __version__, app
from watchdog.cli import tuning
from watchdog.model.errors import ConfigError, RuleError, WatchdogError

DB_HELP = "Event log (SQLite file)."
RULES_HELP = "A rules file or a folder of *.toml (non-recursive); repeatable."


def _fail(message: str, located: bool = False) -> None:
    """One line per problem on stderr, exit 1. Rule and config problems already start with
    ``FILE:LINE:`` (DESIGN's format) and are printed as they are."""
    click.echo(message if located else f"error: {message}", err=True)
    sys.exit(1)


def guarded(fn):
    """Translate our documented errors (and bad values) into one clear line and exit 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            # `watchdog replay ... | head`: the reader has what it wanted. Quiet, like cat; point
            # stdout at devnull so the interpreter's final flush does not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except (RuleError, ConfigError) as exc:
            _fail(str(exc), located=True)
        except WatchdogError as exc:
            _fail(str(exc))
        except (ValueError, OSError) as exc:
            _fail(str(exc))
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="watchdog")
def cli() -> None:
    """watchdog: event-sourced alerts on US dollar funding-market stress.

    Polls the NY Fed, FRED and other public sources into an append-only, hash-chained SQLite
    event log, evaluates TOML rules (spreads such as SOFR-IORB in exact basis points), notifies,
    and replays history exactly as it was known.
    """


# ---- run ----
@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Daemon config (TOML).")
@click.option("--db", help=DB_HELP + " Overrides [store].path.")
@click.option("--rules", "rule_paths", multiple=True, help=RULES_HELP + " Overrides [rules].paths.")
@click.option("--once", is_flag=True, help="Poll every source once, evaluate, notify, then exit.")
@click.option("--exit-when-idle", is_flag=True,
              help="Keep cycling until no source has anything new and the outbox is empty.")
@click.option("--every", default="2s", show_default=True, help="Pause between cycles with --exit-when-idle.")
@click.option("--no-http", is_flag=True, help="Do not serve /healthz, /readyz, /metrics (overrides [http]).")
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True,
              help="auto: text on a terminal, JSON lines otherwise (journald-aware).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--accept-broken-chain", is_flag=True,
              help="Extend a log whose hash chain does not verify (recorded in daemon-started). "
                   "Without it the daemon refuses to start and names the first bad row.")
@guarded
def run(config_path, db, rule_paths, once, exit_when_idle, every, no_http, log_format, log_level,
        accept_broken_chain):
    """Run the daemon: poll, record, evaluate, notify.

    Without --once or --exit-when-idle it runs until SIGTERM/SIGINT, polling each source at its
    series' publication times (SOFR from 08:00 ET on T+1 until the value is in, an afternoon
    re-poll for revisions), or every `poll_every` when a source's config sets it. SIGHUP re-reads
    the config and rule files (an invalid set is refused and the old one keeps running). Under
    systemd (Type=notify) it reports READY=1, STATUS= and WATCHDOG=1. A source failure is
    recorded as a `source-failed` event and the run still exits 0: that is the daemon working.
    Secrets come from the environment or systemd credentials, never from the config file, and
    are scrubbed from every log line.
    """
    from watchdog.daemon.logs import secret_values, setup_logging
    from watchdog.model.timefmt import parse_duration
    secret_filter = setup_logging(level=log_level, fmt=log_format)
    config = app.resolve_config(config_path)
    secret_filter.add(secret_values(config))
    daemon = app.build_daemon(config, db=db, rule_paths=list(rule_paths) or None,
                              config_path=config_path, http=not no_http)
    daemon.accept_broken_chain = accept_broken_chain
    pause = parse_duration(every).total_seconds()
    try:
        asyncio.run(_run(daemon, once, exit_when_idle, pause))
    finally:
        app.close_daemon(daemon)


async def _run(daemon, once: bool, exit_when_idle: bool, pause: float) -> None:
    daemon.one_shot = once or exit_when_idle
    if once:
        report = await daemon.run_once()
        _report(report)
        return
    if not exit_when_idle:
        import signal
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await daemon.serve(stop)
        return
    await daemon.start()
    try:
        while True:
            report = await daemon.cycle()
            _report(report)
            if report.facts == 0 and not daemon.outbox.owed():
                break
            await asyncio.sleep(pause)
    finally:
        await daemon.stop("exit-when-idle")


def _report(r) -> None:
    click.echo(f"cycle: {r.facts} new facts, {r.failures} source failures, {r.transitions} alert "
               f"transitions, {r.sent} notifications sent, {r.suppressed} suppressed, "
               f"{r.failed} failed", err=True)


# ---- check ----
@cli.command()
@click.option("--rules", "rule_paths", multiple=True, help=RULES_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Also validate this daemon config.")
@guarded
def check(rule_paths, config_path):
    """Validate rule files (and a daemon config) without running anything.

    Problems are printed as FILE:LINE: rule ID: FIELD: message, one per line; exit 1 if any.
    """
    from watchdog.rules.ruleset import load_rules
    if not rule_paths and not config_path:
        raise click.UsageError("give --rules and/or --config")
    if config_path:
        config = app.resolve_config(config_path)
        app.build_notifiers(config)
        click.echo(f"ok: config {config_path}")
    if rule_paths:
        ruleset = load_rules(list(rule_paths))
        kinds = [(len(ruleset.rules), "threshold"), (len(ruleset.keyword_rules), "keyword"),
                 (len(ruleset.composite_rules), "composite"), (len(ruleset.revision_rules), "revision"),
                 (len(ruleset.staleness_rules), "staleness")]
        shown = ", ".join(f"{n} {kind}" for n, kind in kinds if n)
        click.echo(f"ok: {len(ruleset)} rules ({shown}; rule set {ruleset.hash[:12]})")


# ---- test-rules ----
@cli.command("test-rules")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Also write JUnit XML here (for CI).")
@guarded
def test_rules(files, junit_path):
    """Run promtool-style unit tests of rules: input series by date, expected alerts by date.

    Each test file names its rule files (`rule_files`), gives `[test.series]` values by date
    (gaps are holidays), and lists `[[test.expect]]` transitions (rule, state, date, value).
    Exit 1 if any test fails.
    """
    from watchdog.tuning.ruletest import exit_code, junit_xml, render_text, run_rule_tests
    results = run_rule_tests(list(files))
    click.echo(render_text(results), nl=False)
    if junit_path:
        Path(junit_path).write_text(junit_xml(results), encoding="utf-8")
    sys.exit(exit_code(results))


# ---- schema ----
@cli.command()
def schema():
    """Print the JSON Schema of rule files (for editors: point your TOML plugin at it)."""
    from watchdog.rules.schema import rules_json_schema_text
    click.echo(rules_json_schema_text(), nl=False)


# ---- replay ----
@cli.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--rules", "rule_paths", multiple=True, required=True, help=RULES_HELP)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Print transitions dated on/after (warm-up still uses all history).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Print transitions dated on/before.")
@click.option("--as-of", "as_of", help="Only facts published by this instant (ISO 8601 with offset, e.g. 2025-11-01T00:00:00-04:00).")
@click.option("--as-recorded", is_flag=True,
              help="With --as-of: also only facts this log had recorded by then (what a daemon writing "
                   "this log could have seen; history imported later is left out).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per transition (with --diff: per difference, then per rule).")
@click.option("--diff", "diff_paths", multiple=True,
              help="Replay this other rule set too (file or folder; repeatable) and print the alerts that appear, disappear or move, per rule.")
@click.option("--max-shift", default=5, show_default=True, type=click.IntRange(0, 260),
              help="With --diff: a transition at most this many business days away is a move.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report here: a chart per indicator, alert markers, the alert table.")
@click.option("--notify-dry-run", "dry_run", is_flag=True,
              help="Print what each receiver would have been sent, and when (the routes, grouping "
                   "timers, inhibition and mutes of --config), instead of the transitions.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Daemon config for --notify-dry-run (default: one console receiver).")
@guarded
def replay(db, rule_paths, since, until, as_of, as_recorded, as_json, diff_paths, max_shift, report_path,
           dry_run, config_path):
    """Replay the log with a rule set, as an ideal daemon would have seen it.

    Facts are consumed in publication order; `known_at` is when the transition could first have
    been known. Nothing published after --as-of is used (with --as-recorded, nor anything this
    log recorded after it). The text timeline also shows pending
    alerts (a condition waiting out its `for`); --json prints firing, resolved and flagged only.
    On a terminal, a progress bar runs on stderr. Memory stays flat however long the log.
    """
    from watchdog.rules.ruleset import load_rules
    from watchdog.model.timefmt import parse_user_time, utc_text
    run = tuning.ReplayRun(ruleset=load_rules(list(rule_paths)), as_json=as_json,
                     cutoff=utc_text(parse_user_time(as_of)) if as_of else None,
                     lo=since.date().isoformat() if since else None,
                     hi=until.date().isoformat() if until else None)
    if as_recorded and not as_of:
        raise click.UsageError("--as-recorded needs --as-of")
    run.recorded_by = run.cutoff if as_recorded else None
    store = app.open_store(_existing(db), readonly=True)
    try:
        if dry_run:
            from watchdog.tuning.replay import replay as run_replay
            config = app.resolve_config(config_path) if config_path else None
            tuning.print_dry_run(run_replay(store, run.ruleset, as_of=run.cutoff, recorded_by=run.recorded_by),
                                 config, run.lo, run.hi, as_json, until=run.cutoff)
            return
        if diff_paths:
            shown = run.diff(store, load_rules(list(diff_paths)), max_shift, keep=bool(report_path))
        else:
            shown = run.timeline(store, keep=bool(report_path))
        if report_path:
            run.write_report(report_path, shown, db)
    finally:
        store.close()


DEFAULT_EPISODES = "episodes/default.toml"


# ---- backtest ----
@cli.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--rules", "rule_paths", multiple=True, required=True, help=RULES_HELP)
@click.option("--episodes", "episodes_path", default=DEFAULT_EPISODES, show_default=True,
              help="Labelled episodes (TOML): name, start, end, kind (stress | selected-date | calm), split.")
@click.option("--split", type=click.Choice(["calibration", "held-back", "all"]), default="all", show_default=True,
              help="Score only the episodes of this split.")
@click.option("--lookback", help="Business days before an episode's start an alert still counts, e.g. 10bd; "
                                 "replaces the file's `lookback` (an episode's own lookback stays).")
@click.option("--set", "settings", multiple=True, metavar="RULE.FIELD=VALUES",
              help="Sweep a rule field: 5..30:5 (range, step), a,b,c (list) or one value; repeatable "
                   "(every combination). Prints one row per variant.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON instead of tables: one object (or one per variant with --set).")
@guarded
def backtest(db, rule_paths, episodes_path, split, lookback, settings, as_json):
    """Score the rules against labelled episodes: caught, lead time, false alarms, precision.

    An episode is caught by a rule when one of its alerts (a `firing` of a threshold or
    composite rule) is first known within [start - lookback, end]; lead time is business days
    from that known day to the start (positive = warned before). A firing first known inside a
    calm episode is a false alarm. With --set, every variant is evaluated in one pass over the
    log and compared in one table.
    """
    from watchdog.tuning.backtest import backtest as score, render, scored_rules
    from watchdog.tuning.episodes import load_episodes, parse_lookback
    from watchdog.rules.ruleset import load_rules
    from watchdog.tuning.sweep import build_variants, parse_setting
    ruleset = load_rules(list(rule_paths))
    episodes = load_episodes(episodes_path).select(split)
    if lookback:
        episodes = episodes.model_copy(update={"lookback": parse_lookback(lookback)})
    if not episodes.episodes:
        raise WatchdogError(f"{episodes_path}: no episodes in split {split!r}")
    variants = build_variants(ruleset, [parse_setting(s) for s in settings]) if settings else []
    store = app.open_store(_existing(db), readonly=True)
    try:
        if variants:
            click.echo(tuning.sweep_output(store, ruleset, variants, episodes, as_json), nl=False)
        else:
            from watchdog.tuning.backtest import result_json
            from watchdog.tuning.replay import replay as run_replay
            result = score(run_replay(store, ruleset), episodes, scored_rules(ruleset))
            click.echo(tuning.dumps(result_json(result)) + "\n" if as_json else render(result), nl=False)
    finally:
        store.close()


def _existing(db: str) -> str:
    if not Path(db).exists():
        raise WatchdogError(f"event log {db}: no such file")
    return db


# ---- audit ----
@cli.command()
@click.option("--db", required=True, help=DB_HELP)
@guarded
def audit(db):
    """Re-derive what the daemon did (seq order, recorded rule sets and config) and diff it
    against the log: every alert transition, and every notification decision — each flush
    requested (routing, grouping, timers), each suppression (silence, inhibition, mute,
    catch-up) and each attempt (was it owed, was its backoff over).

    Exit 0 when everything matches, 1 listing each difference with its seq.
    """
    from watchdog.alerting.decisions import audit_decisions
    from watchdog.tuning.replay import audit as run_audit
    from watchdog.store import iter_events
    store = app.open_store(_existing(db), readonly=True)
    try:
        report = run_audit(store)
        decisions = audit_decisions(iter_events(store))
    finally:
        store.close()
    differences = report.differences + decisions.differences
    for line in differences:
        click.echo(line)
    click.echo(f"audit: {report.checked} alert transitions and {decisions.checked} notification decisions "
               f"re-derived, {len(differences)} differences", err=True)
    sys.exit(1 if differences else 0)


# ---- import ----
@cli.command("import")
@click.option("--db", required=True, help=DB_HELP + " Created if missing.")
@click.option("--recorded-at", help="Fixed recorded_at for a reproducible log (ISO 8601 with offset).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@guarded
def import_(db, recorded_at, paths):
    """Import history files (or a folder such as data/history) into the log.

    Each fact carries its real publication time; importing the same files twice adds nothing.
    """
    from watchdog.sources.importer import import_paths
    from watchdog.model.timefmt import NEW_YORK, parse_user_time
    fixed = parse_user_time(recorded_at) if recorded_at else None
    store = app.open_store(db, now=(lambda: fixed) if fixed else app.system_now)
    # No row may be dated after the day the import really runs (New York); --recorded-at only
    # fixes the log's clock for a reproducible file, it does not move "today".
    today = app.system_now().astimezone(NEW_YORK).date()
    try:
        counts = import_paths(store, [Path(p) for p in paths], today=today)
    finally:
        store.close()
    for name, (seen, added) in counts.items():
        click.echo(f"{name}: {seen} facts read, {added} new events")


# ---- backfill ----
@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Daemon config (TOML).")
@click.option("--db", help=DB_HELP + " Overrides [store].path.")
@click.option("--source", "source_name", required=True,
              help="A configured source: nyfed, nyfed-operations, fred, fiscaldata, speeches.")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First observation date to fetch.")
@guarded
def backfill(config_path, db, source_name, since):
    """Fetch a source's history since a date through the same parsers as the daemon.

    Each fact carries its real publication time (never the fetch time), so `replay` sees it on
    time; a running daemon sees it late and records, but does not notify, old transitions.
    Existing facts are not duplicated; changed values become revisions.
    """
    config = app.resolve_config(config_path)
    source = app.source_named(config, source_name, os.environ)
    store = app.open_store(db or config.store.path)
    try:
        events = asyncio.run(_backfill(source, since.date()))
        stored = store.append(events)
    finally:
        store.close()
    facts = sum(1 for e in stored if e.type != "source-failed")
    failures = [e for e in stored if e.type == "source-failed"]
    click.echo(f"{source_name}: {len(events)} events fetched, {facts} new facts, {len(failures)} failures")
    for failure in failures:
        click.echo(f"  failed: {failure.payload['reason']}", err=True)


async def _backfill(source, since):
    import aiohttp
    async with aiohttp.ClientSession() as session:
        return await source.backfill(session, since, app.system_now())


# ---- silence ----
@cli.group()
def silence():
    """Silence alerts for a while (stored as events: live, audit and the status page see them)."""


@silence.command("add")
@click.option("--db", required=True, help=DB_HELP)
@click.option("--rule", "rule_id", help="Silence this rule id.")
@click.option("--match", "matchers", multiple=True, help="LABEL=VALUE to match (repeatable), e.g. area=repo.")
@click.option("--until", "until", required=True, help="End: ISO 8601 with offset, or a duration such as 4h or 2d.")
@click.option("--comment", required=True, help="Why (shown with every suppressed notification).")
@click.option("--by", "created_by", default=lambda: os.environ.get("USER", "unknown"), help="Who.")
@guarded
def silence_add(db, rule_id, matchers, until, comment, created_by):
    """Add a silence; prints its id."""
    import uuid
    from watchdog.alerting.silences import SilenceAdded, silence_added_event
    from watchdog.model.timefmt import parse_duration, parse_user_time, utc_text
    now = app.system_now()
    try:
        end = now + parse_duration(until)
    except ValueError:
        end = parse_user_time(until)
    exact = dict(m.split("=", 1) for m in matchers if "=" in m)
    if bad := [m for m in matchers if "=" not in m]:
        raise click.UsageError(f"--match takes LABEL=VALUE, got {bad[0]!r}")
    if rule_id:
        exact["rule"] = rule_id
    if not exact:
        raise click.UsageError("give --rule and/or --match")
    added = SilenceAdded(id=uuid.uuid4().hex[:12], matchers=exact, starts_at=utc_text(now),
                         ends_at=utc_text(end), comment=comment, created_by=created_by)
    store = app.open_store(db)
    try:
        store.append([silence_added_event(added)])
    finally:
        store.close()
    click.echo(f"{added.id}  until {added.ends_at}  {exact}")


@silence.command("list")
@click.option("--db", required=True, help=DB_HELP)
@click.option("--all", "show_all", is_flag=True, help="Also expired silences.")
@guarded
def silence_list(db, show_all):
    """List active (or all) silences."""
    from watchdog.model.events import SILENCE_ADDED, SILENCE_EXPIRED
    from watchdog.alerting.silences import fold_silences
    from watchdog.store import iter_events
    store = app.open_store(_existing(db), readonly=True)
    try:
        silences = fold_silences(iter_events(store, types={SILENCE_ADDED, SILENCE_EXPIRED}))
    finally:
        store.close()
    now = app.system_now()
    for s in sorted(silences.values(), key=lambda s: s.starts_at):
        if show_all or s.active(now):
            state = "active" if s.active(now) else "ended"
            click.echo(f"{s.id}  {state:<6}  until {s.end.isoformat()}  {dict(s.matchers)}  "
                       f"{s.created_by}: {s.comment}")


ADMINISTERED = ("iorb", "onrrp_rate", "srf_rate", "fftarget_upper", "fftarget_lower")


@cli.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--set", "settings", multiple=True, required=True, metavar="SERIES=RATE",
              help=f"A new rate in percent, repeatable: {', '.join(ADMINISTERED)} (e.g. iorb=3.65).")
@click.option("--effective", required=True, help="The date the new rates take effect (YYYY-MM-DD).")
@click.option("--announced", help="When they were announced (ISO 8601 with offset). Default: now.")
@click.option("--url", help="The implementation note or statement, kept as provenance.")
@guarded
def announce(db, settings, effective, announced, url):
    """Record an FOMC decision the moment it is announced, before any data feed carries it.

    FRED's copy of IORB arrives after the first SOFR fixing under the new rate, so without this
    the spreads of the effective date are first judged against the old IORB (and corrected as
    a revised input once FRED catches up). The facts are recorded like the importer's FOMC
    implementation-note rows: source fomc, published at the announcement. A mistyped rate is
    corrected by announcing again (recorded as a revision). Example, 2025-12-10 14:00 ET:

        watchdog announce --db events.db --effective 2025-12-11 --set iorb=3.65
        --set onrrp_rate=3.50 --set srf_rate=3.75 --announced 2025-12-10T14:00:00-05:00
    """
    from datetime import date as Date
    from decimal import Decimal, InvalidOperation
    from watchdog.model.events import Observation, new_observation
    from watchdog.model.numbers import norm
    from watchdog.model.redact import redact_url
    from watchdog.market.series import SERIES
    from watchdog.model.timefmt import parse_user_time, utc_text
    day = Date.fromisoformat(effective)
    at = parse_user_time(announced) if announced else app.system_now()
    if at.date() > day:
        raise click.UsageError(f"--announced {utc_text(at)} is after the effective date {day}")
    events = []
    for item in settings:
        series, _, raw = item.partition("=")
        if series not in ADMINISTERED:
            raise click.UsageError(f"--set {item!r}: series must be one of {', '.join(ADMINISTERED)}")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise click.UsageError(f"--set {item!r}: {raw!r} is not a rate in percent") from None
        if not value.is_finite() or not Decimal(-5) <= value <= Decimal(25):
            raise click.UsageError(f"--set {item!r}: {raw!r} is not a plausible rate in percent")
        # the announcement dates this value: a revision of an older copy (FRED's) is public
        # from the announcement on, not from when it was typed in (store: provenance.vintage)
        provenance = {"raw_value": raw, "raw_unit": "percent", "entered_with": "watchdog announce",
                      "announcement": utc_text(at), "vintage": utc_text(at),
                      **({"url": redact_url(url)} if url else {})}
        events.append(new_observation(Observation(
            series=series, date=day.isoformat(), value=norm(value), unit=SERIES[series].unit,
            source="fomc", provenance=provenance), utc_text(at)))
    store = app.open_store(db)
    try:
        stored = store.append(events)
    finally:
        store.close()
    for event in stored:
        p = event.payload
        click.echo(f"{event.type} {p['series']} {p['date']} = {p['value']}% (published {event.published_at})")
    if len(stored) < len(events):
        click.echo(f"{len(events) - len(stored)} unchanged: the log already holds that rate", err=True)


@cli.command("outbox")
@click.option("--db", required=True, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per notification.")
@guarded
def outbox_(db, as_json):
    """What the daemon still owes: each undelivered notification and why it waits.

    States: due (sent at the next delivery round), unknown (a send a crash or timeout left
    without an outcome: looked up in the channel or resent), backoff (a retry waits until
    not_before), queued (behind an earlier flush of its group, which goes first). Routing and
    grouping are the config the daemon last recorded (config-loaded).
    """
    from watchdog.model.config import Config
    from watchdog.model.events import CONFIG_LOADED
    from watchdog.alerting.outbox import Outbox
    from watchdog.alerting.dispatch import default_receivers
    from watchdog.store import iter_events
    from watchdog.model.timefmt import utc_text
    store = app.open_store(_existing(db), readonly=True)
    try:
        config = Config()
        for event in iter_events(store, types={CONFIG_LOADED}):
            config = Config.model_validate(event.payload["config"])
        box = Outbox(routes=list(config.routes), default_receivers=default_receivers(config))
        for event in iter_events(store):
            box.apply(event)
    finally:
        store.close()
    rows = box.pending(utc_text(app.system_now()))
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, sort_keys=True))
            continue
        wait = f" until {row['not_before']}" if row["state"] == "backoff" else ""
        click.echo(f"{row['receiver']:<10} {row['state']:<8}{wait}  flush {row['flush']} of {row['group']}  "
                   f"attempts {row['attempts']}  {', '.join(row['rules'])}")
    click.echo(f"outbox: {len(rows)} notifications owed", err=True)


@silence.command("expire")
@click.option("--db", required=True, help=DB_HELP)
@click.argument("silence_id")
@guarded
def silence_expire(db, silence_id):
    """End a silence now."""
    from watchdog.alerting.silences import SilenceExpired, silence_expired_event
    from watchdog.model.timefmt import utc_text
    store = app.open_store(db)
    try:
        if store.get(f"silence/{silence_id}/added") is None:
            raise WatchdogError(f"no silence {silence_id!r} in {db}")
        store.append([silence_expired_event(SilenceExpired(
            id=silence_id, expired_at=utc_text(app.system_now()),
            expired_by=os.environ.get("USER", "unknown")))])
    finally:
        store.close()
    click.echo(f"expired {silence_id}")


# ---- render / notify-test ----
SAMPLE_ALERT = {
    "rule": "sofr-over-iorb", "rule_hash": "0" * 64, "state": "firing", "date": "2019-09-17",
    "value": "315", "severity": "warning", "threshold": "10", "evaluated_at": "2019-09-18T12:00:00.000000Z",
    "reason": "315 > 10 for 2 business days", "summary": "SOFR is 315 bp over IORB",
    "labels": {"area": "repo"}, "cause_seq": 0, "deadline": "", "link": "", "sentences": [],
    "inputs": {"sofr": {"date": "2019-09-17", "value": "5.25", "published_at": "2019-09-18T12:00:00.000000Z"},
               "iorb": {"date": "2019-08-01", "value": "2.1", "published_at": "2019-07-31T18:00:00.000000Z"}},
}


@cli.command()
@click.option("--rule", "rule_id", help="Render the latest recorded alert of this rule (needs --db).")
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rule_paths", multiple=True,
              help="Replay --db with these rules instead and render the rule's latest transition "
                   "(a log of facts only, e.g. events.db.example, has no recorded alerts).")
@click.option("--date", "on_date", help="With --rule: the transition for this observation date (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["slack", "email", "console"]), default="slack", show_default=True)
@guarded
def render(rule_id, db, rule_paths, on_date, fmt):
    """Print exactly what a receiver would get for an alert (the latest of --rule, or a sample).

    Example: watchdog render --db events.db.example --rules rules --rule sofr-over-iorb
    --date 2019-09-17 --format email
    """
    if (rule_paths or on_date) and not rule_id:
        raise click.UsageError("--rules and --date need --rule")
    alert = _latest_alert(db, rule_id, list(rule_paths), on_date) if rule_id else SAMPLE_ALERT
    if fmt == "slack":
        from watchdog.notify.slack.send import format_slack_message
        click.echo(json.dumps(format_slack_message(alert), indent=2, ensure_ascii=False))
    elif fmt == "email":
        from watchdog.notify.email.send import format_email
        click.echo(format_email(alert, sender="watchdog@localhost", to=["you@localhost"], receiver="render").as_string())
    else:
        from watchdog.notify.console import format_line
        click.echo(format_line(alert))


def _latest_alert(db: str | None, rule_id: str, rule_paths: list[str], on_date: str | None) -> dict:
    """The latest alert of ``rule_id`` (on ``on_date``): recorded in the log, or replayed."""
    from watchdog.model.events import ALERT_FIRING, ALERT_FLAGGED, ALERT_RESOLVED
    from watchdog.store import iter_events
    if not db:
        raise click.UsageError("--rule needs --db")
    store = app.open_store(_existing(db), readonly=True)
    try:
        if rule_paths:
            from watchdog.tuning.replay import replay as run_replay
            from watchdog.rules.ruleset import load_rules
            found = (t.model_dump() for t in run_replay(store, load_rules(rule_paths))
                     if t.rule == rule_id and t.state != "pending")
        else:
            found = (e.payload for e in iter_events(store, types={ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})
                     if e.payload.get("rule") == rule_id)
        latest = None
        for payload in found:
            if on_date is None or payload.get("date") == on_date:
                latest = payload
    finally:
        store.close()
    if latest is None:
        where = "replayed" if rule_paths else "recorded"
        raise WatchdogError(f"no {where} alert of rule {rule_id!r}{f' for {on_date}' if on_date else ''} in {db}"
                            + ("" if rule_paths else " (a log of facts only? add --rules to replay it)"))
    return latest


@cli.command("notify-test")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Daemon config (TOML).")
@click.option("--receiver", required=True, help="The receiver to send a sample alert to.")
@guarded
def notify_test(config_path, receiver):
    """Send a clearly marked sample alert through one configured receiver; exit 1 if it fails."""
    config = app.resolve_config(config_path)
    notifiers = app.build_notifiers(config)
    if receiver not in notifiers:
        raise WatchdogError(f"no receiver {receiver!r} (configured: {', '.join(sorted(notifiers))})")
    sample = dict(SAMPLE_ALERT, summary="watchdog notify-test: this is a test message, not an alert",
                  rule="notify-test")
    result = asyncio.run(notifiers[receiver].send(sample, key=f"notify-test/{receiver}/{app.system_now().timestamp()}"))
    click.echo(f"{receiver}: {result.outcome}{' (permanent)' if result.permanent else ''} {result.detail}".rstrip())
    sys.exit(0 if result.outcome == "sent" else 1)


# ---- events ----
@cli.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable), e.g. observation-recorded.")
@click.option("--after", default=0, show_default=True, help="Start after this seq.")
@click.option("--limit", default=0, help="At most this many events (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@guarded
def events(db, types, after, limit, as_json):
    """List events of the log in seq order."""
    from watchdog.store import iter_events
    store = app.open_store(_existing(db), readonly=True)
    try:
        for n, event in enumerate(iter_events(store, after=after, types=set(types) or None), 1):
            if as_json:
                click.echo(json.dumps(event.model_dump(), sort_keys=True, ensure_ascii=False))
            else:
                click.echo(f"{event.seq:>8} {event.type:<22} {event.published_at} {event.key}")
            if limit and n >= limit:
                break
    finally:
        store.close()


# ---- verify ----
@cli.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--head", "head_hash", help="A hash taken earlier that must still be in the chain.")
def verify(db, head_hash):
    """Re-hash the whole chain. Exit 1 with `seq N: reason` for the first bad row."""
    from watchdog.model.errors import ChainBroken
    from watchdog.store import verify_file
    try:
        seq, digest = verify_file(db, head_hash)
    except ChainBroken as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except WatchdogError as exc:
        _fail(str(exc))
    click.echo(f"ok: {seq} events, head {digest}")


def main() -> None:
    app.tune_gc()
    cli(prog_name="watchdog")


if __name__ == "__main__":
    main()
