"""Keyword rules over Fed speeches: compile a ``KeywordRule`` once, match it against speeches.

Pure core: standard library, ``watchdog.rules.ruleset``, ``watchdog.model.events`` and
``watchdog.model.speakers`` (a speech's speaker name) only; no I/O, no clock.

    matcher = compile_keyword_rule(rule)          # all regexes are built here, once
    found = matcher.match(speech_payload)         # KeywordMatch | None

What counts as a hit
--------------------
* **Case-insensitive, on word boundaries.** A term never matches inside a longer word
  ("repo" is not in "report", "ample" is not in "example"). Case is folded with ``str.lower``.
* **Multi-word phrases** match across any run of whitespace, newlines included
  ("balance sheet" matches "balance\n  sheet"). A space in a phrase also matches a hyphen
  (compound modifiers: "ample reserves" matches "ample-reserves regime"); a hyphen in a phrase
  matches a hyphen or nothing ("run-off" matches "run-off" and "runoff", not "run off"). An
  apostrophe matches a straight or a curly one.
* **Inflections** apply to the *last* word of a phrase only, and only when it is all letters,
  three or more, and not all capitals (an acronym such as "QT" or "SOFR" matches as written;
  "Reserve Bank" also matches "Reserve Banks"). Write the base form; the matcher adds the
  regular English suffixes: plural ``-s`` (``-es`` after s, x, z, ch, sh; ``-ies`` after a
  consonant + y), ``-ing`` and ``-ed`` (a final ``e`` is dropped before -ing and takes just
  ``-d``: purchase -> purchases, purchasing, purchased; consonant + y -> ``-ied``). Nothing
  else: no irregular forms, no consonant doubling, no derivations (abundant does not match
  abundance -- list both), and a phrase written in the plural does not match the singular.
* **Stop-phrases** (``ignore``) are read in the same left-to-right scan as the phrases: at each
  position the longest term wins, and a stop-phrase found there consumes its words, so nothing
  inside it counts ("the Federal Reserve" never yields "reserve", nor does "Reserve Banks" with
  ``ignore = ["Reserve Bank"]``). A hit that would cut into a stop-phrase ("ample Reserve" in
  "ample Reserve Bank") is dropped as well. A phrase that *contains* a whole stop-phrase and is
  longer than it ("Federal Reserve balance sheet") still counts: the rule author wrote it. A
  term that is both a phrase and a stop-phrase is a stop-phrase.
* **Proximity** (``near``): a term of ``left`` and a term of ``right``, in either order, with at
  most ``within - 1`` words between them ("within 1" = adjacent; "reserves are ample" is
  within 2). Words are runs of letters and digits (a hyphen or apostrophe separates words).
  Distance is counted in words regardless of sentence boundaries, so a pair may straddle a
  full stop; the alert then shows both sentences. Stop-phrases mask proximity terms too. Each
  ``left`` occurrence is paired with its nearest ``right`` occurrence.
* **Counting.** Every phrase occurrence is a hit, and so is every proximity pair; hits never
  overlap (a proximity pair overlapping a phrase hit or an earlier pair is not counted again),
  so "reserves are ample" with both a phrase and a near clause for it is one hit. A speech
  matches when it has at least ``min_hits`` hits.
* **Speakers and institutions** filter before any text is read: a speaker entry matches the
  speaker's surname or full name (case-insensitive; middle initials and Jr./Sr./II/III are
  ignored, and an entry matches the end of a name, so "Quarles" and "Randal Quarles" both match
  "Randal K. Quarles"); the payload's speaker line is first reduced to the person's name
  (``model.speakers.normalise_speaker``: "For Supervision Randal K. Quarles", as logs recorded
  before the sources normalised it hold, is "Randal K. Quarles"). An institution entry matches
  the payload's ``institution`` exactly, case-insensitively.

How it is fast
--------------
Each rule compiles *one* regular expression: every phrase, stop-phrase and proximity term,
expanded into its inflections and merged into a prefix tree, so the regex engine walks shared
prefixes once, longest alternative first. Every alternative starts with a literal character,
which lets ``re`` skip over characters that cannot start a term without entering the matcher;
the word-start check follows the first character as a look-behind. The text is lower-cased
once (``str.lower`` keeps offsets when it does not change the length; otherwise characters
whose lower case is longer are left as they are), so no ``IGNORECASE`` is needed. Which term a
match is is looked up by its normalised text. Python code runs only per match, never per
sentence or per phrase.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from watchdog.model.speakers import name_tokens, speaker_matches
from watchdog.rules.ruleset import KeywordRule

SENTENCE_MAX = 400       # characters of a matched sentence shown in an alert
# Sentences an alert keeps (the first, in text order): a hostile text with a hit every few words
# and no full stop would otherwise yield one 400-character window per hit, an alert event of
# tens of MB, over the 1 MB payload limit. The alert's value still counts every hit.
MAX_SENTENCES = 50
_SENTENCE_SEARCH = 1500  # how far (characters) to look for the ends of a sentence

# ---- results ----


@dataclass(frozen=True, slots=True)
class Hit:
    """One hit: ``phrase`` is the rule's phrase as written (``"left near right"`` for a
    proximity pair); ``start``/``end`` are offsets into the speech text; ``sentence`` is the
    sentence (or, for a pair straddling a full stop, the sentences) holding it, whitespace
    collapsed and trimmed to about ``SENTENCE_MAX`` characters around the hit."""
    phrase: str
    start: int
    end: int
    sentence: str


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """A speech that a keyword rule flags: its hits in text order, and the sentences holding
    them (deduplicated, in text order, the first ``MAX_SENTENCES``) to show in the alert."""
    rule_id: str
    hits: tuple[Hit, ...]
    sentences: tuple[str, ...]

    @property
    def phrase(self) -> str:
        """The first hit's phrase: what ``{{ phrase }}`` in a summary renders."""
        return self.hits[0].phrase

    @property
    def phrases(self) -> tuple[str, ...]:
        """Distinct phrases hit, in order of first hit."""
        return tuple(dict.fromkeys(hit.phrase for hit in self.hits))


