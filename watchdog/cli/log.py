"""Commands of the event log itself: ``events``, ``verify``, ``import``, ``backfill`` and
``audit``."""
from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path

import click

from watchdog import app
from watchdog.cli.common import DB_HELP, existing, fail, guarded
from watchdog.model.errors import ChainBroken, WatchdogError
from watchdog.model.timefmt import parse_user_time
from watchdog.sources.registry import SOURCE_NAMES
from watchdog.store import iter_events, verify_file


@click.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable), e.g. observation-recorded.")
@click.option("--after", default=0, show_default=True, help="Start after this seq.")
@click.option("--limit", default=0, help="At most this many events (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@guarded
def events(db, types, after, limit, as_json):
    """List events of the log in seq order."""
    with closing(app.open_store(existing(db), readonly=True)) as store:
        for n, event in enumerate(iter_events(store, after=after, types=set(types) or None), 1):
            if as_json:
                click.echo(json.dumps(event.model_dump(), sort_keys=True, ensure_ascii=False))
            else:
                click.echo(f"{event.seq:>8} {event.type:<22} {event.published_at} {event.key}")
            if limit and n >= limit:
                break


@click.command()
@click.option("--db", required=True, help=DB_HELP)
@click.option("--head", "head_hash", help="A hash taken earlier that must still be in the chain.")
def verify(db, head_hash):
    """Re-hash the whole chain. Exit 1 with `seq N: reason` for the first bad row."""
    try:
        seq, digest = verify_file(db, head_hash)
    except ChainBroken as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except WatchdogError as exc:
        fail(str(exc))
    click.echo(f"ok: {seq} events, head {digest}")


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


COMMANDS = [events, verify, import_, backfill, audit]
