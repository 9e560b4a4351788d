"""Commands over history replayed: ``replay``, ``backtest`` and ``render``. How replay and
backtest stream what they print is ``tuning_output.py``."""
from __future__ import annotations

import json
from contextlib import closing

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
    run = ReplayRun(ruleset=load_rules(list(rule_paths)), as_json=as_json,
                    cutoff=utc_text(parse_user_time(as_of)) if as_of else None,
                    lo=since.date().isoformat() if since else None,
                    hi=until.date().isoformat() if until else None)
    if as_recorded and not as_of:
        raise click.UsageError("--as-recorded needs --as-of")
    run.recorded_by = run.cutoff if as_recorded else None
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
            run.write_report(report_path, shown, db)


DEFAULT_EPISODES = "episodes/default.toml"


@click.command()
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
    with closing(app.open_store(existing(db), readonly=True)) as store:
        if variants:
            results = app.sweep_results(store, ruleset, variants, episodes)
            click.echo(sweep_output(results, ruleset, variants, as_json), nl=False)
        else:
            result = score(run_replay(store, ruleset), episodes, scored_rules(ruleset))
            click.echo(dumps(result_json(result)) + "\n" if as_json else render(result), nl=False)


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
    """Print exactly what a receiver would get for an alert (the latest of --rule, or a sample).

    Example: watchdog render --db events.db.example --rules rules --rule sofr-over-iorb
    --date 2019-09-17 --format email
    """
    if (rule_paths or on_date) and not rule_id:
        raise click.UsageError("--rules and --date need --rule")
    if rule_id and not db:
        raise click.UsageError("--rule needs --db")
    alert = app.latest_alert(existing(db), rule_id, list(rule_paths), on_date) if rule_id else SAMPLE_ALERT
    if fmt == "slack":
        from watchdog.notify.slack.format import format_slack_message
        click.echo(json.dumps(format_slack_message(alert), indent=2, ensure_ascii=False))
    elif fmt == "email":
        from watchdog.notify.email.format import format_email
        click.echo(format_email(alert, sender="watchdog@localhost", to=["you@localhost"], receiver="render").as_string())
    else:
        from watchdog.notify.console import format_line
        click.echo(format_line(alert))


COMMANDS = [replay, backtest, render]
