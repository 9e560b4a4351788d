"""Sweep speed: 50 variants of one rule in one pass, against 50 separate replays.

    BENCH sweep <ratio> target 2
        50 x the time of one ``watchdog.tuning.replay.replay`` with the DEFAULT rules over a synthetic
        market log / the time of ``watchdog.tuning.sweep.run_sweep`` evaluating the 50 variants of
        ``sofr-over-iorb.above=5..29.5:0.5`` over the same log (the log read and decoded once,
        every variant's transitions produced and consumed). 2 = the sweep takes half the time of
        running the variants one by one.

``sofr-over-iorb`` is a member of the ``funding-stress`` composite, so every variant also
re-derives that composite: the sweep is the one a user tuning the default rules would run.

The log is bench/replay.py's synthetic market history (the same generator and calendars),
``BENCH_EVENTS_SWEEP`` events (default 200,000: about 90 years of business days). Both sides
read it through a read-only ``SqliteEventStore``.

Run standalone: ``.venv/bin/python bench/sweep.py [--events N] [--repeats R]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402
import replay as replay_bench  # noqa: E402

from watchdog.model.events import FACT_TYPES  # noqa: E402
from watchdog.tuning.replay import replay  # noqa: E402
from watchdog.rules.ruleset import load_rules  # noqa: E402
from watchdog.store import SqliteEventStore, iter_published  # noqa: E402
from watchdog.tuning.sweep import build_variants, parse_setting, run_sweep  # noqa: E402

SETTING = "sofr-over-iorb.above=5..29.5:0.5"


def replay_seconds(path: str, ruleset) -> float:
    store = SqliteEventStore(path, readonly=True)
    try:
        start = time.perf_counter()
        for _ in replay(store, ruleset):
            pass
        return time.perf_counter() - start
    finally:
        store.close()


def sweep_seconds(path: str, ruleset, variants) -> float:
    store = SqliteEventStore(path, readonly=True)
    try:
        start = time.perf_counter()
        for transitions in run_sweep(iter_published(store, types=FACT_TYPES), ruleset, variants):
            for _ in transitions:
                pass
        return time.perf_counter() - start
    finally:
        store.close()


def measure(n_events: int = 200_000, repeats: int = 3) -> str:
    ruleset = load_rules([str(REPO / "rules")])
    variants = build_variants(ruleset, [parse_setting(SETTING)])
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-sweep-") as d:
        path = os.path.join(d, "sweep.db")
        info = replay_bench.build_log(path, n_events)
        print(f"bench sweep: {info['events']} events {info['first']}..{info['last']}, "
              f"{len(variants)} variants of {SETTING}", file=sys.stderr)
        times: list[tuple[float, float]] = []

        def base() -> float:
            times.append((replay_seconds(path, ruleset), 0.0))
            return 1 / times[-1][0]

        def ours() -> float:
            seconds = sweep_seconds(path, ruleset, variants)
            times[-1] = (times[-1][0], seconds)
            return len(variants) / seconds

        ratio = baselines.ratio(ours, base, repeats=repeats)
        print("bench sweep: " + ", ".join(f"one replay {r:.1f}s, sweep {s:.1f}s" for r, s in times),
              file=sys.stderr)
    return f"BENCH sweep {ratio:.2f} target 2"


if __name__ == "__main__":
    from watchdog.app import tune_gc
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS_SWEEP", 200_000)))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tune_gc()
    print(measure(args.events, args.repeats))
