"""Commands over history replayed: ``replay``, ``backtest`` and ``render``. How replay and
backtest stream what they print is ``tuning_output.py``."""
from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import click

from watchdog import app
from watchdog.cli.common import DB_HELP, RULES_HELP, SAMPLE_ALERT, existing, guarded
from watchdog.cli.tuning_output import ReplayRun, dumps, print_dry_run, sweep_output
from watchdog.model.errors import WatchdogError
from watchdog.model.timefmt import parse_user_time, utc_text
from watchdog.rules.ruleset import load_rules


@click.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--rules", "rule_paths", multiple=True, required=True, help=RULES_HELP)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Print transitions dated on/after (warm-up still uses all history).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Print transitions dated on/before.")
@click.option("--as-of", "as_of", help="Only facts published by this instant (ISO 8601 with offset, e.g. 2025-11-01T00:00:00-04:00).")
@click.option("--as-recorded", is_flag=True,
              help="With --as-of: also only facts this log had recorded by then (what a daemon writing "
                   "this log could have seen; history imported later is left out).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per transition (with --diff: per difference, then per rule).")
@click.option("--format", "fmt", type=click.Choice(["text", "csv"]), default="text", show_default=True,
              help="csv: one row per transition (date, rule, state, severity, value, threshold, known_at, "
                   "summary; exact values, known_at in UTC) for a notebook. --json is the JSON form.")
@click.option("--pending", "show_pending", is_flag=True,
              help="Also print pending transitions (a condition waiting out its `for`); hidden by default, "
                   "and never printed with --json.")
@click.option("--rule", "rule_ids", multiple=True, metavar="ID",
              help="Print only this rule's transitions (repeatable). The replay still runs every rule "
                   "(composites need their members).")
@click.option("--state", "states", multiple=True, type=click.Choice(["firing", "resolved", "flagged", "pending"]),
              help="Print only transitions to this state (repeatable; pending implies --pending).")
@click.option("--severity", "severities", multiple=True, type=click.Choice(["info", "warning", "critical"]),
              help="Print only transitions of rules of this severity (repeatable).")
@click.option("--diff", "diff_paths", multiple=True,
              help="Replay this other rule set too (file or folder; repeatable) and print the alerts that appear, disappear or move, per rule.")
@click.option("--max-shift", default=5, show_default=True, type=click.IntRange(0, 260),
              help="With --diff: a transition at most this many business days away is a move.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report here: a chart per indicator (units, "
                   "thresholds, alert markers), the alert table by episode. The labelled episodes of "
                   "episodes/default.toml (else the copy shipped with watchdog) are shaded.")
@click.option("--notify-dry-run", "dry_run", is_flag=True,
              help="Print what each receiver would have been sent, and when (the routes, grouping "
                   "timers, inhibition and mutes of --config), instead of the transitions.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Daemon config for --notify-dry-run (default: one console receiver).")
