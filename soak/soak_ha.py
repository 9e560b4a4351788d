"""`make soak-ha`: three replicas of `watchdog run` on one PostgreSQL log (a real server started
for the run, tests/pgserver.py), and 50 disruptions of whichever leads: SIGKILL, or SIGSTOP held
until another replica has taken over (a paused leader past its lease, which must wake to append
nothing and exit 75). Meanwhile a fake NY Fed/FRED keeps publishing and a fake Slack sometimes
fails or answers slowly. A killed or deposed replica is started again, as systemd would.

Run once with a bot token (a send whose outcome a failover left unknown is looked up by its
message metadata before any resend: no duplicate) and once with a webhook (it cannot be asked:
at most one duplicate per failover), then prints

    SOAK-HA kills=<n> facts_lost=<n> alerts_lost=<n> duplicates=<n> (bot) <n> (webhook) max_takeover_s=<x>

A takeover is measured from the disruption to the commit of the new leader's ``daemon-started``
(from then on it polls, evaluates and delivers), on the one machine clock both read. Exits 1 on
any lost fact or alert, a bot duplicate, an audit difference, a paused leader that appended after
its term, or a takeover of 30 s or more. Usage: python soak/soak_ha.py [--kills 50] [--seed 1]
[--lease-ttl 10s] [--mode bot|webhook|both]
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
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from killharness import FakeSlack, Publisher, daemon_env, figures, settled, write_config  # noqa: E402
from killharness import pg_leader as _leader, pg_rows as _rows  # noqa: E402
from pgserver import PgServer  # noqa: E402
from soak import serve  # noqa: E402

TAKEOVER_LIMIT = 30.0


@dataclass
class Replicas:
    configs: list[Path]
    env: dict
    logs: Path
    procs: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)   # slot -> process
    exits: list[str] = field(default_factory=list)

    async def start(self, slot: int) -> None:
        log = open(self.logs / f"replica-{slot}.log", "ab")
        self.procs[slot] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watchdog", "run", "--config", str(self.configs[slot]), "--no-http",
            "--log-format", "json", env=self.env, cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=log)
        log.close()

    def slot_of(self, holder: str) -> int | None:
        pid = int(holder.rsplit("/", 1)[1])
        return next((slot for slot, p in self.procs.items() if p.pid == pid), None)

    async def stop_all(self) -> list[int]:
        codes = []
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                codes.append(await asyncio.wait_for(proc.wait(), 60))
            except asyncio.TimeoutError:
                proc.kill()
                codes.append(await proc.wait())
        return codes


async def _wait_leader(url: str, other_than: str | None, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(_leader, url)
        if found is not None and found[0] != other_than:
            return found
        await asyncio.sleep(0.1)
    return None


def _trouble(rng: random.Random, slack: FakeSlack, mode: str) -> None:
    """Slack sometimes fails (a 503, retried later) and sometimes answers slowly."""
    endpoint = "chat.postMessage" if mode == "bot" else "webhook"
    roll = rng.random()
    if roll < 0.2:
        slack.fail_next(1, endpoint=endpoint, status=503, body="service_unavailable")
    elif roll < 0.35:
        slack.slow_next(1, seconds=rng.uniform(0.2, 1.5), endpoint=endpoint)
    slack.delay = rng.choice([0.0, 0.05, 0.3])


async def soak_ha(kills: int, seed: int, workdir: Path, mode: str, lease_ttl: str, server: PgServer) -> dict:
    rng = random.Random(seed)
    url = server.new_database()
    fed, slack = Publisher(), FakeSlack(mode=mode)
    fed_runner, fed_url = await serve(fed.app())
    slack_runner, slack_url = await serve(slack.app())
    configs = [write_config(workdir, fed_url, slack_url, mode, name=f"replica-{n}.toml",
                            store=f'url = "{url}"\nreplica = "r{n}"\nlease_ttl = "{lease_ttl}"')
               for n in range(3)]
    replicas = Replicas(configs, daemon_env(dict(os.environ), slack_url), workdir)
    takeovers: list[float] = []
    problems: list[str] = []
    kinds = {"SIGKILL": 0, "SIGSTOP": 0}
    fed.publish_days(2)
    started = time.monotonic()
    try:
        for slot in range(3):
            await replicas.start(slot)
        leader = await _wait_leader(url, None)
        if leader is None:
            raise RuntimeError("no replica took the lease within 90 s")
        for i in range(kills):
            await asyncio.sleep(rng.uniform(0.5, 3.0))             # it leads a while ...
            _trouble(rng, slack, mode)
            fed.publish_days(rng.randint(0, 2))                    # ... the world publishes ...
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            leader = await _wait_leader(url, None)
            if leader is None:
                problems.append(f"disruption {i + 1}: no leader to disrupt")
                break
            holder = leader[0]
            slot = replicas.slot_of(holder)
            proc = replicas.procs[slot]
            how = "SIGSTOP" if rng.random() < 0.4 else "SIGKILL"
            kinds[how] += 1
            at = time.time()
            proc.send_signal(getattr(signal, how))
            fed.publish_days(rng.randint(0, 1))                    # published while it is gone
            new = await _wait_leader(url, holder)
            if new is None:
                problems.append(f"disruption {i + 1} ({how}): no takeover within 90 s")
                break
            takeovers.append(max(0.0, new[2] - at))
            if how == "SIGSTOP":                                  # wakes deposed: appends nothing
                before = _rows(url, "SELECT count(*) FROM events WHERE epoch = %s", leader[1])[0][0]
                proc.send_signal(signal.SIGCONT)
                try:
                    code = await asyncio.wait_for(proc.wait(), 60)
                except asyncio.TimeoutError:
                    proc.kill()
                    code = await proc.wait()
                after = _rows(url, "SELECT count(*) FROM events WHERE epoch = %s", leader[1])[0][0]
                if code != 75:
                    problems.append(f"disruption {i + 1}: the paused leader exited {code}, not 75")
                if after != before:
                    problems.append(f"disruption {i + 1}: the paused leader appended {after - before} "
                                    "events after its term")
            else:
                await proc.wait()
            await replicas.start(slot)                            # systemd restarts it
            if (i + 1) % 10 == 0:
                print(f"soak-ha ({mode}): {i + 1}/{kills} disruptions, {len(fed.sofr)} days published, "
                      f"{len(slack.texts)} Slack messages, takeover max {max(takeovers):.1f} s, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        slack.delay = 0.0
        deadline = time.monotonic() + 180
        while not settled(url, fed, slack) and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        await asyncio.sleep(5)          # a replica restarted last is past its start-up (signals)
        codes = await replicas.stop_all()
        if any(code not in (0, 75) for code in codes):
            problems.append(f"replicas exited {codes} at the end")
        result = await asyncio.to_thread(figures, url, fed, slack)
    finally:
        await replicas.stop_all()
        await fed_runner.cleanup()
        await slack_runner.cleanup()
    return {"mode": mode, "kills": len(takeovers), "kinds": kinds, "result": result, "takeovers": takeovers,
            "problems": problems, "seconds": time.monotonic() - started}


async def main_async(args) -> int:
    modes = ["bot", "webhook"] if args.mode == "both" else [args.mode]
    server = PgServer().start()
    runs = []
    try:
        for n, mode in enumerate(modes):
            with tempfile.TemporaryDirectory(prefix=f"watchdog-soak-ha-{mode}-") as tmp:
                workdir = Path(tmp) if args.keep is None else args.keep / mode
                workdir.mkdir(parents=True, exist_ok=True)
                runs.append(await soak_ha(args.kills, args.seed + n, workdir, mode, args.lease_ttl, server))
    finally:
        server.stop()
    ok = True
    for run in runs:
        r = run["result"]
        print(f"soak-ha ({run['mode']}): {run['kills']} disruptions ({run['kinds']['SIGKILL']} SIGKILL, "
              f"{run['kinds']['SIGSTOP']} SIGSTOP past the lease) in {run['seconds']:.0f} s; "
              f"{r.facts_lost} of {r.facts_published} facts lost, {r.facts_duplicated} doubled; "
              f"{r.alerts_lost} alerts lost of {r.transitions} transitions, {r.flushes_owed} flushes owed; "
              f"{r.duplicate_notifications} duplicates of {r.notifications_received} messages; "
              f"takeover median {sorted(run['takeovers'])[len(run['takeovers']) // 2]:.1f} s, "
              f"max {max(run['takeovers']):.1f} s; audit exit {r.audit_exit}")
        for problem in run["problems"]:
            print(f"problem: {problem}")
        ok = ok and r.ok and not run["problems"] and max(run["takeovers"]) < TAKEOVER_LIMIT
        if run["mode"] == "bot" and r.duplicate_notifications:
            ok = False
        if r.duplicate_notifications > run["kills"]:       # at most one per failover, any receiver
            print(f"problem: {r.duplicate_notifications} duplicates in {run['kills']} failovers")
            ok = False
    by_mode = {run["mode"]: run for run in runs}
    dup = " ".join(f"{by_mode[m]['result'].duplicate_notifications} ({m})" for m in ("bot", "webhook") if m in by_mode)
    print(f"SOAK-HA kills={sum(run['kills'] for run in runs)} "
          f"facts_lost={sum(run['result'].facts_lost for run in runs)} "
          f"alerts_lost={sum(run['result'].alerts_lost for run in runs)} duplicates={dup} "
          f"max_takeover_s={max(max(run['takeovers']) for run in runs):.1f}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="Disruptions of the leader per mode.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lease-ttl", default="10s", help="[store].lease_ttl of the replicas (the default's).")
    parser.add_argument("--mode", choices=["bot", "webhook", "both"], default="both")
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it (configs, replica logs).")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
