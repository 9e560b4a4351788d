"""Rules at scale: ten threshold variants of every default threshold rule, against the defaults.

    BENCH scale-rules <ratio> target 0.5
        market events/s of ``watchdog.tuning.replay.replay`` with the SCALED rule set / with the
        DEFAULT rules, over the same synthetic market log (bench/replay.py's generator). 1.0 = a
        desk's ten thresholds per indicator cost nothing more than one.

The scaled set keeps every default rule (composites still read their members by id) and adds,
for each threshold rule, nine variants whose threshold moves away from the alert by a hundredth
of its size per step (``above`` up, ``below`` down, so hysteresis stays valid): 10 thresholds on
each of the default expressions. With the 30 default rules (21 of them thresholds) that is 219
rules. Each variant is rebuilt through the rule model, as ``backtest --set`` does.

Run standalone: ``.venv/bin/python bench/scale_rules.py [--events N] [--repeats R]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402
import replay as replay_bench  # noqa: E402

from watchdog.rules.ruleset import Rule, RuleSet, load_rules  # noqa: E402
from watchdog.tuning.sweep import _rebuilt  # noqa: E402

VARIANTS = 10


def scaled(ruleset: RuleSet, variants: int = VARIANTS) -> RuleSet:
    """``ruleset`` plus ``variants - 1`` threshold variants of each threshold rule."""
    rules = list(ruleset.all_rules)
    for rule in ruleset.all_rules:
        if not isinstance(rule, Rule):
            continue
        field = "above" if rule.above is not None else "below"
        base = Decimal(str(getattr(rule, field)))
        step = abs(base) / 100 or Decimal("0.01")
        for k in range(1, variants):
            moved = base + k * step if field == "above" else base - k * step
            rules.append(_rebuilt(rule, {"id": f"{rule.id}-v{k}", field: str(moved)}))
    return RuleSet.of(rules)


def measure(n_events: int = 200_000, repeats: int = 3) -> str:
    default = load_rules([str(REPO / "rules")])
    many = scaled(default)
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-scale-") as d:
        path = os.path.join(d, "scale.db")
        replay_bench.build_log(path, n_events)
        market = replay_bench.market_count(path)
        ratio = baselines.ratio(lambda: replay_bench.replay_rate(path, many, market),
                                lambda: replay_bench.replay_rate(path, default, market), repeats=repeats)
        print(f"bench scale-rules: {len(many)} rules vs {len(default)}, {market} market events",
              file=sys.stderr)
    return f"BENCH scale-rules {ratio:.2f} target 0.5"


if __name__ == "__main__":
    from watchdog.app import tune_gc
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS_SCALE", 200_000)))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tune_gc()
    print(measure(args.events, args.repeats))
