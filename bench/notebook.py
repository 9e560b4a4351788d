"""Against the notebook: one rule through replay, against what an analyst writes in pandas for it.

    BENCH notebook <ratio> target 1
        market events/s through ``watchdog.tuning.replay.replay`` with ONLY the default
        ``sofr-over-iorb`` rule (``bp(sofr - iorb)`` above 10, recover_below 5, for 2bd, skip_on
        month_end and turn; taken from ``load_rules(["rules"])`` outside the timing and set alone
        in ``RuleSet.of``, as ``watchdog replay --rules <a folder holding just that rule>`` would
        run it), reading a SqliteEventStore opened read-only, every transition consumed, the
        dates of its ``firing`` transitions kept
        / market events/s of the same question answered the notebook way (``analyst_firing_dates``):
        ``pandas.read_sql_query`` of the same SQLite file with ``json_extract`` (series, date,
        value, published_at of the sofr and iorb rows of ``type like 'observation-%'``), values
        as integer hundredths of a bp, a pivot by date with IORB forward-filled as of each SOFR
        date, month_end/turn dates dropped (watchdog's SIFMA calendar asked once per month,
        mapped onto the dates vectorised), the spread vectorised, then a loop over the few runs
        that can fire (fire on the 2nd consecutive evaluated date above 10 bp; once firing,
        resolve on the first evaluated date below 5 bp).

Both sides are divided by the same count of market events (the whole log), so the ratio is the
analyst's time / replay's time. 1 = replay answers one rule over the history as fast as the
analyst's one-off pandas pass; replay also does what the notebook skips (every fact decoded and
folded in knowledge order, Decimal arithmetic, the alert payloads), so this is a yardstick for
"is the engine's generality affordable", not a like-for-like contest.

The two sides must find the same firing dates: the bench raises, listing the first
differences, if they do not. What the analyst has to model for that (knowledge order, see
``analyst_firing_dates``): replay judges each SOFR date on the value known when it was
evaluated, and a revision re-judges that date only while it is still the rule's last evaluated
date (a revision arriving later is data only); a plain pivot of the latest value would judge
every date on its final value. The log (bench/replay.py's ``build_log``, built once per run in a
temporary directory) holds a few ``observation-revised`` SOFR values (revised the next business
day, vintage-dated); when a Good Friday puts the revision's vintage (the Fed's next business day)
before the original's nominal publication (SIFMA's), the revised value is recorded first and
the original arrives as a revision published at the log's write time (2026-09-05).

Run standalone: ``.venv/bin/python bench/notebook.py [--events N] [--repeats R]``.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402
import replay as replay_bench  # noqa: E402

from watchdog.market.calendar import business_day_on_or_before, next_business_day  # noqa: E402
from watchdog.rules.ruleset import RuleSet, load_rules  # noqa: E402
from watchdog.store import SqliteEventStore  # noqa: E402
from watchdog.tuning.replay import replay  # noqa: E402

RULE = "sofr-over-iorb"
CALENDAR = "sifma"          # the rule's calendar (Rule.calendar: its driver SOFR's); checked below
ABOVE, RECOVER_BELOW = 10 * 100, 5 * 100      # 10 bp and 5 bp in hundredths of a bp

# The analyst's query: the two series, four fields, straight out of the JSON payloads.
SQL = """
select json_extract(payload, '$.series') as series, json_extract(payload, '$.date') as date,
       json_extract(payload, '$.value') as value, published_at
