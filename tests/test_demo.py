"""`make demo`'s live part cannot rot: the driver runs (publishing the quarter in one round) and
the real daemon fetches, records, evaluates and notifies through the stand-in APIs, with no
source failure, an audit without differences and the status page saved."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(240)
async def test_demo_driver_runs_the_daemon_against_the_stand_in_apis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SLACK_WEBHOOK_URL"}   # console only
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "demo.run", "--quick", "--out", str(tmp_path), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await asyncio.wait_for(proc.communicate(), 220))[0].decode()
    assert proc.returncode == 0, out
    assert "0 source-failed" in out and "audit: " in out and " 0 differences" in out
    notes = (tmp_path / "notifications.txt").read_text()
    # the year-end episode, as the replay of the same history has it (README "Default rules")
    assert "[FIRING critical] funding-stress 2025-12-29" in notes
    assert "[FIRING warning] sofr-over-iorb 2025-12-29: SOFR is 12 bp over IORB" in notes
    assert "stale" not in notes                                    # stale.toml is left out live
    ready = json.loads((tmp_path / "readyz.json").read_text())
    assert ready["ready"] is True
    page = (tmp_path / "status.html").read_text()
    assert '<svg class="chart" data-series="sofr-iorb"' in page and 'data-rule="funding-stress"' in page
    assert "watchdog_chain_head_info" in (tmp_path / "metrics.txt").read_text()
