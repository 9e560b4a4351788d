"""Commands that set up an install: ``init``."""
from __future__ import annotations

import click

from watchdog import app
from watchdog.cli.common import guarded


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--store", default="events.db", show_default=True,
              help="[store] path of the new config: the event log, relative to FOLDER unless "
                   "absolute. For the systemd unit use /var/lib/watchdog/events.db (its state "
                   "directory, the only place it can write).")
@click.option("--force", is_flag=True,
              help="Overwrite watchdog.toml, watchdog.service and the rule files if they exist "
                   "(files in credentials/ are never overwritten).")
@guarded
def init(folder, store, force):
    """Write a new install into FOLDER: a config, the default rules and a systemd unit.

    \b
    FOLDER/watchdog.toml      the shipped config (deploy/watchdog.toml): every source, a console
                              receiver; [store] path = --store, [rules] paths = ["rules"],
                              both relative to FOLDER
    FOLDER/rules/*.toml       the default rules (edit them; `watchdog check` validates)
    FOLDER/watchdog.service   the shipped unit, running this installation's watchdog on
                              FOLDER/watchdog.toml with credentials from FOLDER/credentials
    FOLDER/credentials/       one empty file (mode 0600) per credential the unit loads
                              (fred_api_key, slack_webhook_url, ...); put the secrets there

    FOLDER is created if needed. Nothing is written, and the command exits 1, if one of the
    files exists, unless --force. Prints what it wrote and the next commands.
    """
    done = app.init_install(folder, store=store, force=force)
    rules = done["rules"]
    click.echo(f"wrote {done['config']}  (store {done['store']}, rules {', '.join(done['rule_paths'])})")
    click.echo(f"wrote {rules[0].parent}/  ({len(rules)} rule files: {', '.join(p.name for p in rules)})")
    click.echo(f"wrote {done['unit']}  (systemd unit)")
    if done["credentials"]:
        click.echo(f"wrote {done['credentials_dir']}/  ({len(done['credentials'])} empty credential "
                   f"files: {', '.join(p.name for p in done['credentials'])})")
    for note in done["notes"]:
        click.echo(f"note: {note}")
    config = done["config"]
    click.echo("next:")
    click.echo(f"  watchdog check --config {config} --rules {rules[0].parent}")
    click.echo(f"  watchdog run --config {config} --once    # one poll; without a FRED key m2 and gdp are skipped")
    click.echo(f"  sudo install -m 0644 {done['unit']} /etc/systemd/system/watchdog.service")
    click.echo("  sudo systemctl daemon-reload && sudo systemctl enable --now watchdog")


COMMANDS = [init]
