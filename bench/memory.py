"""Replay memory: does `watchdog replay` stay flat however long the log?

    BENCH replay-memory <ratio> target 0.8
        peak RSS of `watchdog replay --rules rules --json` over a 100k-event synthetic market log
        / its peak RSS over a 1M-event log (the same builder as BENCH replay, bench/replay.py:
        the 1M log covers ten times the years). Each run is a fresh `watchdog` process (the real
        entry point, stdout to /dev/null); its peak RSS is the child's own ``ru_maxrss`` from
        ``os.wait4``. 1.0 means no growth at all; a replay that kept every value it read would
        score about 0.2.

The yardstick is our own smaller run: the fixed cost (Python, the imports, the rule set) is on
both sides, so only growth with the history lowers the ratio.

Run standalone: ``.venv/bin/python bench/memory.py [--small N] [--large N] [--repeats R]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import replay as replay_bench  # noqa: E402

# The child runs the `watchdog` entry point and, at exit, reports its own peak RSS (VmHWM). Not
# the parent's ru_maxrss of the child: Linux folds the pre-exec (forked) image into it, so a
# large parent (make bench has run the other figures in-process) would be measured instead.
CHILD = """
import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        sys.stderr.write(next(l for l in status if l.startswith("VmHWM:")))
atexit.register(peak)
sys.argv = ["watchdog", *sys.argv[1:]]
from watchdog.cli import main
main()
"""


def peak_rss_mb(db: str) -> float:
    """Peak RSS (MB) of one `watchdog replay` of ``db`` in a fresh process."""
    args = [sys.executable, "-c", CHILD, "replay", "--db", db, "--rules", str(REPO / "rules"), "--json"]
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    err = proc.stderr.decode()
    if proc.returncode:
        raise RuntimeError(f"watchdog replay exited {proc.returncode}: {err[-500:]}")
    kb = int(err.rsplit("VmHWM:", 1)[1].split()[0])
    return kb / 1024


def measure(small: int = 100_000, large: int = 1_000_000, repeats: int = 3) -> str:
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-memory-") as d:
        paths = {}
        for n in (small, large):
            paths[n] = os.path.join(d, f"{n}.db")
            replay_bench.build_log(paths[n], n)
        ratios, shown = [], []
        for _ in range(repeats):                  # interleaved, like the other figures
            low, high = peak_rss_mb(paths[small]), peak_rss_mb(paths[large])
            ratios.append(low / high)
            shown.append(f"{low:.0f} MB vs {high:.0f} MB")
        print(f"bench replay-memory: peak RSS at {small:,} vs {large:,} events: " + ", ".join(shown),
              file=sys.stderr)
    ratios.sort()
    return f"BENCH replay-memory {ratios[len(ratios) // 2]:.2f} target 0.8"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=int(os.environ.get("BENCH_EVENTS_MEMORY", 1_000_000)))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(measure(args.small, args.large, args.repeats))