from events
where type like 'observation-%' and json_extract(payload, '$.series') in ('sofr', 'iorb')
"""


# ---- ours: the engine ----

def the_rule() -> RuleSet:
    """The default ``sofr-over-iorb`` rule alone, as loaded from the shipped rules."""
    rules = [r for r in load_rules([str(REPO / "rules")]).rules if r.id == RULE]
    if len(rules) != 1:
        raise SystemExit(f"bench notebook: rule {RULE!r} not found in {REPO / 'rules'}")
    rule = rules[0]
    assert rule.calendar == CALENDAR, f"{RULE} is read on {rule.calendar!r}, the analyst on {CALENDAR!r}"
    return RuleSet.of([rule])


def engine_firing_dates(path: str, ruleset: RuleSet) -> tuple[list[str], float]:
    """The dates of every ``firing`` transition of one full replay, and its time in seconds."""
    store = SqliteEventStore(path, readonly=True)
    try:
        start = time.perf_counter()
        fired = [t.date for t in replay(store, ruleset) if t.state == "firing"]
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    return fired, elapsed


# ---- the analyst: pandas ----

def _skipped(dates: pd.Series) -> np.ndarray:
    """month_end or turn on the SIFMA calendar, for ISO date strings: watchdog's calendar asked
    once per month present (last business day; first business day after the previous month's
    last), then mapped onto every date. Every SOFR date is a SIFMA business day (that is when
    SOFR is published), so these are exactly the dates ``is_term`` flags."""
    months = dates.str.slice(0, 7)
    month_end, turn = {}, {}
    for ym in months.unique():
        y, m = int(ym[:4]), int(ym[5:7])
        last_day = (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1))
        month_end[ym] = business_day_on_or_before(CALENDAR, last_day).isoformat()
        before = business_day_on_or_before(CALENDAR, date(y, m, 1) - timedelta(days=1))
        turn[ym] = next_business_day(CALENDAR, before).isoformat()
    return ((dates == months.map(month_end)) | (dates == months.map(turn))).to_numpy()


def _episodes(spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the evaluated dates) of each firing and of each resolution."""
    breach = spread > ABOVE
    # a firing can only happen on the 2nd of two consecutive evaluated dates above the threshold
    candidates = np.flatnonzero(breach[1:] & breach[:-1]) + 1
    lows = np.flatnonzero(spread < RECOVER_BELOW)
    fires, resolves = [], []
    i = 0
    while (k := np.searchsorted(candidates, i)) < len(candidates):
        fire = candidates[k]
        fires.append(fire)
        j = np.searchsorted(lows, fire + 1)             # the first date below 5 bp after it
        if j == len(lows):
            break
        resolves.append(lows[j])
        i = lows[j] + 1       # resolved: the streak starts afresh (that date is below 10 anyway)
    return np.asarray(fires, dtype=np.int64), np.asarray(resolves, dtype=np.int64)


