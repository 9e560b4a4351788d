"""systemd's notify protocol, in a few lines of stdlib (sd_notify(3)): one datagram of
``KEY=VALUE`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` names an
abstract socket). Without ``$NOTIFY_SOCKET`` (not under systemd, or ``Type=simple``) every call
is a no-op, so the daemon runs the same everywhere.

``python-systemd`` would need libsystemd headers to build; ``sdnotify`` on PyPI is unmaintained
since 2017 and this is all it does.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("watchdog.daemon.sdnotify")


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # an abstract socket's name starts with a NUL byte; systemd writes it as '@'
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_usec = _watchdog_usec(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``, as sd_watchdog_enabled(3)
        advises), or None when systemd does not watch this process."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def notify(self, **fields: str | int) -> bool:
        """Send ``READY=1``, ``STATUS=…``, ``WATCHDOG=1``, ``STOPPING=1`` (as keyword arguments:
        ``notify(READY=1, STATUS="…")``). Never raises: a lost status line must not stop the
        daemon; a missed ping is what systemd's watchdog is for."""
        if not self.address:
            return False
        text = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode("utf-8"), self.address)
            return True
        except OSError as exc:
            if not self._warned:                 # once: a broken socket would flood the log
                log.warning("cannot notify systemd: %s", exc)
                self._warned = True
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(value: str | int) -> str:
    return " ".join(str(value).splitlines())


def _watchdog_usec(env: Mapping[str, str]) -> int:
    """``$WATCHDOG_USEC`` when it is meant for this process (``$WATCHDOG_PID`` unset or ours)."""
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return 0
    try:
        return max(0, int(env.get("WATCHDOG_USEC", "0")))
    except ValueError:
        return 0
