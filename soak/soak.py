"""`make soak`: 100 SIGKILLs of `watchdog run` at random points of start-up, ingest, evaluation and
delivery, against local fake NY Fed/FRED servers and a fake Slack webhook that keep publishing and
answering; then one clean run to settle, and the figures:

    events lost, alerts lost (a rule whose final state Slack was not told last), duplicate
    notifications (the same flush received twice: at-least-once delivery to a webhook, which
    cannot be asked whether a post landed before the crash), and `watchdog audit`.

Exits 1 if any event or alert is lost or the audit finds a difference. No network beyond
127.0.0.1. Usage: python soak/soak.py [--kills 100] [--seed 1] [--keep DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from aiohttp import web  # noqa: E402

from killharness import FakeSlack, Publisher, daemon_env, figures, run_args, settled, write_config  # noqa: E402


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def one_kill(config: Path, env: dict, rng: random.Random, fed: Publisher, slack: FakeSlack) -> str:
    """Start the daemon, let it run a random while (publishing meanwhile), SIGKILL it."""
    slack.delay = rng.choice([0.0, 0.05, 0.3])               # sometimes posts are slow
    proc = await asyncio.create_subprocess_exec(*run_args(config), env=env, cwd=REPO,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(rng.uniform(0.3, 2.0))
    fed.publish_days(rng.randint(0, 2))
    await asyncio.sleep(rng.uniform(0.0, 1.0))
    if proc.returncode is not None:
        return f"exited by itself with {proc.returncode}"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    fed.publish_days(rng.randint(0, 2))                       # published while it is down
    return ""


async def settle(config: Path, env: dict, db: Path, fed: Publisher, slack: FakeSlack) -> int:
    slack.delay = 0.0
    proc = await asyncio.create_subprocess_exec(*run_args(config), env=env, cwd=REPO,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not settled(db, fed, slack) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        print(err.decode()[-3000:], file=sys.stderr)
    return proc.returncode


async def soak(kills: int, seed: int, workdir: Path, mode: str = "webhook") -> int:
    rng = random.Random(seed)
    fed, slack = Publisher(), FakeSlack(mode=mode)
    fed_runner, fed_url = await serve(fed.app())
    slack_runner, slack_url = await serve(slack.app())
    config = write_config(workdir, fed_url, slack_url, mode)
    env = daemon_env(dict(os.environ), slack_url)
    db = workdir / "events.db"
    fed.publish_days(2)
    started = time.monotonic()
    odd = []
    try:
        for i in range(kills):
            note = await one_kill(config, env, rng, fed, slack)
            if note:
                odd.append(f"run {i + 1}: {note}")
            if (i + 1) % 10 == 0:
                print(f"soak: {i + 1}/{kills} SIGKILLs, {len(fed.sofr)} days published, "
                      f"{len(slack.texts)} Slack messages, {time.monotonic() - started:.0f} s", flush=True)
        code = await settle(config, env, db, fed, slack)
        result = figures(db, fed, slack)
    finally:
        await fed_runner.cleanup()
        await slack_runner.cleanup()
    elapsed = time.monotonic() - started
    print(f"soak ({mode}): {kills} SIGKILLs in {elapsed:.0f} s (seed {seed}); final clean run exited {code}")
    print(f"events lost: {result.facts_lost} of {result.facts_published} published facts "
          f"(duplicated in the log: {result.facts_duplicated})")
    print(f"alerts lost: {result.alerts_lost} ({result.transitions} transitions recorded; "
          f"flushes still owed: {result.flushes_owed})")
    print(f"duplicate notifications: {result.duplicate_notifications} of {result.notifications_received} "
          f"Slack messages received (recorded as sent but never received: {result.sent_not_received})")
    print(f"audit: exit {result.audit_exit}: {result.audit_output.strip().splitlines()[-1] if result.audit_output.strip() else ''}")
    for line in odd:
        print(f"note: {line}")
    return 0 if result.ok and code == 0 and not odd else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it (the event log).")
    parser.add_argument("--slack", choices=["webhook", "bot"], default="webhook",
                        help="webhook: at-least-once (a crash mid-post resends); bot: a bot token, whose "
                             "channel history is searched for the idempotency key before a resend")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        sys.exit(asyncio.run(soak(args.kills, args.seed, args.keep, args.slack)))
    with tempfile.TemporaryDirectory(prefix="watchdog-soak-") as tmp:
        sys.exit(asyncio.run(soak(args.kills, args.seed, Path(tmp), args.slack)))


if __name__ == "__main__":
    main()
