"""Replay speed: the default rules over a long synthetic market log, against a raw scan of it.

    BENCH replay <ratio> target 0.5
        market events/s through ``watchdog.tuning.replay.replay`` with the DEFAULT rules
        (``load_rules(["rules"])``, loaded once outside the timing, as ``watchdog replay --rules
        rules`` would load them), reading a SqliteEventStore opened read-only, every transition
        consumed
        / ``baselines.raw_scan_rate(db, "type like 'observation-%'")``: plain sqlite3 reading the
        same market events in seq order and ``json.loads`` of each payload.

Only market events (``type like 'observation-%'``) are counted; the log holds nothing else.

The log (built once per run in a temporary directory, through the real store: ``NewEvent`` ->
``SqliteEventStore.append`` in durable batches of 10,000 with a fixed ``now``, then
``verify_file``): ``n_events`` observations of the canonical series on their own calendars and
nominal publication times (``series.nominal_publication``), one business day after another,
from a start chosen so that the daily and periodic series alone would reach 2026-09-04 (step
changes and revisions take their share, so a million ends around 2022):

- daily: sofr, tgcr, bgcr (SIFMA), effr, obfr (Fed), each with p1/p25/p75/p99/volume; onrrp and
  srf take-up (SIFMA); tga (Fed, DTS);
- step changes only, on FOMC-like meeting days (eight a year): fftarget_upper/lower, iorb,
  onrrp_rate, srf_rate;
- weekly (Wednesday, H.4.1): reserves, fed_assets, tga_weekly_avg, primary_credit; monthly m2 and
  quarterly gdp (first prints, long lags);
- a few ``observation-revised`` events (a rate revised the next business day, vintage-dated).

Rates sit a few bp around IORB with month-end bumps and rare multi-day stress episodes, so the
default rules go pending, fire and resolve now and then, as on real history (about 7,000
transitions per million events). About 2,240 events make a year, so the default million covers
roughly 430 years of business days (1592-2022): the calendars
(holidays from the ``holidays`` library, weekdays only before it has data) and New York time
(local mean time before 1883) are used exactly as the importer uses them.

Run standalone: ``.venv/bin/python bench/replay.py [--events N] [--repeats R] [--profile]``.
"""
from __future__ import annotations

import argparse
import heapq
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402

from watchdog.market.calendar import is_business_day, next_business_day  # noqa: E402
from watchdog.model.events import NewEvent  # noqa: E402
from watchdog.tuning.replay import replay  # noqa: E402
from watchdog.rules.ruleset import load_rules  # noqa: E402
from watchdog.market.series import SERIES, nominal_publication_text  # noqa: E402
from watchdog.store import SqliteEventStore, verify_file  # noqa: E402

MARKET = "type like 'observation-%'"
END = date(2026, 9, 4)
NOW = datetime(2026, 9, 5, tzinfo=timezone.utc)      # recorded_at of every row (fixed)
BATCH = 10_000                                          # AsyncWriter's max_batch

RATES = ("sofr", "tgcr", "bgcr", "effr", "obfr")
DAILY_SIFMA = ("sofr", "tgcr", "bgcr", "onrrp", "srf")
DAILY_FED = ("effr", "obfr", "tga")
WEEKLY = ("reserves", "fed_assets", "tga_weekly_avg", "primary_credit")
STEPS = ("fftarget_upper", "fftarget_lower", "iorb", "onrrp_rate", "srf_rate")
FOMC_MONTHS = {1: 29, 3: 19, 4: 30, 6: 18, 7: 30, 9: 17, 10: 29, 12: 10}   # month -> day

