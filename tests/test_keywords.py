"""Keyword rules over speeches (watchdog/rules/keywords.py) and the default rules/speeches.toml,
checked on small texts and on the 523 real speeches shipped in data/history/speeches."""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from watchdog.rules.keywords import (SENTENCE_MAX, Hit, KeywordMatch, compile_keyword_rule,
                               compile_keyword_rules, match_speech)
from watchdog.rules.ruleset import KeywordRule, Proximity, load_rules

REPO = Path(__file__).resolve().parent.parent
SPEECHES = REPO / "data" / "history" / "speeches"
DEFAULT_RULES = REPO / "rules" / "speeches.toml"

FED_NAMES = ["Federal Reserve", "Reserve Bank", "Federal Reserve System"]


def rule(**fields) -> KeywordRule:
    fields.setdefault("id", "k")
    fields.setdefault("phrases", ["placeholder-never-in-text"])
    return KeywordRule(**fields)


def speech(text: str, speaker: str = "Jerome H. Powell",
           institution: str = "Board of Governors") -> dict:
    return {"speaker": speaker, "institution": institution, "date": "2019-10-08",
            "title": "t", "url": "", "text": text}


def hits(keyword_rule: KeywordRule, text: str, **where) -> list[str]:
    """The matched texts, in order (empty when the rule does not flag the speech)."""
    found = compile_keyword_rule(keyword_rule).match(speech(text, **where))
    return [text[h.start:h.end] for h in found.hits] if found else []


# ---- stop-phrases ----

def test_the_federal_reserve_alone_never_counts_as_reserve():
    r = rule(phrases=["reserve"], ignore=FED_NAMES)
    text = ("The Federal Reserve System, the Federal Reserve Bank of New York, the twelve "
            "Reserve Banks and the Federal\nReserve's Board.")
    assert hits(r, text) == []
    assert hits(r, "The Federal Reserve pays interest on reserves.") == ["reserves"]


def test_stop_phrases_also_mask_proximity_terms():
    r = rule(ignore=FED_NAMES, near=[Proximity(left=["reserve"], right=["ample"], within=3)])
    assert hits(r, "The Federal Reserve says it is ample.") == []
    assert hits(r, "The Federal Reserve says reserves are ample.") == ["reserves are ample"]


def test_a_hit_that_would_cut_into_a_stop_phrase_does_not_count():
    r = rule(phrases=["ample reserve"], ignore=["Reserve Bank"])
    assert hits(r, "an ample Reserve Bank network") == []
    assert hits(r, "an ample reserve buffer") == ["ample reserve"]


def test_a_phrase_that_contains_a_whole_stop_phrase_still_counts():
    r = rule(phrases=["Federal Reserve balance sheet"], ignore=["Federal Reserve"])
    assert hits(r, "the Federal Reserve balance sheet shrank") == ["Federal Reserve balance sheet"]


def test_a_term_listed_as_phrase_and_stop_phrase_is_a_stop_phrase():
    assert hits(rule(phrases=["repo market"], ignore=["repo market"]), "the repo market") == []


# ---- words, inflections, multi-word phrases ----

def test_terms_match_whole_words_only_case_insensitively():
    r = rule(phrases=["repo", "ample"])
    assert hits(r, "The report on the repository gave an example.") == []
    assert hits(r, "REPO, Repo and repo; ample.") == ["REPO", "Repo", "repo", "ample"]


@pytest.mark.parametrize("phrase, text", [
    ("reserve", "reserves"),
    ("asset purchase", "asset purchases"),
    ("asset purchase", "asset purchasing"),
    ("asset purchase", "asset purchased"),
    ("money market", "money markets"),
    ("facility", "facilities"),
    ("stress", "stresses"),
    ("strain", "strained"),
    ("strain", "straining"),
])
def test_the_last_word_of_a_phrase_takes_regular_inflections(phrase, text):
    assert hits(rule(phrases=[phrase]), f"on {text} today") == [text]


