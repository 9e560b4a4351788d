"""Logging for the daemon: JSON lines for machines, plain text for people, never a secret.

- stderr is a terminal: ``2026-11-23 22:50:01 INFO watchdog.daemon.loop: polled nyfed: 3 new, 0 failed``.
- otherwise (a file, a pipe, a container runtime): one JSON object per line with ``ts``,
  ``level``, ``logger``, ``msg``, any ``extra=`` fields, and ``exc`` for a traceback.
- stderr is the journal (``$JOURNAL_STREAM`` names it): JSON without ``ts`` (journald stamps
  every line itself) behind an ``<N>`` syslog priority prefix, so ``journalctl -p warning``
  filters by level and ``journalctl -o cat`` prints pure JSON.

Every record passes ``SecretFilter`` on its way out, whichever library logged it: known secret
values (the FRED key, a Slack webhook URL or token, the SMTP password, any systemd credential)
are replaced in the message, the arguments, the traceback and the extra fields.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from watchdog.model.config import Config
from watchdog.model.redact import scrub
from watchdog.model.secrets import read_secret

# LogRecord attributes that are not ``extra=`` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# sd-daemon(3) priorities: journald strips the prefix and files the line under the level.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def __init__(self, journal: bool = False):
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {}
        if not self.journal:
            stamp = datetime.fromtimestamp(record.created, timezone.utc)
            body["ts"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body.update(level=record.levelname, logger=record.name, msg=record.getMessage())
        for key, value in extra_fields(record).items():
            body.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exc"] = record.exc_text
        text = json.dumps(body, default=str, ensure_ascii=False)
        return f"<{_priority(record)}>{text}" if self.journal else text


class TextFormatter(logging.Formatter):
    def __init__(self, journal: bool = False):
        super().__init__("%(levelname)s %(name)s: %(message)s" if journal
                         else "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = extra_fields(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return f"<{_priority(record)}>{text}" if self.journal else text


def _priority(record: logging.LogRecord) -> int:
    return _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)


class SecretFilter(logging.Filter):
    """Replaces known secret values in every record that reaches the handler. Formats the
    message first (a secret may sit in the arguments) and keeps the result."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for value in secrets:
            # longest first, so a token inside a webhook URL never leaves the URL's tail behind
            if value and len(value) >= 4 and value not in self.secrets:
                self.secrets.append(value)
        self.secrets.sort(key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), self.secrets), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        record.exc_info = None                   # formatted (and scrubbed) above
        for key, value in extra_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, scrub(value, self.secrets))
        return True


def on_journal(stream: IO, env: Mapping[str, str]) -> bool:
    """``$JOURNAL_STREAM`` is ``DEV:INODE`` of the journal socket systemd gave us; it is inherited,
    so compare it with what ``stream`` really is."""
    try:
        dev, inode = (int(part) for part in env.get("JOURNAL_STREAM", "").split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (dev, inode)


def setup_logging(level: str = "INFO", fmt: str = "auto", stream: IO | None = None,
                  env: Mapping[str, str] | None = None, secrets: Iterable[str] = ()) -> SecretFilter:
    """Install one handler on the root logger; returns its SecretFilter (``add`` more secrets
    once the config names them)."""
    stream = sys.stderr if stream is None else stream
    env = os.environ if env is None else env
    journal = on_journal(stream, env)
    if fmt == "auto":
        fmt = "text" if _isatty(stream) else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(journal) if fmt == "json" else TextFormatter(journal))
    secret_filter = SecretFilter(secrets)
    handler.addFilter(secret_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(max(root.level, logging.WARNING))
    return secret_filter


def _isatty(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def secret_values(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret this config can read (the values, for scrubbing), and every systemd
    credential file's content."""
    env = os.environ if env is None else env
    names = {"FRED_API_KEY"}
    if config.sources.fred is not None:
        names.add(config.sources.fred.api_key_env)
    for receiver in config.receivers.values():
        names.update(receiver.secret_envs)
    values = [v for name in sorted(names) if (v := read_secret(env, name))]
    directory = env.get("CREDENTIALS_DIRECTORY")
    if directory and Path(directory).is_dir():
        for path in sorted(Path(directory).iterdir()):
            try:
                values.append(path.read_text(encoding="utf-8").strip())
            except (OSError, UnicodeDecodeError):
                continue
    return values