_SOURCE_FILE = {"sofr": "nyfed/sofr.json", "tgcr": "nyfed/tgcr.json", "bgcr": "nyfed/bgcr.json",
                "effr": "nyfed/effr.json", "obfr": "nyfed/obfr.json", "onrrp": "facilities/RRPONTSYD.csv",
                "srf": "nyfed/srf.json", "tga": "treasury/DTS_OpCashBal.csv",
                "reserves": "balance_sheet/WRESBAL.csv", "fed_assets": "balance_sheet/WALCL.csv",
                "tga_weekly_avg": "treasury/WTREGEN.csv", "primary_credit": "balance_sheet/WLCFLPCL.csv",
                "m2": "macro/M2SL.csv", "gdp": "macro/GDP.csv",
                "fftarget_upper": "rates/DFEDTARU.csv", "fftarget_lower": "rates/DFEDTARL.csv",
                "iorb": "rates/iorb_changes.csv", "onrrp_rate": "rates/on_rrp_rate_changes.csv",
                "srf_rate": "rates/srf_min_bid_rate_changes.csv"}


# ---- numbers: normalised decimal strings without Decimal in the loop ----

def _pct(bp: int) -> str:
    """A rate in hundredths of a percent (bp) as its normalised % text: 366 -> "3.66"."""
    bp = max(bp, 0)
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)


