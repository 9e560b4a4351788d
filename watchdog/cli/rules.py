"""Commands of rule files: ``check``, ``schema`` and ``test-rules``."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from watchdog import app
from watchdog.cli.common import RULES_HELP, guarded
from watchdog.rules.ruleset import load_rules


@click.command()
@click.option("--rules", "rule_paths", multiple=True, help=RULES_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Also validate this daemon config, and the rules its [rules] paths name when no "
                   "--rules is given (relative paths resolve against the config file's folder).")
@guarded
def check(rule_paths, config_path):
    """Validate rule files (and a daemon config) without running anything.

    Problems are printed as FILE:LINE: rule ID: FIELD: message, one per line; exit 1 if any.
    """
    if not rule_paths and not config_path:
        raise click.UsageError("give --rules and/or --config")
    if config_path:
        config = app.resolve_config(config_path)
        app.build_notifiers(config)
        click.echo(f"ok: config {config_path}")
        if not rule_paths:                    # what the daemon would run with this config
            rule_paths = tuple(config.rules.paths)
    if rule_paths:
        ruleset = load_rules(list(rule_paths))
        kinds = [(len(ruleset.rules), "threshold"), (len(ruleset.keyword_rules), "keyword"),
                 (len(ruleset.composite_rules), "composite"), (len(ruleset.revision_rules), "revision"),
                 (len(ruleset.staleness_rules), "staleness")]
        shown = ", ".join(f"{n} {kind}" for n, kind in kinds if n)
        click.echo(f"ok: {len(ruleset)} rules ({shown}; rule set {ruleset.hash[:12]})")


@click.command("test-rules")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Also write JUnit XML here (for CI).")
@guarded
def test_rules(files, junit_path):
    """Run promtool-style unit tests of rules: input series by date, expected alerts by date.

    Each test file names its rule files (`rule_files`), gives `[test.series]` values by date
    (gaps are holidays), and lists `[[test.expect]]` transitions (rule, state, date, value).
    Exit 1 if any test fails.
    """
    from watchdog.tuning.ruletest import (
        exit_code,
        junit_xml,
        render_text,
        run_rule_tests,
    )
    results = run_rule_tests(list(files))
    click.echo(render_text(results), nl=False)
    if junit_path:
        Path(junit_path).write_text(junit_xml(results), encoding="utf-8")
    sys.exit(exit_code(results))


@click.command()
def schema():
    """Print the JSON Schema of rule files (for editors: point your TOML plugin at it)."""
    from watchdog.rules.schema import rules_json_schema_text
    click.echo(rules_json_schema_text(), nl=False)


COMMANDS = [check, schema, test_rules]
