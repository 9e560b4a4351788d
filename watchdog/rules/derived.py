"""Derived series: indicators computed from recorded facts, declared once in ``[[series]]`` tables
beside the rules (``rules/series.toml``) and readable by any rule as a name.

    [[series]]
    name = "effr_iorb"
    expr = "bp(effr - iorb)"
    unit = "bp"
    description = "EFFR against the rate the Fed pays on reserves"

A derived series is an expression of the rule language (``watchdog.rules.expr``) over the
catalogue's series, other derived series, windows and calendar terms. It is never stored: the
engine evaluates it from the facts every time a rule reads it, so live and replay compute it from
the same facts and cannot disagree, and a redefinition applies to all of history at once (a
replay with the new definition is how it is tuned). A rule that reads one records the definitions
it reads in its canonical text (``Rule.derived``): the log's ``rules-loaded`` event is whole
without the files, and redefining a series changes the hash of every rule that reads it.

The status page, ``watchdog status`` and the report show each derived series (``unit`` says how
its numbers read: ``bp``, ``%``, ``USD bn``, ``USD bn/month``, ``index``, ``days``). Pure.
"""
from __future__ import annotations

import re
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

from watchdog.market.calterms import NUMBER_TERMS, TERMS
from watchdog.market.series import SERIES
from watchdog.rules.expr import FUNCTIONS, ExprError, compile_expr

Unit = Literal["bp", "%", "USD bn", "USD bn/month", "index", "days"]
_DISPLAY_UNITS = {"bp": "bp", "%": "share", "USD bn": "USD bn", "USD bn/month": "USD bn",
                  "index": "", "days": ""}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class DerivedSeries(BaseModel):
    """``[[series]]``: a named expression with a unit."""
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    expr: str
    unit: Unit
    description: str = ""
    _source: str = PrivateAttr(default="")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and underscores, "
                             "starting with a letter (e.g. effr_iorb), at most 48 characters")
        if value in SERIES:
            raise ValueError(f"{value!r} is already a recorded series of the catalogue")
        if value in TERMS or value in NUMBER_TERMS or value in FUNCTIONS:
            raise ValueError(f"{value!r} is a reserved word of the expression language")
        return value

    @property
    def display_unit(self) -> str:
        """The unit ``display.quantity`` formats its values in: a "%" here is a share (25 %),
        not a rate (4.33 %)."""
        return _DISPLAY_UNITS[self.unit]

    @property
    def source(self) -> str:
        """``FILE:LINE`` of its table."""
        return self._source

    def compiled(self, catalogue: Mapping[str, str]):
        return compile_expr(self.expr, catalogue)


def drivers_of(names: frozenset[str] | set[str]) -> tuple[str, ...]:
    """The series whose dates an expression reading ``names`` is evaluated on, sorted: its
    market series, or all its series when it reads none (a weekly ratio). Rules and derived
    series share it, so a chart of a derived series has the dates a rule reading it has."""
    series = sorted({name.partition(".")[0] for name in names})
    market = [s for s in series if SERIES[s].join == "market"]
    return tuple(market or series)


def catalogue_of(series: Sequence[DerivedSeries]) -> dict[str, str]:
    """Name -> expression: what ``compile_expr(text, derived=...)`` takes."""
    return {s.name: s.expr for s in series}


def check_expressions(series: Sequence[DerivedSeries]) -> list[tuple[DerivedSeries, str]]:
    """Each series whose expression does not compile against the whole catalogue (unknown
    names, cycles, a condition where a number is needed), with the reason."""
    catalogue = catalogue_of(series)
    problems = []
    for item in series:
        try:
            compiled = item.compiled(catalogue)
        except ExprError as exc:
            problems.append((item, str(exc)))
            continue
        if compiled.kind != "number":
            problems.append((item, "must be a number, not a condition"))
    return problems


def from_table(table: Any) -> DerivedSeries:
    return DerivedSeries.model_validate(table)