# ---- terms: phrases expanded into atoms, inflections and a prefix tree ----

_WS, _DASH, _APOS = "<ws>", "<dash>", "<apos>"     # atoms that are not single characters
_DASHES = "-\u2010\u2011"                          # hyphen-minus, hyphen, non-breaking hyphen
_APOSTROPHES = "'\u2019\u2018"
_ATOM_REGEX = {
    _WS: r"(?:\s+|[" + _DASHES + "])",     # a space in a phrase: whitespace or a hyphen
    _DASH: "[" + _DASHES + "]?",            # a hyphen in a phrase: a hyphen or nothing
    _APOS: "[" + _APOSTROPHES + "]",
}
# What a matched text is normalised to before it is looked up: whitespace and hyphens removed
# (a space may have matched a hyphen, a hyphen nothing), apostrophes made straight.
_KEY_TABLE = str.maketrans({**{c: None for c in _DASHES}, **{c: "'" for c in _APOSTROPHES[1:]}})
_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")


def _inflections(word: str) -> set[str]:
    """The regular English forms of a lowercase word (see the module docstring)."""
    forms = {word}
    consonant_y = len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou"
    if word.endswith(_SIBILANT_ENDINGS):
        forms.add(word + "es")
    elif consonant_y:
        forms.add(word[:-1] + "ies")
    else:
        forms.add(word + "s")
    if word.endswith("ee"):
        forms.update((word + "d", word + "ing"))
    elif word.endswith("e"):
        forms.update((word + "d", word[:-1] + "ing"))
    elif consonant_y:
        forms.update((word[:-1] + "ied", word + "ing"))
    else:
        forms.update((word + "ed", word + "ing"))
    return forms


def _word_atoms(word: str) -> list[str]:
    return [_DASH if c in _DASHES else _APOS if c in _APOSTROPHES else c for c in word]


def _variants(phrase: str) -> list[tuple[str, ...]]:
    """Every spelling a phrase matches, each as a tuple of atoms (lowercase characters and the
    whitespace/dash/apostrophe atoms)."""
    words = phrase.split()
    last = words[-1]
    inflectable = len(last) >= 3 and last.isalpha() and not last.isupper()
    lasts = sorted(_inflections(last.lower())) if inflectable else [last.lower()]
    head: list[str] = []
    for word in words[:-1]:
        head.extend(_word_atoms(word.lower()))
        head.append(_WS)
    return [tuple(head + _word_atoms(form)) for form in lasts]


def _key(text: str) -> str:
    """A matched text or a variant, normalised for look-up."""
    return "".join(text.lower().translate(_KEY_TABLE).split())


