"""Label patterns (``match_re``, ``source_re``/``target_re``, silences' ``matchers_re``): RE2.

Routing decides on every alert and every flush. A pattern in Python's backtracking ``re`` can
take exponential time (``(a+)+b`` against a label of thirty ``a``) and stall the daemon: the
event loop stops, ``/healthz`` times out, SIGTERM waits. Patterns are therefore compiled with
RE2 (google-re2), whose matching is linear in the length of the label whatever the pattern.

RE2's syntax is Python's for everything a label matcher needs (literals, ``.``, classes,
``\\d \\w \\s \\b``, ``| * + ? {m,n}``, lazy quantifiers, groups, ``(?i)``); it has no
backreferences (``\\1``, ``(?P=name)``), look-around (``(?=…)``, ``(?!…)``, ``(?<=…)``),
atomic groups or possessive quantifiers, and writes the end of text ``\\z`` (not ``\\Z``):
those are refused where the pattern is written, with what RE2 said. Repetition counts are at
most 1000 and a compiled pattern at most ``MAX_PATTERN_MEMORY`` bytes, so compiling is bounded
too.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_CHARS = 1000            # a label pattern longer than this is a paste error
MAX_PATTERN_MEMORY = 1 << 20        # RE2's budget for one compiled pattern (bytes)
SYNTAX = "RE2 syntax: no backreferences, look-around, atomic groups or possessive quantifiers"


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says why, without the word 'error'."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False          # our message says it; RE2 would also print to stderr
    options.max_mem = MAX_PATTERN_MEMORY
    return options


_OPTIONS = _options()


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (use ``.fullmatch``), or ``PatternError`` saying what RE2 refused."""
    if not isinstance(pattern, str):
        raise PatternError("a pattern is text")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"{len(pattern):,} characters, more than {MAX_PATTERN_CHARS:,}")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise PatternError(f"{_said(exc)} ({SYNTAX})") from None
    except (TypeError, ValueError) as exc:       # e.g. a lone surrogate, which is no UTF-8
        raise PatternError(f"{exc} ({SYNTAX})") from None


def fullmatch(pattern: str, value: str) -> bool:
    """Whether ``pattern`` matches the whole of ``value``, in time linear in ``value``."""
    compiled = compile_pattern(pattern)
    try:
        return compiled.fullmatch(value) is not None
    except UnicodeEncodeError:                   # a lone surrogate: RE2 reads UTF-8
        return compiled.fullmatch(value.encode("utf-8", "backslashreplace").decode()) is not None


def _said(exc: Exception) -> str:
    said = exc.args[0] if exc.args else str(exc)
    if isinstance(said, bytes):
        said = said.decode("utf-8", "replace")
    return str(said)
