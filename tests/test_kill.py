"""The issue's "done when": `watchdog run` (serve mode) is SIGKILLed mid-run against local fake
NY Fed/FRED servers and a fake Slack (webhook, and bot token), restarted, and afterwards every fetched
observation is in the log exactly once, every due alert reached Slack (at least once), nothing
is owed, and `watchdog audit` exits 0."""
from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from killharness import FakeSlack, Publisher, daemon_env, figures, run_args, settled, write_config
from test_production import until


async def _spawn(config, env):
    return await asyncio.create_subprocess_exec(*run_args(config), env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
async def test_sigkill_mid_run_then_restart_loses_no_fact_and_no_alert(aiohttp_server, tmp_path, mode):
    fed, slack = Publisher(), FakeSlack(delay=0.3, mode=mode)   # slow posts: kills land mid-delivery
    fed_server, slack_server = await aiohttp_server(fed.app()), await aiohttp_server(slack.app())
    slack_url = str(slack_server.make_url("")).rstrip("/")
    config = write_config(tmp_path, str(fed_server.make_url("")).rstrip("/"), slack_url, mode)
    env = daemon_env(dict(os.environ), slack_url)
    db = tmp_path / "events.db"
    rng = random.Random(20261123)
    fed.publish_days(2)
    for round_ in range(3):
        proc = await _spawn(config, env)
        await asyncio.sleep(rng.uniform(1.0, 2.5))           # inside ingest, evaluation or a post
        fed.publish_days(3)                                   # published while it runs ...
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        fed.publish_days(2)                                   # ... and while it is down
    proc = await _spawn(config, env)
    try:
        await until(lambda: settled(db, fed, slack), 45, "every fact recorded and every flush sent")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = figures(db, fed, slack)
    assert result.facts_published == len(fed.sofr) + 1 == 18
    assert result.facts_lost == 0 and result.facts_duplicated == 0, result
    assert result.transitions >= 1 and result.alerts_lost == 0 and result.flushes_owed == 0, result
    assert result.sent_not_received == 0, result
    assert result.audit_exit == 0, result.audit_output
    if mode == "bot":            # a send a kill left without an outcome is found, not reposted
        assert result.duplicate_notifications == 0, result
