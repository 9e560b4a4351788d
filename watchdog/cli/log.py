"""Commands of the event log itself: ``events``, ``verify``, ``import``, ``backfill`` and
``audit``; and the log at a glance: ``status`` (what fires, every series' latest value and
staleness, what is owed) and ``series`` (values as CSV or JSON lines)."""
from __future__ import annotations

import csv
import json
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import click

from watchdog import app
from watchdog.cli.common import DB_HELP, RULES_HELP, existing, fail, guarded
from watchdog.model import display
from watchdog.model.errors import ChainBroken, WatchdogError
from watchdog.model.events import canonical_json
from watchdog.model.timefmt import parse_user_time
from watchdog.sources.registry import SOURCE_NAMES
from watchdog.store import iter_events
from watchdog.tuning.status import ROW_COLUMNS as SERIES_COLUMNS
from watchdog.tuning.status import attribute_columns as status_attribute_columns


@click.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable), e.g. observation-recorded.")
@click.option("--after", default=0, show_default=True, help="Start after this seq.")
@click.option("--limit", default=0, help="At most this many events (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (same as --format json).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="text: seq, type, published_at, key; json: one object per event; csv: a header, then "
                   "seq,type,key,published_at,recorded_at,payload with the payload as canonical JSON.")
@guarded
def events(db, types, after, limit, as_json, fmt):
    """List events of the log in seq order.

    `--format csv` is for spreadsheets and pandas (`pandas.read_csv`): times are UTC as stored,
    the payload column is the canonical JSON the chain hashes (decimals as exact strings).
    """
    fmt = "json" if as_json else fmt
    writer = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    with closing(app.open_store(existing(db), readonly=True)) as store:
        if writer:
            writer.writerow(EVENT_COLUMNS)
        for n, event in enumerate(iter_events(store, after=after, types=set(types) or None), 1):
            if writer:
                writer.writerow([event.seq, event.type, event.key, event.published_at, event.recorded_at,
                                 canonical_json(event.payload)])
            elif fmt == "json":
                click.echo(json.dumps(event.model_dump(), sort_keys=True, ensure_ascii=False))
            else:
                click.echo(f"{event.seq:>8} {event.type:<22} {event.published_at} {event.key}")
            if limit and n >= limit:
                break


EVENT_COLUMNS = ("seq", "type", "key", "published_at", "recorded_at", "payload")


@click.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--head", "head_hash", help="A hash taken earlier that must still be in the chain.")
def verify(db, head_hash):
    """Re-hash the whole chain. Exit 1 with `seq N: reason` for the first bad row."""
    try:
        seq, digest = app.verify_log(db, head_hash)
    except ChainBroken as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except WatchdogError as exc:
        fail(str(exc))
    click.echo(f"ok: {seq} events, head {digest}")


@click.command()
@click.option("--from", "source", required=True, help="The log to copy: a SQLite file or a postgresql:// URL.")
@click.option("--to", "target", required=True,
              help="Where to copy it: an empty (or partly copied) SQLite file or postgresql:// URL; created if missing.")
@guarded
def migrate(source, target):
    """Copy an event log between SQLite and PostgreSQL, row for row, every hash kept.

    Each row is checked against the chain before it is written; an interrupted copy continues
    where it stopped. Both logs are verified at the end and must have the same head.
    """
    copied, seq, digest = app.migrate(existing(source), target)
    click.echo(f"copied {copied} events; both logs verify to seq {seq}, head {digest}")


