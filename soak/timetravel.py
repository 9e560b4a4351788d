"""`make soak`, time travel: the real daemon served through windows of real history on a simulated
clock (local stand-ins of the NY Fed, FRED and Fiscal Data APIs, the default rules, a console
receiver, a four-day downtime in the middle of each window), then compared with `watchdog replay`
and `watchdog replay --notify-dry-run` on the log it wrote (tests/timetravel.py says how).

Prints each window's report, ending with its figure line
``LIVE-REPLAY <window>: <n> transitions, <k> differences``; exits 1 if any window has an
unexplained difference. No network beyond 127.0.0.1. About 8 minutes on two cores.

    python soak/timetravel.py [--window FIRST..LAST ...] [--down-days 4] [--keep DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.timetravel import Window, time_travel  # noqa: E402

WINDOWS = ("2025-10-01..2025-12-31", "2019-09-01..2019-09-30", "2020-03-01..2020-03-31",
           "2025-01-01..2025-12-31")


async def soak(windows: list[str], down_days: int, keep: Path | None) -> int:
    unexplained = 0
    for spec in windows:
        first, last = spec.split("..")
        work = (keep / spec.replace("..", "_")) if keep else Path(tempfile.mkdtemp(prefix="watchdog-timetravel-"))
        report = await time_travel(Window(first, last, down_days), work, log=lambda line: print(line, flush=True))
        unexplained += len(report.unexplained)
        print(flush=True)
    return 1 if unexplained else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", action="append", help="FIRST..LAST (repeatable; default: the soak's four)")
    parser.add_argument("--down-days", type=int, default=4, help="days the daemon is down mid-window (default 4)")
    parser.add_argument("--keep", help="keep each window's log and config under this directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="  | %(name)s: %(message)s")
    return asyncio.run(soak(args.window or list(WINDOWS), args.down_days, Path(args.keep) if args.keep else None))


if __name__ == "__main__":
    sys.exit(main())