def _variant_key(atoms: tuple[str, ...]) -> str:
    return _key("".join("" if a in (_WS, _DASH) else "'" if a == _APOS else a for a in atoms))


class _Node:
    __slots__ = ("children", "terminal", "word_end")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.terminal = False
        self.word_end = False


def _is_word_char(atom: str) -> bool:
    return len(atom) == 1 and (atom.isalnum() or atom == "_")


def _trie_regex(variants: Sequence[tuple[str, ...]]) -> str:
    """One regex for all variants: a prefix tree, longest alternative first at every node,
    each top-level alternative starting with a literal character (so ``re`` can skip ahead on
    the set of first characters) followed by the word-start look-behind."""
    root = _Node()
    for atoms in variants:
        node = root
        for atom in atoms:
            node = node.children.setdefault(atom, _Node())
        node.terminal = True
        node.word_end = _is_word_char(atoms[-1])

    def below(node: _Node) -> str:
        alternatives = [_atom(atom) + below(child) for atom, child in sorted(node.children.items())]
        if node.terminal:   # last, so that a longer term is tried first
            alternatives.append(r"(?!\w)" if node.word_end else "")
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"

    def _atom(atom: str) -> str:
        return _ATOM_REGEX.get(atom) or re.escape(atom)

    top = []
    for atom, child in sorted(root.children.items()):
        start = _atom(atom) + (r"(?<!\w.)" if _is_word_char(atom) else "")
        top.append(start + below(child))
    return "(?:" + "|".join(top) + ")"


# ---- text helpers ----

_lower_cache: tuple[str, str] = ("", "")


def _lower(text: str) -> str:
    """``text`` lower-cased with the same offsets. Several rules read the same speech one after
    another, so the last result is kept (a pure cache: same text in, same text out)."""
    global _lower_cache
    cached_text, cached = _lower_cache
    if cached_text is text:
        return cached
    lowered = text.lower()
    if len(lowered) != len(text):   # a character whose lower case is longer (e.g. U+0130)
        lowered = "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)
    _lower_cache = (text, lowered)
    return lowered


_WORD = re.compile(r"[^\W_]+")
_WORD_START = re.compile(r"(?<!\w)\w")
# A sentence ends at . ! or ? (with closing quotes/brackets and a footnote number) followed by
# whitespace and an uppercase letter or digit, or at a line break before one (speech texts
# break lines only between paragraphs, and a heading has no full stop).
_BOUNDARY = re.compile(
    r"(?:(?P<stop>[.!?][\"'\u201d\u2019)\]]*\d{0,3})\s+|[ \t]*\n\s*)"
    r"(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATION = re.compile(
    r"(?:\b[A-Z]|\bU\.S|\bU\.K|\be\.g|\bi\.e|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|No|Nos|vs|al|Inc|Co|Corp|"
    r"Ltd|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|vol|pp|p|Fig|Gov|Pres|Rev|Prof))$")


def _real_boundary(text: str, match: re.Match[str]) -> bool:
    stop = match.group("stop")
    if stop is None:
        return True    # a line break
    if stop[0] != ".":
        return True
    dot = match.start("stop")
    return _ABBREVIATION.search(text, max(0, dot - 6), dot) is None


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    low = max(0, start - _SENTENCE_SEARCH)
    begin = low
    # (the look-ahead needs up to two characters past the hit's start)
    for match in _BOUNDARY.finditer(text, low, start + 2):
        if match.end() <= start and _real_boundary(text, match):
            begin = match.end()
    finish = min(len(text), end + _SENTENCE_SEARCH)
    for match in _BOUNDARY.finditer(text, end, finish):
        if _real_boundary(text, match):
            finish = match.end("stop") if match.group("stop") is not None else match.start()
            break
    return begin, finish


