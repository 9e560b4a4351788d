"""The command line room: thin click commands, in groups by concern. A command parses its
options, calls the library (mostly ``watchdog.app``, the composition root) and prints what it
gets back; it decides nothing. Errors are one line, never a traceback (``common.guarded``).

- ``daemon.py``: run, notify-test, outbox, silence, announce (the running daemon and what an
  operator tells it)
- ``log.py``: events, verify, import, backfill, audit (the event log itself)
- ``rules.py``: check, schema, test-rules (rule files)
- ``setup.py``: init (a new install: config, default rules, systemd unit)
- ``tuning.py``: replay, backtest, render (history replayed), with ``tuning_output.py`` (how
  they stream their output)
- ``common.py``: error translation, shared option help, the sample alert

May import ``watchdog.app`` and every room below it (import contract "Layers point down");
no room imports it. ``main`` is the entry point of the ``watchdog`` console script and of
``python -m watchdog``.

To add a command: open the module of its concern above, write the command there (options,
``@guarded``, one call, the printing) and list it in that module's ``COMMANDS``; what it does
goes in the library, a new function in ``watchdog/app.py`` when it composes the store and
others.
"""
from __future__ import annotations

import click

from watchdog import __version__, app
from watchdog.cli import daemon, log, rules, setup, tuning


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="watchdog")
def cli() -> None:
    """watchdog: event-sourced alerts on US dollar funding-market stress.

    Polls the NY Fed, FRED and other public sources into an append-only, hash-chained SQLite
    event log, evaluates TOML rules (spreads such as SOFR-IORB in exact basis points), notifies,
    and replays history exactly as it was known.
    """


for command in (*daemon.COMMANDS, *log.COMMANDS, *rules.COMMANDS, *tuning.COMMANDS, *setup.COMMANDS):
    cli.add_command(command)


def main() -> None:
    app.tune_gc()
    cli(prog_name="watchdog")
