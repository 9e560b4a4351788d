"""What every command room shares: the translation of our errors into one line and an exit code
(``guarded``), the help texts of the options many commands take, the check that a log to read
exists, and the sample alert ``render`` and ``notify-test`` send when there is no real one.

Exit codes: 0 ok; 1 the input is wrong or a check found differences/failures; 2 usage.

Optional packages (``OPTIONAL``) are imported lazily by the one option that needs them; when one
is missing, ``guarded`` names the extra that installs it instead of printing a traceback.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from watchdog.model.errors import ConfigError, RuleError, WatchdogError
from watchdog.model.events import ToldAlert
from watchdog.store.postgres import is_url

DB_HELP = ("Event log: a SQLite file, or a postgresql:// URL (its password from PGPASSWORD or "
           "a passfile, never in the URL).")
RULES_HELP = "A rules file or a folder of *.toml (non-recursive); repeatable."
DISTRIBUTION = "liquidity-watchdog"

# top-level module of an optional package -> (what needs it, the extra of pyproject.toml that installs it)
OPTIONAL = {
    "matplotlib": ("--report", "report"),
}


def fail(message: str, located: bool = False, code: int = 1) -> None:
    """One line per problem on stderr, exit 1 (or ``code``). Rule and config problems already
    start with ``FILE:LINE:`` (DESIGN's format) and are printed as they are."""
    click.echo(message if located else f"error: {message}", err=True)
    sys.exit(code)


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
            fail(str(exc), located=True)
        except WatchdogError as exc:
            fail(str(exc), code=getattr(exc, "exit_code", 1))
        except (ValueError, OSError) as exc:
            fail(str(exc))
        except ImportError as exc:
            if (message := missing_package(exc)) is None:
                raise                      # a name our own code lacks: a bug, its traceback helps
            fail(message)
    return wrapper


def missing_package(exc: ImportError) -> str | None:
    """One line for a package that is not there: the extra that installs an optional one
    (``OPTIONAL``), else a reinstall (a required dependency is missing). None for any other
    ImportError."""
    module = (exc.name or "").split(".")[0]
    if module in OPTIONAL:
        needs, extra = OPTIONAL[module]
        broken = "" if isinstance(exc, ModuleNotFoundError) else f" (installed, but it fails to import: {exc})"
        return f"{needs} needs {module}{broken}: pip install '{DISTRIBUTION}[{extra}]'"
    if isinstance(exc, ModuleNotFoundError) and module:
        return (f"the package providing {exc.name} is not installed (a dependency of {DISTRIBUTION}): "
                f"pip install --force-reinstall {DISTRIBUTION}")
    return None


def existing(db: str) -> str:
    """``db`` if the file is there (or it is a PostgreSQL URL: the server answers for it); else
    one clear line rather than SQLite's "unable to open"."""
    if not is_url(db) and not Path(db).exists():
        raise WatchdogError(f"event log {db}: no such file")
    return db


SAMPLE_ALERT = ToldAlert.model_validate({
    "rule": "sofr-over-iorb", "rule_hash": "0" * 64, "state": "firing", "date": "2019-09-17",
    "value": "315", "severity": "warning", "threshold": "10", "evaluated_at": "2019-09-18T12:00:00.000000Z",
    "reason": "315 > 10 for 2 business days", "summary": "SOFR is 315 bp over IORB",
    "labels": {"area": "repo"}, "cause_seq": 0, "deadline": "", "link": "", "sentences": [],
    "inputs": {"sofr": {"date": "2019-09-17", "value": "5.25", "published_at": "2019-09-18T12:00:00.000000Z"},
               "iorb": {"date": "2019-08-01", "value": "2.1", "published_at": "2019-07-31T18:00:00.000000Z"}},
})