def _show(text: str, begin: int, finish: int, start: int, end: int) -> str:
    """The sentence [begin, finish) as one line, trimmed to about SENTENCE_MAX characters
    around the hit [start, end)."""
    cut_left = cut_right = False
    if finish - begin > SENTENCE_MAX:
        room = max(0, SENTENCE_MAX - (end - start))
        left = max(begin, start - room // 2)
        right = min(finish, max(end, left + SENTENCE_MAX))
        left = max(begin, min(left, right - SENTENCE_MAX))
        cut_left, cut_right = left > begin, right < finish
        begin, finish = left, right
    shown = " ".join(text[begin:finish].split())
    return ("…" if cut_left else "") + shown + ("…" if cut_right else "")


# ---- speakers ----

def _norm_institution(name: str) -> str:
    return " ".join(name.lower().split())


# ---- the matcher ----

_IGNORE = 0
_PHRASE = 1
_LEFT = 2
_RIGHT = 3


@dataclass(frozen=True, slots=True)
class _Occurrence:
    start: int
    end: int
    term: str       # as written in the rule


class KeywordMatcher:
    """A compiled keyword rule. Build with ``compile_keyword_rule``; ``match`` is thread-safe."""

    __slots__ = ("rule", "_regex", "_roles", "_ignore", "_speakers", "_institutions",
                 "_near", "_min_hits")

    def __init__(self, rule: KeywordRule) -> None:
        self.rule = rule
        variants: list[tuple[str, ...]] = []
        ignore_variants: list[tuple[str, ...]] = []
        spellings: dict[str, list[tuple[int, int, str]]] = {}   # key -> (kind, index, term)

        def add(term: str, kind: int, index: int) -> None:
            for atoms in _variants(term.strip()):
                variants.append(atoms)
                if kind == _IGNORE:
                    ignore_variants.append(atoms)
                roles = spellings.setdefault(_variant_key(atoms), [])
                if (kind, index, term) not in roles:
                    roles.append((kind, index, term))

        for term in rule.ignore:
            add(term, _IGNORE, 0)
        for term in rule.phrases:
            add(term, _PHRASE, 0)
        for index, near in enumerate(rule.near):
            for term in near.left:
                add(term, _LEFT, index)
            for term in near.right:
                add(term, _RIGHT, index)
        # What a normalised spelling is: None (a stop-phrase, whatever else it is listed as),
        # a phrase (its first listed term; an occurrence is one hit), or proximity roles.
        self._roles: dict[str, str | tuple[tuple[int, int, str], ...] | None] = {}
        for key, roles in spellings.items():
            kinds = {kind for kind, _, _ in roles}
            if _IGNORE in kinds:
                self._roles[key] = None
            elif _PHRASE in kinds:
                self._roles[key] = next(term for kind, _, term in roles if kind == _PHRASE)
            else:
                self._roles[key] = tuple(roles)
        self._regex = re.compile(_trie_regex(variants))
        self._ignore = re.compile(_trie_regex(ignore_variants)) if ignore_variants else None
        self._speakers = tuple(name_tokens(s) for s in rule.speakers)
        self._institutions = frozenset(_norm_institution(i) for i in rule.institutions)
        self._near = tuple(near.within for near in rule.near)
        self._min_hits = rule.min_hits

    @property
    def pattern(self) -> str:
        """The compiled regex (for debugging and benchmarks)."""
        return self._regex.pattern

    def accepts(self, speaker: str, institution: str) -> bool:
        """Whether the speaker and institution filters let a speech through."""
        if self._institutions and _norm_institution(institution) not in self._institutions:
            return False
        # The speaker line is normalised when read, not only when recorded: older logs hold
        # raw lines ("For Supervision Randal K. Quarles").
        return not self._speakers or speaker_matches(speaker, self._speakers)

    def match(self, speech: Mapping[str, Any]) -> KeywordMatch | None:
        """The rule's hits in a speech payload (``speaker``, ``institution``, ``text``), or
        None when the filters exclude it or it has fewer than ``min_hits`` hits."""
        if not self.accepts(str(speech.get("speaker") or ""), str(speech.get("institution") or "")):
            return None
        text = speech.get("text")
        if not isinstance(text, str) or not text:
            return None
        hits = self.find(text)
        if len(hits) < self._min_hits:
            return None
        return self._result(text, hits)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping hits ``(start, end, phrase)`` in text order (no filters)."""
        lowered = _lower(text)
        roles = self._roles
        ignore = self._ignore
        hits: list[tuple[int, int, str]] = []
        near = self._near
        lefts: list[list[_Occurrence]] = [[] for _ in near]
        rights: list[list[_Occurrence]] = [[] for _ in near]
        for found in self._regex.finditer(lowered):
            role = roles.get(_key(found.group()))
            if role is None:
                continue          # a stop-phrase: its words are consumed
            start, end = found.span()
            if ignore is not None and self._cuts_stop_phrase(lowered, start, end):
                continue
            if isinstance(role, str):
                hits.append((start, end, role))
                continue
            for kind, index, term in role:
                (lefts if kind == _LEFT else rights)[index].append(_Occurrence(start, end, term))
        pairs = []
        for index, within in enumerate(near):
            if lefts[index] and rights[index]:
                pairs.extend(_pairs(lowered, lefts[index], rights[index], within))
        return _merge(hits, pairs) if pairs else hits

    def _cuts_stop_phrase(self, lowered: str, start: int, end: int) -> bool:
        """Whether a stop-phrase starts inside [start, end) and runs past ``end``."""
        assert self._ignore is not None
        for word in _WORD_START.finditer(lowered, start + 1, end):
            stop = self._ignore.match(lowered, word.start())
            if stop is not None and stop.end() > end:
                return True
        return False

    def _result(self, text: str, hits: list[tuple[int, int, str]]) -> KeywordMatch:
        built: list[Hit] = []
        sentences: dict[tuple[int, int], str] = {}
        for start, end, phrase in hits:
            bounds = _sentence_bounds(text, start, end)
            shown = sentences.get(bounds)
            if shown is None:
                shown = sentences[bounds] = _show(text, bounds[0], bounds[1], start, end)
            built.append(Hit(phrase, start, end, shown))
        ordered = sorted(sentences.items(), key=lambda item: item[0])
        return KeywordMatch(self.rule.id, tuple(built),
                            tuple(dict.fromkeys(shown for _, shown in ordered))[:MAX_SENTENCES])


def _pairs(lowered: str, lefts: list[_Occurrence], rights: list[_Occurrence],
           within: int) -> list[tuple[int, int, str]]:
    """Each left occurrence with its nearest right occurrence at most ``within`` words away
    (at most ``within - 1`` words between them)."""
    starts = [r.start for r in rights]
    found = []
    for left in lefts:
        best: tuple[int, _Occurrence] | None = None
        candidates = []
        after = bisect_left(starts, left.end)           # the first right term after it
        if after < len(rights):
            candidates.append(rights[after])
        before = bisect_right(starts, left.start) - 1   # the last right term before it
        while before >= 0 and rights[before].end > left.start:
            before -= 1      # the same occurrence (a term on both sides): not "near" itself
        if before >= 0:
            candidates.append(rights[before])
        for right in candidates:
            first, second = (left, right) if left.start < right.start else (right, left)
            between = _count_words(lowered, first.end, second.start, within)
            if between < within and (best is None or between < best[0]):
                best = (between, right)
        if best is not None:
            right = best[1]
            found.append((min(left.start, right.start), max(left.end, right.end),
                          f"{left.term} near {right.term}"))
    return found


def _count_words(text: str, start: int, end: int, cap: int) -> int:
    """Words in text[start:end], counting no further than ``cap``."""
    count = 0
    for _ in _WORD.finditer(text, start, end):
        count += 1
        if count >= cap:
            break
    return count


def _merge(phrase_hits: list[tuple[int, int, str]],
           pairs: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Phrase hits (never overlapping each other) plus the pairs that overlap no kept hit."""
    kept = sorted(phrase_hits)
    starts = [h[0] for h in kept]
    for pair in sorted(pairs):
        i = bisect_right(starts, pair[0])
        if i > 0 and kept[i - 1][1] > pair[0]:
            continue       # overlaps the hit before it
        if i < len(kept) and kept[i][0] < pair[1]:
            continue       # overlaps the hit after it
        kept.insert(i, pair)
        starts.insert(i, pair[0])
    return kept


def compile_keyword_rule(rule: KeywordRule) -> KeywordMatcher:
    """Compile a keyword rule once; match speeches with ``.match(payload)``."""
    return KeywordMatcher(rule)


def compile_keyword_rules(rules: Sequence[KeywordRule]) -> tuple[KeywordMatcher, ...]:
    """Compile several rules (e.g. ``RuleSet.keyword_rules``), in order."""
    return tuple(KeywordMatcher(rule) for rule in rules)


def match_speech(matchers: Sequence[KeywordMatcher],
                 speech: Mapping[str, Any]) -> list[KeywordMatch]:
    """Every rule that flags ``speech``, in the matchers' order."""
    return [found for matcher in matchers if (found := matcher.match(speech)) is not None]
