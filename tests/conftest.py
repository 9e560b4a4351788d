from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def history_db(tmp_path_factory) -> Path:
    """The real shipped history imported once per test session (about a second)."""
    from watchdog.sources.history import import_paths
    from watchdog.store import SqliteEventStore
    from datetime import datetime, timezone
    path = tmp_path_factory.mktemp("history") / "events.db"
    fixed = datetime(2026, 9, 5, tzinfo=timezone.utc)
    store = SqliteEventStore(path, now=lambda: fixed)
    import_paths(store, [REPO / "data" / "history"])
    store.close()
    return path


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (tests/pgserver.py), started on first use by this worker."""
    from pgserver import PgServer
    server = PgServer().start()
    yield server
    server.stop()


_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost", "0.0.0.0", ""}


@pytest.fixture(autouse=True)
def no_network_but_loopback(monkeypatch):
    """Tests talk only to local servers: a lookup or connection to any other host fails loudly
    instead of reaching (or timing out on) the internet."""
    import socket
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def local(host) -> bool:
        host = host.decode() if isinstance(host, bytes) else str(host or "")
        return host in _LOCAL_HOSTS or host.startswith("127.")

    def getaddrinfo(host, *args, **kwargs):
        if not local(host):
            raise OSError(f"test tried to resolve {host!r}: tests use 127.0.0.1 only")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
            raise OSError(f"test tried to connect to {address!r}: tests use 127.0.0.1 only")
        return real_connect(self, address)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