@pytest.mark.parametrize("phrase, text", [
    ("asset purchase", "assets purchase"),     # only the last word is inflected
    ("reserves", "reserve"),                   # a plural phrase does not match the singular
    ("abundant", "abundance"),                 # no derivations: list both
    ("QT", "QTs"),                             # acronyms match as written
    ("purchase", "purchaser"),
])
def test_other_forms_do_not_match(phrase, text):
    assert hits(rule(phrases=[phrase]), f"on {text} today") == []


def test_a_multi_word_phrase_matches_across_a_newline_and_runs_of_spaces():
    text = "the pace of balance\n   sheet runoff slowed"
    assert hits(rule(phrases=["balance sheet runoff"]), text) == ["balance\n   sheet runoff"]


def test_a_space_matches_a_hyphen_and_a_hyphen_may_be_dropped():
    assert hits(rule(phrases=["ample reserves regime"]), "an ample-reserves regime") == \
        ["ample-reserves regime"]
    r = rule(phrases=["run-off"])
    assert hits(r, "run-off and runoff") == ["run-off", "runoff"]
    assert hits(r, "to run off the road") == []


def test_curly_and_straight_apostrophes_are_the_same():
    assert hits(rule(phrases=["Fed's balance sheet"]), "the Fed\u2019s balance sheet") == \
        ["Fed\u2019s balance sheet"]


def test_the_longest_phrase_wins_and_counts_once():
    r = rule(phrases=["runoff", "balance sheet runoff"])
    assert hits(r, "balance sheet runoff") == ["balance sheet runoff"]


# ---- proximity ----

NEAR = Proximity(left=["reserve"], right=["ample", "scarce"], within=3)


@pytest.mark.parametrize("text, expected", [
    ("reserves are ample", ["reserves are ample"]),                  # left first
    ("ample supply of reserves", ["ample supply of reserves"]),      # right first
    ("reserves are still ample", ["reserves are still ample"]),      # 2 words between: within 3
    ("reserves are still very ample", []),                           # 3 words between: too far
    ("scarce.\n\nReserves", ["scarce.\n\nReserves"]),                # across sentences counts
])
def test_proximity_pairs_terms_in_either_order_within_the_window(text, expected):
    assert hits(rule(near=[NEAR]), text) == expected


def test_within_one_means_adjacent():
    r = rule(near=[Proximity(left=["reserve"], right=["ample"], within=1)])
    assert hits(r, "ample reserves") == ["ample reserves"]
    assert hits(r, "reserves are ample") == []


def test_a_proximity_pair_overlapping_a_phrase_hit_counts_once():
    r = rule(phrases=["reserves are ample"], near=[NEAR])
    found = compile_keyword_rule(r).match(speech("We think reserves are ample."))
    assert [h.phrase for h in found.hits] == ["reserves are ample"]


def test_each_left_term_pairs_with_its_nearest_right_term():
    r = rule(near=[NEAR], min_hits=1)
    found = compile_keyword_rule(r).match(
        speech("Reserves are ample. Later, we expect reserves to become scarce."))
    assert [h.phrase for h in found.hits] == ["reserve near ample", "reserve near scarce"]


# ---- filters and min_hits ----

@pytest.mark.parametrize("speaker, flagged", [
    ("Jerome H. Powell", True),
    ("JEROME H. POWELL", True),
    ("Jerome Powell", True),                    # middle initials do not matter
    ("Roberto Perli", True),
    ("And Chair Of The Financial Stability Board Randal K. Quarles", False),
    ("Michelle W. Bowman", False),
    ("Powellson", False),
])
def test_speakers_match_on_surname_or_full_name(speaker, flagged):
    r = rule(phrases=["repo"], speakers=["Powell", "Perli"])
    assert bool(hits(r, "repo", speaker=speaker)) is flagged


def test_a_full_name_speaker_entry_matches_the_end_of_a_long_title():
    r = rule(phrases=["repo"], speakers=["Randal K. Quarles", "Roger W. Ferguson"])
    assert hits(r, "repo", speaker="For Supervision Randal K. Quarles") == ["repo"]
    assert hits(r, "repo", speaker="Roger W. Ferguson, Jr.") == ["repo"]
    assert hits(r, "repo", speaker="Randal Smith") == []