@click.command("import")
@click.option("--db", required=True, help=DB_HELP + " Created if missing.")
@click.option("--recorded-at", help="Fixed recorded_at for a reproducible log (ISO 8601 with offset).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@guarded
def import_(db, recorded_at, paths):
    """Import history files (or a folder such as data/history) into the log.

    Each fact carries its real publication time; importing the same files twice adds nothing.
    """
    fixed = parse_user_time(recorded_at) if recorded_at else None
    counts = app.import_history(db, [Path(p) for p in paths], recorded_at=fixed)
    for name, (seen, added) in counts.items():
        click.echo(f"{name}: {seen} facts read, {added} new events")


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Daemon config (TOML).")
@click.option("--db", help=DB_HELP + " Overrides [store].path.")
@click.option("--source", "source_name", required=True,
              help=f"A configured source: {', '.join(SOURCE_NAMES)}.")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First observation date to fetch.")
@guarded
def backfill(config_path, db, source_name, since):
    """Fetch a source's history since a date through the same parsers as the daemon.

    Each fact carries its real publication time (never the fetch time), so `replay` sees it on
    time; a running daemon sees it late and records, but does not notify, old transitions.
    Existing facts are not duplicated; changed values become revisions.
    """
    fetched, stored = app.backfill(config_path, source_name, db, since.date())
    facts = sum(1 for e in stored if e.type != "source-failed")
    failures = [e for e in stored if e.type == "source-failed"]
    click.echo(f"{source_name}: {len(fetched)} events fetched, {facts} new facts, {len(failures)} failures")
    for failure in failures:
        click.echo(f"  failed: {failure.payload['reason']}", err=True)


@click.command()
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
    with closing(app.open_store(existing(db), readonly=True)) as store:
        report = run_audit(store)
        decisions = audit_decisions(iter_events(store))
    differences = report.differences + decisions.differences
    for line in differences:
        click.echo(line)
    click.echo(f"audit: {report.checked} alert transitions and {decisions.checked} notification decisions "
               f"re-derived, {len(differences)} differences", err=True)
    sys.exit(1 if differences else 0)


# ---- at a glance ----

WIDTH = 80              # the text form of `status` fits an 80-column terminal


@click.command("status")
@click.option("--db", help=DB_HELP + " Overrides [store].path of --config.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Daemon config (TOML): its [store].path and [rules].paths.")
@click.option("--rules", "rule_paths", multiple=True,
              help=RULES_HELP + " Replay the log with these instead of reading recorded alerts.")
@click.option("--now", "now_text", help="Judge at this instant (ISO 8601 with offset, or a date: its end in "
                                         "New York); only what was published by then counts. Default: now.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: decimal strings, UTC times.")
@guarded
def status(db, config_path, rule_paths, now_text, as_json):
    """At a glance: what fires, every series' latest value, what is stale, what is owed.

    Firing: the alerts the log recorded (the last firing/resolved event per rule); with --rules,
    or when the log holds no alert events, the log's facts replayed with those rules (else the
    config's [rules].paths, default `rules`), deadlines ticked up to --now. Each alert: rule,
    severity, since (the date it fired for) and when that was known, its value against the
    threshold in the indicator's unit (SOFR-IORB 32 bp > 10 bp).

    Series: each catalogued series the log holds: its newest value, observation date, when it
    was published and how long ago, and the last 24 values as a sparkline. STALE when a newer
    value is overdue at --now: market series (SOFR, EFFR, ON RRP, TGA...) on their publication
    calendar (a staleness rule's grace for the series, else 2h); weekly, monthly and quarterly
    series by their own frequency (the median gap of their last dates); administered rates
    (IORB, the target range) hold until changed and are never stale.

    Owed: the notifications the daemon still owes now (as `watchdog outbox`).
    """
    now = parse_user_time(now_text) if now_text else None
    if not db and not config_path:
        raise click.UsageError("give --db (or --config with a [store] path)")
    result = app.glance(db, config_path, list(rule_paths) or None, now)
    if as_json:
        click.echo(json.dumps(result.as_json(), sort_keys=True, ensure_ascii=False))
        return
    for line in status_lines(result):
        click.echo(line)


def status_lines(result) -> list[str]:
    """The text form of ``watchdog status``: every line at most ``WIDTH`` characters."""
    lines = [f"watchdog status at {display.new_york_time(result.now)}", ""]
    lines += _firing_lines(result)
    lines += [""] + _series_lines(result)
    if result.gaps:
        lines += [""] + _gap_lines(result)
    if result.derived:
        lines += [""] + _derived_lines(result)
    lines += [""] + _owed_lines(result)
    return [cut for line in lines for cut in _fit(line)]


def _fit(line: str) -> list[str]:
    """``line``, wrapped under its own indent (plus 2) when it is wider than the terminal."""
    if len(line) <= WIDTH:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.wrap(line, WIDTH, initial_indent="", subsequent_indent=indent + "  ",
                         break_on_hyphens=False) or [line[:WIDTH]]


def _firing_lines(result) -> list[str]:
    where = {"recorded": "recorded alerts",
             "replayed": f"replayed with {', '.join(result.rule_paths)}"
                         + ("" if result.log_has_alerts else ": the log holds no alert events"),
             "none": "the log holds no alert events and no rules to replay: give --rules"}[result.alerts_from]
    lines = [f"Firing: {len(result.firing)} ({where})"]
    if not result.firing:
        lines.append("  nothing fires")
    for alert in result.firing:
        lines.append(f"  {alert.rule}  {alert.severity}  since {alert.since}")
        lines.append(f"    {alert.headline}; known {display.new_york_time(alert.known_at)}")
    return lines


def _series_lines(result) -> list[str]:
    stale = len(result.stale)
    lines = [f"Series: {len(result.series)}, {stale} stale (STALE: a newer value is overdue)"]
    if not result.series:
        return lines + ["  no observations in the log"]
    lines.append(f"  {'series':<14} {'latest':>11}  {'date':<10}  {'':<5}  recent values")
    for s in result.series:
        flag = "STALE" if s.stale else ("ok" if s.stale is False else "-")
        lines.append(f"  {s.series:<14} {display.quantity(s.value, s.unit):>11}  {s.date:<10}  {flag:<5}  "
                     f"{display.sparkline(s.recent)}".rstrip())
        due = f"; due: the value for {s.expected_date}" if s.stale else ""
        lines.append(f"    published {display.new_york_time(s.published_at)}, "
                     f"{display.duration(s.age)} ago{due}")
    lines.append("  stale judged by:")
    lines += [f"    {way}: {names}" for way, names in _judged(result.series)]
    return lines


def _gap_lines(result) -> list[str]:
    lines = [f"Missing data: {len(result.gaps)} (these rules are silent for want of data, "
             "not of stress)"]
    for gap in result.gaps:
        held = f"nothing after {gap.latest}" if gap.latest else "no facts in this log"
        lines.append(f"  {gap.series}: {held}; read by {', '.join(gap.rules)}")
        more = " (and speeches-new-york, speeches-dallas)" if gap.series == "speeches" else ""
        lines.append(f"    fetch it: watchdog backfill --source {gap.source} --since <date>{more}")
    return lines


def _derived_lines(result) -> list[str]:
    lines = [f"Derived series: {len(result.derived)} (computed from the facts above, "
             "as the rules read them)"]
    for d in result.derived:
        lines.append(f"  {d.series:<28} {display.quantity(d.value, d.display_unit):>11}  {d.date:<10}  "
                     f"{display.sparkline(d.recent)}".rstrip())
    return lines


def _judged(series) -> list[tuple[str, str]]:
    """How the series were judged, once per way: ``("sifma calendar, 2h grace", "tgcr, bgcr")``."""
    ways: dict[str, list[str]] = {}
    for s in series:
        ways.setdefault(s.judged_by, []).append(s.series)
    return [(way, ", ".join(names)) for way, names in ways.items()]


def _owed_lines(result) -> list[str]:
    if not result.owed:
        return ["Owed: nothing (the outbox is empty)"]
    lines = [f"Owed: {len(result.owed)} notifications"]
    for row in result.owed:
        wait = f" until {display.new_york_time(row['not_before'])}" if row.get("not_before") else ""
        lines.append(f"  {row['receiver']} {row['state']}{wait}: {', '.join(row['rules'])} "
                     f"(attempts {row['attempts']})")
    return lines


@click.command("series")
@click.option("--db", required=True, help=DB_HELP)
@click.argument("names", nargs=-1, required=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First observation date (inclusive).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last observation date (inclusive).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: a header, then one row per value; json: one object per line, the same fields.")
@click.option("--attributes", is_flag=True,
              help="Add a column per attribute the values carry (p1, p25, p75, p99, volume, ...); "
                   "empty where a value has none.")
@click.option("--revisions", is_flag=True,
              help="Every revision of each date, oldest first, with a `revision` column (0 = first "
                   "print); default: the latest revision per date.")
@guarded
def series(db, names, since, until, fmt, attributes, revisions):
    """The values of the named series (e.g. sofr iorb), for a spreadsheet or pandas.

    Columns: series, date (observation date), value (exact decimal, in the series' unit),
    published_at and recorded_at (UTC, as the log holds them), source; with --revisions,
    revision; with --attributes, one column per attribute. Rows: the series in the order
    named, then by date. `pandas.read_csv` reads the output as it is; read the value columns
    with `dtype=str` and `decimal.Decimal` to keep them exact.
    """
    rows = app.series_values(existing(db), list(names), since.date() if since else None,
                             until.date() if until else None, revisions)
    extra = status_attribute_columns(rows) if attributes else []
    columns = [*SERIES_COLUMNS, *(["revision"] if revisions else []), *extra]
    writer = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(columns)
    for row in rows:
        record = {"series": row.series, "date": row.date, "value": row.value,
                  "published_at": row.published_at, "recorded_at": row.recorded_at, "source": row.source,
                  **({"revision": row.revision} if revisions else {}),
                  **{name: row.attributes.get(name) for name in extra}}
        if writer:
            writer.writerow(["" if record[c] is None else record[c] for c in columns])
        else:
            click.echo(json.dumps(record, ensure_ascii=False))
    click.echo(f"series: {len(rows)} values of {', '.join(names)}", err=True)


COMMANDS = [events, verify, migrate, import_, backfill, audit, status, series]
