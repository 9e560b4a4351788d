"""Reading a secret (FRED key, Slack webhook or token, SMTP password): from the environment,
else from a systemd credential (``LoadCredential=`` puts files in ``$CREDENTIALS_DIRECTORY``).
The value is never logged; only a credential file's path may be."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("watchdog.model.secrets")


def read_secret(env: Mapping[str, str], var: str, *, keep_spaces: bool = False) -> str | None:
    """``$var``, else ``$CREDENTIALS_DIRECTORY/<var lowercased>`` (or ``<var>`` exactly); None if
    neither. Surrounding whitespace is dropped unless ``keep_spaces`` (a password may hold
    spaces): then only a credential file's trailing newline is."""
    value = env.get(var) or ""
    value = value if keep_spaces else value.strip()
    if value:
        return value
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    for name in dict.fromkeys((var.lower(), var)):
        path = Path(directory) / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read credential %s: %s", path, type(exc).__name__)
            continue
        value = text.rstrip("\r\n") if keep_spaces else text.strip()
        if value:
            return value
    return None