def test_institutions_match_exactly_ignoring_case():
    r = rule(phrases=["repo"], institutions=["New York Fed"])
    assert hits(r, "repo", institution="new york fed") == ["repo"]
    assert hits(r, "repo", institution="Board of Governors") == []
    assert hits(r, "repo", institution="New York") == []


def test_min_hits_counts_every_occurrence():
    r = rule(phrases=["repo"], min_hits=3)
    assert hits(r, "repo and repo") == []
    assert hits(r, "repo, repo and repos") == ["repo", "repo", "repos"]


def test_a_speech_without_text_is_not_flagged():
    matcher = compile_keyword_rule(rule(phrases=["repo"]))
    assert matcher.match({"speaker": "Powell", "institution": "Board"}) is None
    assert matcher.match(speech("")) is None


# ---- what an alert shows ----

def test_a_match_carries_hits_with_offsets_and_deduplicated_sentences_in_text_order():
    text = ("Inflation is falling. Repo rates rose, and repo volumes too.\n\n"
            "Payrolls grew. The U.S. repo market is deep.")
    found = compile_keyword_rule(rule(id="repo-talk", phrases=["repo"])).match(speech(text))
    assert isinstance(found, KeywordMatch) and found.rule_id == "repo-talk"
    assert all(isinstance(h, Hit) and text[h.start:h.end].lower() == "repo" for h in found.hits)
    assert found.sentences == ("Repo rates rose, and repo volumes too.",
                               "The U.S. repo market is deep.")       # "U.S." does not end it
    assert [h.sentence for h in found.hits] == [found.sentences[0]] * 2 + [found.sentences[1]]
    assert found.phrase == "repo" and found.phrases == ("repo",)


def test_a_heading_line_is_its_own_sentence():
    found = compile_keyword_rule(rule(phrases=["ample reserves"])).match(
        speech("Ample Reserves\nAs I mentioned earlier, rates are set by supply and demand."))
    assert found.sentences == ("Ample Reserves",)


def test_long_sentences_are_trimmed_around_the_hit():
    text = "Word " * 300 + "the standing repo facility " + "word " * 300 + "ends here."
    found = compile_keyword_rule(rule(phrases=["standing repo facility"])).match(speech(text))
    shown = found.sentences[0]
    assert "standing repo facility" in shown
    assert shown.startswith("…") and shown.endswith("…")
    assert len(shown) <= SENTENCE_MAX + 2


def test_match_speech_runs_several_rules_in_order():
    matchers = compile_keyword_rules([rule(id="a", phrases=["repo"]), rule(id="b", phrases=["qt"]),
                                      rule(id="c", phrases=["runoff"])])
    assert [m.rule_id for m in match_speech(matchers, speech("QT means runoff"))] == ["b", "c"]