@guarded
def replay(db, rule_paths, since, until, as_of, as_recorded, as_json, fmt, show_pending, rule_ids, states,
           severities, diff_paths, max_shift, report_path, dry_run, config_path):
    """Replay the log with a rule set, as an ideal daemon would have seen it.

    Facts are consumed in publication order; `known_at` is when the transition could first have
    been known. Nothing published after --as-of is used (with --as-recorded, nor anything this
    log recorded after it). The text timeline starts with one header line (log, rule set,
    window, selection), shows values with their units and ends with the counts; it hides
    pending transitions (a
    condition waiting out its `for`) unless --pending. --rule, --state and --severity select
    what is printed (text, csv and --json). --json prints firing, resolved and flagged only.
    On a terminal, a progress bar runs on stderr. Memory stays flat however long the log.

    Example: watchdog replay --db events.db.example --rules rules --since 2019-09-01
    --until 2019-10-31 --rule sofr-over-iorb --state firing
    """
    if fmt == "csv" and as_json:
        raise click.UsageError("--format csv and --json are two outputs: pick one")
    if fmt == "csv" and (diff_paths or dry_run):
        raise click.UsageError("--format csv is the transitions' table: not with --diff or --notify-dry-run")
    run = ReplayRun(ruleset=load_rules(list(rule_paths)), as_json=as_json,
                    cutoff=utc_text(parse_user_time(as_of)) if as_of else None,
                    lo=since.date().isoformat() if since else None,
                    hi=until.date().isoformat() if until else None)
    if as_recorded and not as_of:
        raise click.UsageError("--as-recorded needs --as-of")
    run.recorded_by = run.cutoff if as_recorded else None
    run.select(rules=rule_ids, states=states, severities=severities,
               pending=show_pending or "pending" in states, fmt=fmt, db=db)
    with closing(app.open_store(existing(db), readonly=True)) as store:
        if dry_run:
            from watchdog.tuning.replay import replay as run_replay
            config = app.resolve_config(config_path) if config_path else None
            print_dry_run(run_replay(store, run.ruleset, as_of=run.cutoff, recorded_by=run.recorded_by),
                          config, run.lo, run.hi, as_json, until=run.cutoff)
            return
        if diff_paths:
            shown = run.diff(store, load_rules(list(diff_paths)), max_shift, keep=bool(report_path))
        else:
            shown = run.timeline(store, keep=bool(report_path))
        if report_path:
            from watchdog.tuning.episodes import load_episodes
            period = " ".join(x for x in (f"from {run.lo}" if run.lo else "", f"to {run.hi}" if run.hi else "",
                                          f"as of {run.cutoff}" if run.cutoff else "") if x)
            write_report(report_path, series=run.collector.series(), ruleset=run.ruleset, transitions=shown,
                         episodes=load_episodes(DEFAULT_EPISODES).episodes,
                         title=f"watchdog replay of {Path(db).name} {period}".strip(),
                         since=run.lo, until=run.hi, as_of=run.cutoff)


def write_report(path: str, *, since: str | None = None, until: str | None = None, **report) -> None:
    """``--report`` of replay and backtest: the HTML report (watchdog.tuning.report) to ``path``."""
    from datetime import date

    from watchdog.tuning.report import build_report
    page = build_report(since=date.fromisoformat(since) if since else None,
                        until=date.fromisoformat(until) if until else None, **report)
    Path(path).write_text(page, encoding="utf-8")
    click.echo(f"report: {path}", err=True)


DEFAULT_EPISODES = "episodes/default.toml"


@click.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--rules", "rule_paths", multiple=True, required=True, help=RULES_HELP)
@click.option("--episodes", "episodes_path", default=DEFAULT_EPISODES, show_default=True,
              help="Labelled episodes (TOML): name, start, end, kind (stress | selected-date | calm), split. Where "
                   "./episodes/default.toml does not exist, the default is the copy shipped with watchdog.")
@click.option("--split", type=click.Choice(["calibration", "held-back", "all"]), default="all", show_default=True,
              help="Score only the episodes of this split.")
@click.option("--lookback", help="Business days before an episode's start an alert still counts, e.g. 10bd; "
                                 "replaces the file's `lookback` (an episode's own lookback stays).")
@click.option("--set", "settings", multiple=True, metavar="RULE.FIELD=VALUES",
              help="Sweep a rule field: 5..30:5 (range, step), a,b,c (list) or one value; repeatable "
                   "(every combination). Prints one row per variant.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON instead of tables: one object (or one per variant with --set).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write the HTML replay report here, the scored episodes shaded on every chart "
                   "(not with --set).")
