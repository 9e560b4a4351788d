"""Commands of the running daemon and of what an operator tells it: ``run``, ``notify-test``,
``outbox``, ``silence add|list|expire`` and ``announce``."""
from __future__ import annotations

import json
import os
import sys
from datetime import date

import click

from watchdog import app
from watchdog.cli.common import DB_HELP, RULES_HELP, SAMPLE_ALERT, existing, guarded
from watchdog.market.announce import ADMINISTERED, AnnouncementRefused
from watchdog.model.display import new_york_time
from watchdog.model.timefmt import parse_duration, parse_user_time


@click.command()
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

    With a PostgreSQL log ([store] url), two or three of these run as replicas: one leads by a
    lease (it alone polls, evaluates and notifies), the others follow the log warm and take
    over within about [store].lease_ttl + 2 s. A deposed leader exits 75 for systemd to restart
    it as a follower, and --once beside a leader is refused (README "Running two replicas").
    """
    app.run_daemon(config_path, db=db, rule_paths=list(rule_paths) or None, http=not no_http,
                   accept_broken_chain=accept_broken_chain, once=once, exit_when_idle=exit_when_idle,
                   every=every, log_level=log_level, log_format=log_format, on_cycle=_print_cycle)


def _print_cycle(r) -> None:
    click.echo(f"cycle: {r.text()}", err=True)


@click.command("notify-test")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Daemon config (TOML).")
@click.option("--receiver", required=True, help="The receiver to send a sample alert to.")
@guarded
def notify_test(config_path, receiver):
    """Send a clearly marked sample alert through one configured receiver; exit 1 if it fails."""
    sample = SAMPLE_ALERT.model_copy(update={
        "summary": "watchdog notify-test: this is a test message, not an alert", "rule": "notify-test"})
    result = app.send_test_notification(config_path, receiver, sample)
    click.echo(f"{receiver}: {result.outcome}{' (permanent)' if result.permanent else ''} {result.detail}".rstrip())
    sys.exit(0 if result.outcome == "sent" else 1)


@click.command("outbox")
@click.option("--db", required=True, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per notification.")
@guarded
def outbox(db, as_json):
    """What the daemon still owes: each undelivered notification and why it waits.

    States: due (sent at the next delivery round), unknown (a send a crash or timeout left
    without an outcome: looked up in the channel or resent), backoff (a retry waits until
    not_before), queued (behind an earlier flush of its group, which goes first). Routing and
    grouping are the config the daemon last recorded (config-loaded).
    """
    rows = app.owed_notifications(existing(db))
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, sort_keys=True))
            continue
        wait = f" until {row['not_before']}" if row["state"] == "backoff" else ""
        click.echo(f"{row['receiver']:<10} {row['state']:<8}{wait}  flush {row['flush']} of {row['group']}  "
                   f"attempts {row['attempts']}  {', '.join(row['rules'])}")
    click.echo(f"outbox: {len(rows)} notifications owed", err=True)


@click.group()
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
    """Add a silence; prints its id, its end (New York time) and what it matches.

    Example: watchdog silence add --db my.db --rule sofr-over-iorb --until 4h --comment "month-end, known"
    """
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
    added = app.add_silence(db, exact, now, end, comment, created_by)
    click.echo(f"{added.id}  until {new_york_time(added.ends_at)}  {_matchers_text(added.matchers, added.matchers_re)}")


@silence.command("list")
@click.option("--db", required=True, help=DB_HELP)
@click.option("--all", "show_all", is_flag=True, help="Also expired silences.")
@guarded
def silence_list(db, show_all):
    """List active (or all) silences: id, state, end (New York time), matchers, who and why."""
    now = app.system_now()
    for s in app.silences(existing(db)):
        if show_all or s.active(now):
            state = "active" if s.active(now) else "ended"
            click.echo(f"{s.id}  {state:<6}  until {new_york_time(s.end)}  {_matchers_text(s.matchers, s.matchers_re)}  "
                       f"{s.created_by}: {s.comment}")


def _matchers_text(exact, regexes) -> str:
    """``rule=sofr-over-iorb area=repo`` (the rule first); a regex matcher as ``speaker=~Powell|Williams``."""
    def order(item):
        return (item[0] != "rule", item[0])
    return " ".join([*(f"{k}={v}" for k, v in sorted(exact.items(), key=order)),
                     *(f"{k}=~{v}" for k, v in sorted(regexes.items(), key=order))])


@silence.command("expire")
@click.option("--db", required=True, help=DB_HELP)
@click.argument("silence_id")
@guarded
def silence_expire(db, silence_id):
    """End a silence now."""
    app.expire_silence(db, silence_id, expired_by=os.environ.get("USER", "unknown"))
    click.echo(f"expired {silence_id}")


# the options' names for the arguments market.announce names in a refusal
_ANNOUNCE_OPTION = {"announced": "--announced", "settings": "--set"}


@click.command()
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
    day = date.fromisoformat(effective)
    at = parse_user_time(announced) if announced else None
    try:
        stored, built = app.announce(db, list(settings), day, at, url)
    except AnnouncementRefused as refused:
        raise click.UsageError(f"{_ANNOUNCE_OPTION[refused.argument]} {refused.problem}") from None
    for event in stored:
        p = event.payload
        click.echo(f"{event.type} {p['series']} {p['date']} = {p['value']}% (published {event.published_at})")
    if len(stored) < built:
        click.echo(f"{built - len(stored)} unchanged: the log already holds that rate", err=True)


COMMANDS = [run, notify_test, outbox, silence, announce]