def analyst_firing_dates(path: str, knowledge_order: bool = True) -> dict:
    """The rule's firing dates the notebook way; ``knowledge_order=False`` is the naive variant
    (the latest value of every date), kept to report what the knowledge order changes.

    Numbers: every value is a decimal string with at most 4 decimals (rates have 2), so
    ``round(float(text) * 10_000)`` is its exact integer count of hundredths of a bp, and every
    comparison is on integers (10 bp = 1000): no Decimal, no float tolerance.

    Knowledge order (what makes this agree with replay): a SOFR date D is judged on the value
    first published for it; a revision published before the next *evaluated* SOFR date (not a
    month_end/turn) was first published is the engine re-judging D while it is still its last
    evaluated date, so the revised value is what D ends up judged on; a revision published
    later (the Good Friday case in the module docstring) never re-judges D, so the earlier value
    stands. Such a re-judgement that flips D's firing state leaves a ``firing`` transition for D
    in replay's output even when the final judgement does not fire (the original fired and the
    revision retracted it, or the original resolved and the revision put it back): those dates
    are added from the state before D. IORB (a step series, as-of joined) is published at
    midnight of its own date, before any SOFR date it covers, so its latest value is the known
    one."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        df = pd.read_sql_query(SQL, conn)
    finally:
        conn.close()
    df["v"] = (df["value"].astype("float64") * 10_000).round().astype("int64")
    df = df.sort_values(["series", "date", "published_at"], kind="stable")

    sofr = df[df["series"] == "sofr"]
    first = sofr.drop_duplicates("date", keep="first")          # sorted by date
    evaluated = first[~_skipped(first["date"])]
    revised_first = None
    if knowledge_order:
        # the instant each evaluated date stops being the last one: the next one's publication
        cutoff = pd.Series(evaluated["published_at"].shift(-1).fillna("~").to_numpy(),
                           index=evaluated["date"].to_numpy())
        known = sofr[sofr["published_at"] < sofr["date"].map(cutoff).fillna("")]
        sofr_v = known.drop_duplicates("date", keep="last").set_index("date")["v"]
        revised_first = first.set_index("date")["v"].reindex(sofr_v.index)
        revised_first = revised_first[revised_first != sofr_v]   # dates re-judged to another value
    else:
        sofr_v = sofr.drop_duplicates("date", keep="last").set_index("date")["v"]

    latest = df[df["series"] == "iorb"].drop_duplicates("date", keep="last")
    table = pd.concat({"sofr": sofr_v, "iorb": latest.set_index("date")["v"]}, axis=1).sort_index()
    table["iorb"] = table["iorb"].ffill()                          # as of each date
    table = table.loc[table.index.isin(evaluated["date"]) & table["sofr"].notna() & table["iorb"].notna()]
    spread = (table["sofr"] - table["iorb"]).to_numpy(dtype=np.int64)   # hundredths of a bp
    dates = table.index.to_numpy()

    fires, resolves = _episodes(spread)
    fired = list(dates[fires])
    if revised_first is not None and len(revised_first):
        status = np.zeros(len(spread) + 1, dtype=np.int64)     # firing after each date: +1/-1
        np.add.at(status, fires, 1)
        np.add.at(status, resolves, -1)
        firing_after = np.cumsum(status[:-1]) > 0
        where = pd.Series(np.arange(len(dates)), index=dates)
        for d, v_first in revised_first.items():
            k = where.get(d)
            if k is None:
                continue
            v_first = int(v_first) - int(table["iorb"].iloc[k])       # its spread, as first known
            before = bool(k and firing_after[k - 1])
            pending = bool(k and not before and spread[k - 1] > ABOVE)
            first_fires = (v_first >= RECOVER_BELOW) if before else (v_first > ABOVE and pending)
            if first_fires != firing_after[k] and first_fires != before:
                fired.append(d)     # the original judgement fired, or the revision re-fired it
    return {"fired": sorted(fired), "evaluated": len(spread), "rejudged": 0 if revised_first is None
            else len(revised_first), "revisions": int(len(sofr) - len(first))}


# ---- the bench ----

def _differences(ours: list[str], theirs: list[str], n: int = 10) -> str:
    a, b = set(ours), set(theirs)
    only_ours, only_theirs = sorted(a - b), sorted(b - a)
    lines = [f"replay fired on {len(ours)} dates, the analyst on {len(theirs)}"]
    if only_ours:
        lines.append(f"only replay ({len(only_ours)}): {', '.join(only_ours[:n])}")
    if only_theirs:
        lines.append(f"only the analyst ({len(only_theirs)}): {', '.join(only_theirs[:n])}")
    if not only_ours and not only_theirs:
        lines.append("same dates, different multiplicity (a date fired more than once)")
    return "\n  ".join(lines)


def check(ours: list[str], theirs: list[str]) -> None:
    if sorted(ours) != sorted(theirs):
        raise AssertionError(f"bench notebook: the firing dates differ:\n  {_differences(ours, theirs)}")


def measure(n_events: int = 1_000_000, repeats: int = 3) -> str:
    ruleset = the_rule()
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-notebook-") as d:
        path = os.path.join(d, "notebook.db")
        info = replay_bench.build_log(path, n_events)
        market = replay_bench.market_count(path)
        print(f"bench notebook: {market} market events {info['first']}..{info['last']}, built in "
              f"{info['build_s']:.1f}s", file=sys.stderr)
        baselines.raw_scan_rate(path, replay_bench.MARKET)     # warm the page cache
        times: list[list[float]] = []
        found: dict = {}

        def base() -> float:
            start = time.perf_counter()
            found["analyst"] = analyst_firing_dates(path)
            elapsed = time.perf_counter() - start
            times.append([elapsed, 0.0])
            return market / elapsed

        def ours() -> float:
            fired, elapsed = engine_firing_dates(path, ruleset)
            times[-1][1] = elapsed
            check(fired, found["analyst"]["fired"])
            found["ours"] = fired
            return market / elapsed

        ratio = baselines.ratio(ours, base, repeats=repeats)
        analyst = found["analyst"]
        naive = analyst_firing_dates(path, knowledge_order=False)["fired"]
        print("bench notebook: " + ", ".join(f"replay {o:.2f}s ({market / o:,.0f}/s) vs pandas {b:.2f}s "
                                             f"({market / b:,.0f}/s)" for b, o in times), file=sys.stderr)
        fired = found["ours"]
        print(f"bench notebook: {len(fired)} firing dates (both sides), {analyst['evaluated']} evaluated "
              f"SOFR dates, {analyst['revisions']} SOFR revisions of which {analyst['rejudged']} re-judged "
              f"a date to another value; first {fired[:3]}, last {fired[-3:]}", file=sys.stderr)
        if sorted(naive) == sorted(fired):
            print("bench notebook: a plain latest-value pivot finds the same dates here", file=sys.stderr)
        else:
            print(f"bench notebook: a plain latest-value pivot would differ:\n  {_differences(fired, naive)}",
                  file=sys.stderr)
    return f"BENCH notebook {ratio:.2f} target 1"


if __name__ == "__main__":
    from watchdog.app import tune_gc
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tune_gc()
    print(measure(args.events, args.repeats))