@guarded
def backtest(db, rule_paths, episodes_path, split, lookback, settings, as_json, report_path):
    """Score the rules against labelled episodes: caught, lead time, false alarms, precision.

    An episode is caught by a rule when one of its alerts (a `firing` of a threshold or
    composite rule) is first known within [start - lookback, end]; lead time is business days
    from that known day to the start (positive = warned before). A firing first known inside a
    calm episode is a false alarm. With --set, every variant is evaluated in one pass over the
    log and compared in one table.
    """
    from watchdog.tuning.backtest import backtest as score
    from watchdog.tuning.backtest import render, result_json, scored_rules
    from watchdog.tuning.episodes import load_episodes, parse_lookback
    from watchdog.tuning.replay import replay as run_replay
    from watchdog.tuning.sweep import build_variants, parse_setting
    ruleset = load_rules(list(rule_paths))
    episodes = load_episodes(episodes_path).select(split)
    if lookback:
        episodes = episodes.model_copy(update={"lookback": parse_lookback(lookback)})
    if not episodes.episodes:
        raise WatchdogError(f"{episodes_path}: no episodes in split {split!r}")
    variants = build_variants(ruleset, [parse_setting(s) for s in settings]) if settings else []
    if variants and report_path:
        raise click.UsageError("--report charts one rule set: leave out --set")
    with closing(app.open_store(existing(db), readonly=True)) as store:
        if variants:
            results = app.sweep_results(store, ruleset, variants, episodes)
            click.echo(sweep_output(results, ruleset, variants, as_json), nl=False)
        else:
            collector = None
            if report_path:                   # matplotlib (the report extra) only when asked for
                from watchdog.tuning.report import SeriesCollector, series_names
                collector = SeriesCollector(series_names(ruleset))
            transitions = list(run_replay(store, ruleset, on_fact=collector))
            result = score(transitions, episodes, scored_rules(ruleset))
            click.echo(dumps(result_json(result)) + "\n" if as_json else render(result), nl=False)
            if report_path:
                write_report(report_path, series=collector.series(), ruleset=ruleset, transitions=transitions,
                             episodes=episodes.episodes, title=f"watchdog backtest of {Path(db).name} "
                             f"({split} episodes of {episodes_path})")


@click.command()
@click.option("--rule", "rule_id", help="Render the latest recorded alert of this rule (needs --db).")
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rule_paths", multiple=True,
              help="Replay --db with these rules instead and render the rule's latest transition "
                   "(a log of facts only, e.g. events.db.example, has no recorded alerts).")
@click.option("--date", "on_date", help="With --rule: the transition for this observation date (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["slack", "email", "console"]), default="slack", show_default=True)
@guarded
def render(rule_id, db, rule_paths, on_date, fmt):
    """Print exactly what a receiver would get for an alert (the latest of --rule, or a sample):
    values with their units, times in New York, the rule's description and, for a threshold
    rule, the sparkline of its last 20 values up to the alert (Slack, email and console alike).

    Example: watchdog render --db events.db.example --rules rules --rule sofr-over-iorb
    --date 2019-09-17 --format email
    """
    if (rule_paths or on_date) and not rule_id:
        raise click.UsageError("--rules and --date need --rule")
    if rule_id and not db:
        raise click.UsageError("--rule needs --db")
    if rule_id:
        alert, recent = app.alert_to_render(existing(db), rule_id, list(rule_paths), on_date)
        values = [str(v) for v in recent]
    else:
        alert, values = SAMPLE_ALERT, []
    if fmt == "slack":
        from watchdog.notify.slack.format import format_slack_message
        click.echo(json.dumps(format_slack_message(alert, sparkline_values=values or None), indent=2,
                              ensure_ascii=False))
    elif fmt == "email":
        from watchdog.notify.email.format import format_email
        click.echo(format_email(alert, sender="watchdog@localhost", to=["you@localhost"], receiver="render",
                                sparkline_values=values).as_string())
    else:
        from watchdog.notify.console import format_line, spark_line
        click.echo(format_line(alert))
        if values:
            click.echo(spark_line(alert, values))


COMMANDS = [replay, backtest, render]
