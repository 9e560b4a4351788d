"""Keyword-rule matching speed against a plain regex over the same speeches.

    BENCH keywords <ratio> target 0.5
        speech MB/s through every default keyword rule (rules/speeches.toml, compiled once
        outside the timing; ``KeywordMatcher.match`` on each speech payload, speaker filters,
        stop-phrases, proximity and sentence extraction included)
        / MB/s of ONE precompiled ``re`` alternation of all those rules' ``phrases``
        (case-insensitive, ``\\b`` word boundaries, longest first, ``findall``) over the same
        texts: the 523 speeches shipped in data/history/speeches.

The yardstick finds the phrases only: no inflections, no stop-phrases, no proximity, no
sentences, no filters. MB are UTF-8 megabytes of speech text; median of interleaved repeats
(``baselines.ratio``). Run standalone: ``.venv/bin/python bench/keywords.py``.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402

from watchdog.rules.keywords import compile_keyword_rules  # noqa: E402
from watchdog.rules.ruleset import load_rules  # noqa: E402

RULES = REPO / "rules" / "speeches.toml"
SPEECHES = REPO / "data" / "history" / "speeches"


def load_speeches() -> list[dict]:
    """The shipped speeches as ``speech-recorded`` payloads carry them (523 with text)."""
    out = []
    for path in sorted(SPEECHES.glob("*_speeches_*.json")):
        institution = "Board of Governors" if path.name.startswith("bog_") else "New York Fed"
        for record in json.loads(path.read_text(encoding="utf-8")):
            if record.get("content", "").strip():
                out.append({"speaker": record["speaker"], "institution": institution,
                            "date": record["date"], "title": record["title"],
                            "url": record.get("href", ""), "text": record["content"]})
    return out


def yardstick_regex(rules) -> re.Pattern[str]:
    phrases = sorted({p for rule in rules for p in rule.phrases}, key=lambda p: (-len(p), p))
    return re.compile(r"\b(?:" + "|".join(map(re.escape, phrases)) + r")\b", re.IGNORECASE)


def measure(repeats: int = 5) -> str:
    rules = load_rules([str(RULES)]).keyword_rules
    matchers = compile_keyword_rules(rules)
    yardstick = yardstick_regex(rules)
    speeches = load_speeches()
    texts = [s["text"] for s in speeches]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6

    def ours() -> float:
        start = time.perf_counter()
        for payload in speeches:
            for matcher in matchers:
                matcher.match(payload)
        return megabytes / (time.perf_counter() - start)

    def base() -> float:
        start = time.perf_counter()
        for text in texts:
            yardstick.findall(text)
        return megabytes / (time.perf_counter() - start)

    ours(), base()                                   # warm-up
    ratio = baselines.ratio(ours, base, repeats=repeats)
    return f"BENCH keywords {ratio:.2f} target 0.5"


if __name__ == "__main__":
    print(measure())
