from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def history_db(tmp_path_factory) -> Path:
    """The real shipped history imported once per test session (about a second)."""
    from watchdog.importer import import_paths
    from watchdog.store import SqliteEventStore
    from datetime import datetime, timezone
    path = tmp_path_factory.mktemp("history") / "events.db"
    fixed = datetime(2026, 9, 5, tzinfo=timezone.utc)
    store = SqliteEventStore(path, now=lambda: fixed)
    import_paths(store, [REPO / "data" / "history"])
    store.close()
    return path