def _bn(millions: int) -> str:
    """USD millions as normalised USD bn text: 2151 -> "2.151", 3013902 -> "3013.902"."""
    millions = max(millions, 0)
    whole, frac = divmod(millions, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


def _revert(level: int, mean: int, shock: int) -> int:
    """One step of a mean-reverting walk (levels stay plausible over centuries)."""
    return max(0, level + (mean - level) // 20 + shock)


@lru_cache(maxsize=None)
def _published(calendar: str, lag: int, at: tuple[int, int], day: date) -> str:
    return nominal_publication_text(_REPRESENTATIVE[(calendar, lag, at)], day)


_REPRESENTATIVE: dict[tuple, str] = {}
for _name, _spec in SERIES.items():
    _REPRESENTATIVE.setdefault((_spec.calendar, _spec.publish_lag, _spec.publish_at), _name)


def published(series: str, day: date) -> str:
    s = SERIES[series]
    return _published(s.calendar, s.publish_lag, s.publish_at, day)


# ---- the synthetic history ----

def _events_on(day: date) -> int:
    """How many observations ``day`` carries, not counting step changes and revisions."""
    n = 0
    if day.weekday() < 5:
        if is_business_day("sifma", day):
            n += len(DAILY_SIFMA)
        if is_business_day("fed", day):
            n += len(DAILY_FED)
    if day.weekday() == 2:
        n += len(WEEKLY)
    if day.day == 1:
        n += 1 + (day.month in (1, 4, 7, 10))
    return n


def start_date(n_events: int) -> date:
    """The first day of a history of about ``n_events`` observations ending on ``END``."""
    day, total = END, 0
    while total < n_events:
        total += _events_on(day)
        day -= timedelta(days=1)
    return day + timedelta(days=1)


class History:
    """Deterministic (seeded) market state, one day at a time."""

    def __init__(self, seed: int = 20190917):
        self.rng = random.Random(seed)
        self.lower = 200                      # target range bottom, bp
        self.started = False
        self.stress = 0                       # days of stress left
        self.stress_bp = 0
        self.onrrp, self.tga, self.reserves = 400_000, 700_000, 3_000_000     # USD mn
        self.assets, self.m2, self.gdp = 7_000_000, 20_000_000, 25_000_000

    def obs(self, series: str, day: date, value: str, attributes: dict | None = None,
            raw: str | None = None) -> NewEvent:
        payload = {"series": series, "date": day.isoformat(), "value": value, "unit": SERIES[series].unit,
                   "source": SERIES[series].primary_source, "attributes": attributes or {},
                   "provenance": {"file": _SOURCE_FILE[series], "raw_unit": "percent"
                                  if SERIES[series].unit == "%" else "USD mn",
                                  "raw_value": raw if raw is not None else value}}
        return NewEvent(type="observation-recorded", key=f"obs/{series}/{day.isoformat()}",
                        payload=payload, published_at=published(series, day))

    def rate(self, series: str, day: date, bp: int) -> NewEvent:
        r = self.rng
        attributes = {"p1": _pct(bp - r.randint(3, 25)), "p25": _pct(bp - r.randint(0, 3)),
                      "p75": _pct(bp + r.randint(0, 3)), "p99": _pct(bp + r.randint(2, 10)),
                      "volume": str(r.randint(80, 3200) if series in ("sofr", "tgcr", "bgcr")
                                    else r.randint(60, 300))}
        return self.obs(series, day, _pct(bp), attributes)

    def day(self, day: date) -> list[NewEvent]:
        r, out = self.rng, []
        if FOMC_MONTHS.get(day.month) == day.day:                      # a meeting: maybe a move
            move = r.choice((-50, -25, 0, 0, 0, 0, 25, 25)) if self.lower > 50 else r.choice((0, 0, 25))
            if move:
                self.lower = min(max(self.lower + move, 0), 800)
                upper = self.lower + 25
                for series, bp in zip(STEPS, (upper, self.lower, upper - 10, self.lower, upper)):
                    out.append(self.obs(series, day, _pct(bp)))
        if not self.started:                                           # the rates in force
            self.started = True
            if not out:
                upper = self.lower + 25
                for series, bp in zip(STEPS, (upper, self.lower, upper - 10, self.lower, upper)):
                    out.append(self.obs(series, day, _pct(bp)))
        iorb = self.lower + 15
        weekday = day.weekday()
        if weekday < 5:
            sifma, fed = is_business_day("sifma", day), is_business_day("fed", day)
            if self.stress == 0 and r.random() < 1 / 900:               # a repo squeeze
                self.stress, self.stress_bp = r.randint(1, 6), r.randint(8, 300)
            month_end = sifma and next_business_day("sifma", day).month != day.month
            bump = (r.randint(3, 20) if month_end else 0) + (self.stress_bp if self.stress else 0)
            if self.stress:
                self.stress -= 1
            sofr = iorb - 6 + r.randint(-3, 3) + bump
            if sifma:
                out.append(self.rate("sofr", day, sofr))
                out.append(self.rate("tgcr", day, sofr - r.randint(0, 3)))
                out.append(self.rate("bgcr", day, sofr - r.randint(0, 2)))
                self.onrrp = _revert(self.onrrp, 500_000, r.randint(-40_000, 40_000))
                out.append(self.obs("onrrp", day, _bn(self.onrrp)))
                out.append(self.obs("srf", day, _bn(r.randint(0, 5_000) if bump > 15 else 0)))
            if fed:
                effr = iorb - 7 + r.randint(-1, 1) + bump // 4
                out.append(self.rate("effr", day, effr))
                out.append(self.rate("obfr", day, effr + r.randint(-1, 1)))
                self.tga = _revert(self.tga, 700_000, r.randint(-40_000, 40_000))
                out.append(self.obs("tga", day, _bn(self.tga), raw=str(self.tga)))
            if sifma and r.random() < 1 / 500:                          # revised the next day
                rev = self.rate("sofr", day, sofr + r.choice((-1, 1)))
                nxt = published("effr", day)                            # T+1 09:00 ET
                rev.payload["provenance"]["vintage"] = nxt
                out.append(NewEvent(rev.type, rev.key, rev.payload, nxt))
        if weekday == 2:
            self.reserves = _revert(self.reserves, 3_300_000, r.randint(-60_000, 60_000))
            self.assets = _revert(self.assets, 7_000_000, r.randint(-50_000, 50_000))
            out.append(self.obs("reserves", day, _bn(self.reserves), raw=f"{self.reserves}.0"))
            out.append(self.obs("fed_assets", day, _bn(self.assets), raw=str(self.assets)))
            out.append(self.obs("tga_weekly_avg", day, _bn(self.tga), raw=f"{self.tga}.0"))
            out.append(self.obs("primary_credit", day, _bn(r.randint(0, 9_000)), raw="0"))
        if day.day == 1:
            self.m2 = _revert(self.m2, 20_000_000, r.randint(-100_000, 100_000))
            out.append(self.obs("m2", day, _bn(self.m2), raw=_bn(self.m2)))
            if day.month in (1, 4, 7, 10):
                self.gdp = _revert(self.gdp, 25_000_000, r.randint(-300_000, 300_000))
                out.append(self.obs("gdp", day, _bn(self.gdp), raw=_bn(self.gdp)))
        return out


def build_log(path: str, n_events: int) -> dict:
    """Write ``n_events`` observations to a new log at ``path``; returns build facts."""
    started = time.perf_counter()
    history, day = History(), start_date(n_events)
    store = SqliteEventStore(path, now=lambda: NOW)
    heap: list[tuple[str, int, NewEvent]] = []       # (published_at, n, event): publication order
    batch: list[NewEvent] = []
    made = appended = 0
    first = day
    try:
        while made < n_events:
            for event in history.day(day):
                if made == n_events:
                    break
                heapq.heappush(heap, (event.published_at, made, event))
                made += 1
            day += timedelta(days=1)
            # nothing generated from ``day`` on is published before ``day`` starts in New York
            horizon = f"{day.isoformat()}T04:00:00.000000Z"
            while heap and (heap[0][0] < horizon or made == n_events):
                batch.append(heapq.heappop(heap)[2])
                if len(batch) == BATCH:
                    appended += len(store.append(batch))
                    batch = []
        if batch:
            appended += len(store.append(batch))
    finally:
        store.close()
    built = time.perf_counter() - started
    started = time.perf_counter()
    head = verify_file(path)
    return {"events": appended, "first": first.isoformat(), "last": (day - timedelta(days=1)).isoformat(),
            "build_s": built, "verify_s": time.perf_counter() - started, "head": head}


def market_count(path: str) -> int:
    import sqlite3
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT count(*) FROM events WHERE {MARKET}").fetchone()[0]
    finally:
        conn.close()


def replay_rate(path: str, ruleset, market: int) -> float:
    """Market events/s of one full ``watchdog replay`` of the log (every transition consumed)."""
    store = SqliteEventStore(path, readonly=True)
    try:
        start = time.perf_counter()
        for _ in replay(store, ruleset):
            pass
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    return market / elapsed


def measure(n_events: int = 1_000_000, repeats: int = 3) -> str:
    ruleset = load_rules([str(REPO / "rules")])
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-replay-") as d:
        path = os.path.join(d, "replay.db")
        info = build_log(path, n_events)
        market = market_count(path)
        print(f"bench replay: {market} market events {info['first']}..{info['last']}, built in "
              f"{info['build_s']:.1f}s ({info['events'] / info['build_s']:,.0f}/s), verified in "
              f"{info['verify_s']:.1f}s", file=sys.stderr)
        baselines.raw_scan_rate(path, MARKET)                  # warm the page cache
        rates: list[tuple[float, float]] = []

        def ours() -> float:
            rate = replay_rate(path, ruleset, market)
            rates[-1] = (rates[-1][0], rate)
            return rate

        def base() -> float:
            rate = baselines.raw_scan_rate(path, MARKET)
            rates.append((rate, 0.0))
            return rate

        ratio = baselines.ratio(ours, base, repeats=repeats)
        print("bench replay: " + ", ".join(f"ours {o:,.0f}/s vs scan {b:,.0f}/s" for b, o in rates),
              file=sys.stderr)
    return f"BENCH replay {ratio:.2f} target 0.5"


def _profile(n_events: int, top: int = 40) -> None:
    import cProfile
    import pstats
    ruleset = load_rules([str(REPO / "rules")])
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-replay-") as d:
        path = os.path.join(d, "replay.db")
        build_log(path, n_events)
        market = market_count(path)
        print(f"unprofiled: {replay_rate(path, ruleset, market):,.0f} market events/s, "
              f"scan {baselines.raw_scan_rate(path, MARKET):,.0f}/s")
        profiler = cProfile.Profile()
        profiler.enable()
        replay_rate(path, ruleset, market)
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    from watchdog.app import tune_gc
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS_REPLAY", 1_000_000)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one replay instead")
    args = parser.parse_args()
    tune_gc()
    if args.profile:
        _profile(args.events)
    else:
        print(measure(args.events, args.repeats))
