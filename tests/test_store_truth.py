"""The store tells the truth about itself: not ready from the first refused write until a real
write succeeds (a liveness probe's empty append does not clear it); a log file deleted or
replaced under the running daemon is noticed, nothing more is acknowledged, /readyz names it and
every receiver is told directly; a log whose chain fails to verify is not extended unless the
operator says so, and that is recorded."""
from __future__ import annotations

import io
import os
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from test_clock import until
from test_web import JAN_2, daemon_for, small_log  # noqa: F401 (fixtures)
from watchdog.cli import cli
from watchdog.model.errors import StoreError
from watchdog.model.events import NewEvent
from watchdog.notify.console import ConsoleNotifier
from watchdog.store import SqliteEventStore, iter_events
from watchdog.http.server import build_app


def copy_log(source, db) -> None:
    """The small log, its WAL too (it may not be checkpointed)."""
    for suffix in ("", "-wal"):
        if os.path.exists(f"{source}{suffix}"):
            shutil.copy(f"{source}{suffix}", f"{db}{suffix}")


def expiry(name: str) -> NewEvent:
    return NewEvent(type="silence-expired", key=f"silence/{name}/expired",
                    payload={"id": name, "expired_at": "2026-01-02T00:00:00.000000Z"})


async def test_a_refused_write_keeps_the_daemon_unready_until_a_real_write_succeeds(daemon_for, aiohttp_client):
    daemon = await daemon_for(JAN_2)
    client = await aiohttp_client(build_app(daemon))
    daemon.store._w.execute("PRAGMA query_only = 1")              # SQLite refuses every write now
    with pytest.raises(StoreError, match="readonly"):
        await daemon._append([expiry("a")])
    await daemon.writer.append([])                                  # a liveness probe: not a write
    assert (await client.get("/readyz")).status == 503
    assert daemon.metrics.store_writable._value.get() == 0 and daemon.metrics.ready._value.get() == 0
    daemon.store._w.execute("PRAGMA query_only = 0")              # the disk is back ...
    assert (await client.get("/readyz")).status == 503             # ... but nothing proved it yet
    assert daemon.metrics.ready._value.get() == 0
    await daemon._append([expiry("b")])
    assert (await client.get("/readyz")).status == 200
    assert daemon.metrics.store_writable._value.get() == 1 and daemon.metrics.ready._value.get() == 1
    stored = [e.key for e in iter_events(daemon.store) if e.type == "silence-expired"]
    assert stored == ["silence/b/expired"]                          # the refused one was never stored
    from watchdog.tuning.replay import audit
    assert audit(daemon.store).differences == []


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_log_file_deleted_or_replaced_under_the_daemon_is_noticed_and_told(
        daemon_for, aiohttp_client, tmp_path, how):
    daemon = await daemon_for(JAN_2)
    screen = io.StringIO()
    daemon.notifiers = {"screen": ConsoleNotifier(screen)}
    client = await aiohttp_client(build_app(daemon))
    path = daemon.store.path
    head = daemon.store.head()
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    else:
        shutil.copy(path, tmp_path / "other.db")
        os.replace(tmp_path / "other.db", path)
    await daemon._probe_store()                                     # what the daemon does every 5 s
    body = await (await client.get("/readyz")).json()
    assert body["ready"] is False and f"was {how}" in " ".join(body["checks"]["store"]["reasons"])
    with pytest.raises(StoreError, match=f"was {how}"):            # nothing more acknowledged
        await daemon._append([expiry("c")])
    await until(lambda: "watchdog-store" in screen.getvalue(), "the receivers told directly")
    assert f"was {how}" in screen.getvalue() and screen.getvalue().count("watchdog-store") == 1
    assert daemon.store.head() == head


def _tamper(db, seq: int) -> None:
    """Change one payload behind the store's back (as test_cli's verify test does)."""
    conn = sqlite3.connect(db)
    conn.executescript(f"""
        CREATE TABLE evil AS SELECT * FROM events;
        UPDATE evil SET payload = replace(payload, '"comment":"', '"comment":"not ') WHERE seq = {seq};
        DROP TABLE events; ALTER TABLE evil RENAME TO events;""")
    conn.commit()
    conn.close()


def test_a_log_whose_chain_fails_is_not_extended_unless_the_operator_says_so(small_log, tmp_path):
    db = tmp_path / "events.db"
    copy_log(small_log, db)
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[store]\npath = "{db}"\n[rules]\npaths = []\n[http]\nenabled = false\n')
    runner = CliRunner()
    first = runner.invoke(cli, ["run", "--config", str(config), "--once", "--log-format", "text"])
    assert first.exit_code == 0, first.output
    store = SqliteEventStore(db, readonly=True)
    verified = store.verified_point()
    assert verified == store.head()                  # the next start re-hashes only what follows
    store.close()
    # appended while the daemon was stopped, then damaged: the next start re-hashes it
    silenced = runner.invoke(cli, ["silence", "add", "--db", str(db), "--rule", "sofr-over-iorb",
                                   "--until", "4h", "--comment", "month-end", "--by", "desk"])
    assert silenced.exit_code == 0, silenced.output
    conn = sqlite3.connect(db)
    seq = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    conn.close()
    _tamper(db, seq)
    refused = runner.invoke(cli, ["run", "--config", str(config), "--once"])
    assert refused.exit_code == 1
    assert f"the hash chain does not verify (seq {seq}: " in refused.output
    assert "watchdog verify --db" in refused.output and "--accept-broken-chain" in refused.output
    store = SqliteEventStore(db, readonly=True)
    assert store.head()[0] == seq                      # nothing appended to the broken log
    store.close()
    forced = runner.invoke(cli, ["run", "--config", str(config), "--once", "--accept-broken-chain"])
    assert forced.exit_code == 0, forced.output
    store = SqliteEventStore(db, readonly=True)
    started = [e for e in iter_events(store) if e.type == "daemon-started"][-1]
    store.close()
    assert started.payload["accepted_broken_chain"].startswith(f"seq {seq}: ")


async def test_a_start_re_hashes_only_what_came_after_the_verified_point(small_log, tmp_path):
    db = tmp_path / "events.db"
    copy_log(small_log, db)
    store = SqliteEventStore(db)
    store.mark_verified(*store.head())
    conn = sqlite3.connect(db)                       # a row before the point is changed ...
    conn.executescript("""
        CREATE TABLE evil AS SELECT * FROM events;
        UPDATE evil SET payload = '{"tampered":1,' || substr(payload, 2) WHERE seq = 2;
        DROP TABLE events; ALTER TABLE evil RENAME TO events;""")
    conn.commit()
    conn.close()
    assert store.head()[0] > 2
    assert store.verify_since_point() == store.head()   # ... which a start does not re-hash
    result = CliRunner().invoke(cli, ["verify", "--db", str(db)])   # the full verify does
    assert result.exit_code == 1 and result.output.startswith("seq 2: ")
    store.close()