def test_the_matcher_is_pure_core():
    tree = ast.parse((REPO / "watchdog" / "rules" / "keywords.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed_watchdog = {"watchdog.rules.ruleset", "watchdog.model.events", "watchdog.model.speakers"}
    for name in imported:
        assert name in allowed_watchdog or (name.split(".")[0] in sys.stdlib_module_names
                                            and name.split(".")[0] not in
                                            {"asyncio", "sqlite3", "socket", "time", "os"}), name


# ---- the default rules on the real speeches ----

@pytest.fixture(scope="module")
def real_speeches() -> list[dict]:
    """The shipped speeches as speech-recorded payloads would carry them (523 with text)."""
    out = []
    for path in sorted(SPEECHES.glob("*_speeches_*.json")):
        institution = "Board of Governors" if path.name.startswith("bog_") else "New York Fed"
        for record in json.loads(path.read_text(encoding="utf-8")):
            if record.get("content", "").strip():
                out.append({"speaker": record["speaker"], "institution": institution,
                            "date": record["date"], "title": record["title"],
                            "url": record.get("href", ""), "text": record["content"]})
    return out


@pytest.fixture(scope="module")
def flags(real_speeches) -> list[tuple[dict, KeywordMatch]]:
    matchers = compile_keyword_rules(load_rules([str(DEFAULT_RULES)]).keyword_rules)
    return [(s, m) for s in real_speeches for m in match_speech(matchers, s)]


def test_the_shipped_history_has_523_speeches(real_speeches):
    assert len(real_speeches) == 523


def test_default_rules_flag_a_small_minority_of_real_speeches(real_speeches, flags):
    flagged = {id(s) for s, _ in flags}
    share = len(flagged) / len(real_speeches)
    assert 0.01 <= share <= 0.15, share
    ids = {r.id for r in load_rules([str(DEFAULT_RULES)]).keyword_rules}
    per_rule = {rule_id: sum(1 for _, m in flags if m.rule_id == rule_id) for rule_id in ids}
    assert all(1 <= n <= 0.05 * len(real_speeches) for n in per_rule.values()), per_rule


ON_TOPIC = re.compile(
    r"\breserves\b|\breserve (?:balances|levels?|supply|demand|market)|balance[- ]sheets?\b|"
    r"\brepos?\b|\brun-?off\b|\bQT\b|quantitative tightening|asset purchases|"
    r"money markets?|funding markets?", re.IGNORECASE)


def test_every_flagged_board_sentence_is_about_reserves_the_balance_sheet_or_repo(flags):
    board = [(s, m) for s, m in flags if s["institution"] == "Board of Governors"]
    assert len(board) > 20
    off_topic = [(m.rule_id, s["speaker"], s["date"], sentence) for s, m in board
                 for sentence in m.sentences if not ON_TOPIC.search(sentence)]
    assert off_topic == []


@pytest.mark.parametrize("rule_id, speaker, date, sentence", [
    ("money-market-strains", "Jerome H. Powell", "October 08, 2019",
     "Payments to meet corporate tax obligations and to purchase Treasury securities triggered "
     "notable liquidity pressures in money markets."),
    ("reserves-not-abundant-key-officials", "John C. Williams", "October 17, 2019",
     "we have been actively looking for signs that reserves might be growing scarce."),
    ("reserves-not-abundant-key-officials", "John C. Williams", "September 06, 2024",
     "the level of reserves remains well above ample."),
    ("balance-sheet-policy", "Jerome H. Powell", "March 08, 2019",
     "Once balance sheet runoff ends, we may, if appropriate, hold the size of the balance sheet"),
    ("balance-sheet-policy", "Christopher J. Waller", "March 01, 2024",
     "runoff up to $95 billion a month is not causing substantial strains in financial markets"),
    ("reserves-not-abundant", "Michelle W. Bowman", "May 28, 2024",
     "it will eventually be appropriate to stop runoff as reserves near an ample level."),
])
def test_known_real_sentences_are_flagged(flags, rule_id, speaker, date, sentence):
    found = [m for s, m in flags
             if m.rule_id == rule_id and s["speaker"] == speaker and s["date"] == date]
    assert found, (rule_id, speaker, date)
    assert any(sentence in shown for shown in found[0].sentences), found[0].sentences


@pytest.mark.parametrize("speaker, date, why", [
    ("Randal K. Quarles", "October 05, 2021", "SOFR 12 times: the end of LIBOR"),
    ("John C. Williams", "July 13, 2020", "SOFR 12 times: the LIBOR transition"),
    ("Randal K. Quarles", "October 18, 2021", "money market funds 9 times: MMF reform"),
    ("Richard H. Clarida", "November 30, 2021", "'Federal Reserve' 74 times: independence"),
])
def test_known_off_topic_real_speeches_are_not_flagged(real_speeches, flags, speaker, date, why):
    assert any(s["speaker"].endswith(speaker) and s["date"] == date for s in real_speeches), why
    assert not [m.rule_id for s, m in flags if s["speaker"].endswith(speaker) and s["date"] == date]
