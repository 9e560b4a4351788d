"""`make bench`: each figure is our rate divided by a fixed yardstick measured in the same run
(bench/baselines.py, copied unchanged from the shared folder), median of interleaved repeats.

    BENCH append <ratio> target 0.5
        100k events appended through the store (validation, canonical JSON, hashing, dedup
        look-ups, durable batches) / raw executemany of the very rows the store wrote.
    BENCH replay <ratio> target 0.5
        market events/s of `watchdog replay` with the default rules over a synthetic 1M-event
        market log / a raw sqlite3 + json.loads scan of the same events (bench/replay.py).
    BENCH keywords <ratio> target 0.5
        speech MB/s through the default keyword rules / one plain regex (bench/keywords.py).
    BENCH sweep <ratio> target 2
        50 x one replay's time / the time of one `backtest --set` sweep of 50 variants of a rule
        in one pass over the same synthetic log (bench/sweep.py).
    BENCH scale-rules <ratio> target 0.5
        market events/s of replay with the default rules plus nine threshold variants of each
        threshold rule (219 rules) / with the 30 default rules, same synthetic log
        (bench/scale_rules.py).
    BENCH notebook <ratio> target 1
        events/s of `watchdog replay` of the default sofr-over-iorb rule alone over the synthetic
        1M-event log / what an analyst writes instead: pandas reading the same SQLite with
        json_extract, a pivot by date, a vectorised spread and a run-length streak; both must
        find the same firing dates (bench/notebook.py).
    BENCH alert-latency-p99 <seconds> goal < 2 s
        a value published on a local fake source to the local fake Slack receiving its message,
        through the real daemon polling every second with group_wait = "0s", 50 publications
        (bench/latency.py). Seconds, not a ratio.
    BENCH replay-memory <ratio> target 0.8
        peak RSS of `watchdog replay` (a fresh process each) over a 100k-event synthetic market
        log / over a 1M-event one: 1.0 = memory flat however long the log (bench/memory.py).

Environment: BENCH_EVENTS (append, default 100000), BENCH_EVENTS_REPLAY (replay log size,
default 1000000; e.g. 100000 for a quick check), BENCH_EVENTS_SWEEP (sweep log size, default
200000), BENCH_EVENTS_SCALE (scale-rules log size, default 200000), BENCH_EVENTS_MEMORY (the
large replay-memory log, default 1000000), BENCH_EVENTS_NOTEBOOK (default 1000000),
BENCH_PUBLICATIONS (alert latency, default 50).
"""
from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import baselines  # noqa: E402
import keywords as keywords_bench  # noqa: E402
import latency as latency_bench  # noqa: E402
import memory as memory_bench  # noqa: E402
import notebook as notebook_bench  # noqa: E402
import replay as replay_bench  # noqa: E402
import scale_rules as scale_bench  # noqa: E402
import sweep as sweep_bench  # noqa: E402

from watchdog.app import tune_gc  # noqa: E402
from watchdog.model.events import NewEvent  # noqa: E402
from watchdog.store import SqliteEventStore  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "100000"))
N_REPLAY = int(os.environ.get("BENCH_EVENTS_REPLAY", "1000000"))
N_SWEEP = int(os.environ.get("BENCH_EVENTS_SWEEP", "200000"))
N_SCALE = int(os.environ.get("BENCH_EVENTS_SCALE", "200000"))
N_MEMORY = int(os.environ.get("BENCH_EVENTS_MEMORY", "1000000"))   # the large replay-memory log
N_NOTEBOOK = int(os.environ.get("BENCH_EVENTS_NOTEBOOK", "1000000"))
PUBLICATIONS = int(os.environ.get("BENCH_PUBLICATIONS", "50"))
BATCH = 10000                  # AsyncWriter's max_batch: what one durable transaction holds
SERIES = ["sofr", "tgcr", "bgcr", "effr", "obfr"]


def raw_events(n: int) -> list[dict]:
    """Realistic observation events as a source would hand them over (not yet validated)."""
    start, out = date(1990, 1, 1), []
    for i in range(n):
        series, day = SERIES[i % len(SERIES)], start + timedelta(days=i // len(SERIES))
        out.append({"type": "observation-recorded", "key": f"obs/{series}/{day}",
                    "published_at": f"{day}T12:00:00.000000Z",
                    "payload": {"series": series, "date": str(day), "value": f"{(i % 500) / 100 + 0.01}",
                                "unit": "%", "source": "nyfed",
                                "attributes": {"p1": "1.2", "p99": "5.6", "volume": str(1000 + i % 900)},
                                "provenance": {"url": "https://markets.newyorkfed.org/api/rates/secured/sofr/search.json"}}})
    return out


def ours(raw: list[dict], keep: list) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ours.db")
        store = SqliteEventStore(path)
        start = time.perf_counter()
        for i in range(0, len(raw), BATCH):
            store.append([NewEvent(**e) for e in raw[i:i + BATCH]])
        elapsed = time.perf_counter() - start
        store.close()
        if not keep:
            conn = sqlite3.connect(path)
            keep.extend(conn.execute("SELECT type, key, published_at, recorded_at, payload, hash FROM events ORDER BY seq"))
            conn.close()
    return len(raw) / elapsed


def measure_append() -> str:
    raw = raw_events(N)
    rows: list = []
    ours(raw, rows)                     # warm-up, and the rows the store wrote for the yardstick
    ratio = baselines.ratio(lambda: ours(raw, [1]), lambda: baselines.raw_append_rate(rows), repeats=5)
    return f"BENCH append {ratio:.2f} target 0.5"


def main() -> None:
    tune_gc()                          # exactly what the `watchdog` entry point does
    print(measure_append(), flush=True)
    print(replay_bench.measure(N_REPLAY), flush=True)
    print(keywords_bench.measure(), flush=True)
    print(sweep_bench.measure(N_SWEEP), flush=True)
    print(scale_bench.measure(N_SCALE), flush=True)
    print(notebook_bench.measure(N_NOTEBOOK), flush=True)
    print(memory_bench.measure(large=N_MEMORY), flush=True)
    print(latency_bench.measure(PUBLICATIONS), flush=True)


if __name__ == "__main__":
    main()
