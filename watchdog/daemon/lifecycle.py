"""How a daemon process runs and ends: the event loop, the stop signals, and the three modes of
``watchdog run``.

- once (``--once``): one cycle of exactly the code the long-running loop repeats, then exit.
- until idle (``--exit-when-idle``): cycle, pause, cycle again until a cycle brings no new fact
  and the outbox owes nothing (the demo and the soak runs end this way).
- serve (neither): the scheduled daemon (``Daemon.serve``) until SIGTERM or SIGINT. SIGHUP is
  the daemon's own (a reload), taken over in ``serve``.

Each finished cycle's report goes to ``on_cycle``: what to show of it is the caller's business.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from watchdog.daemon.loop import CycleReport, Daemon


def run(daemon: Daemon, *, once: bool, exit_when_idle: bool, pause: float,
        on_cycle: Callable[[CycleReport], None]) -> None:
    """Run ``daemon`` in a new event loop until its mode says it is done; ``pause`` is the
    seconds between cycles until idle."""
    asyncio.run(_run(daemon, once, exit_when_idle, pause, on_cycle))


async def _run(daemon: Daemon, once: bool, exit_when_idle: bool, pause: float,
               on_cycle: Callable[[CycleReport], None]) -> None:
    try:
        await _run_mode(daemon, once, exit_when_idle, pause, on_cycle)
    finally:
        await daemon.aclose()


async def _run_mode(daemon: Daemon, once: bool, exit_when_idle: bool, pause: float,
                    on_cycle: Callable[[CycleReport], None]) -> None:
    daemon.one_shot = once or exit_when_idle
    if once:
        on_cycle(await daemon.run_once())
        return
    if not exit_when_idle:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await daemon.serve(stop)
        return
    await daemon.start()
    try:
        while True:
            report = await daemon.cycle()
            on_cycle(report)
            if report.facts == 0 and not daemon.outbox.owed():
                break
            await asyncio.sleep(pause)
    finally:
        await daemon.stop("exit-when-idle")
