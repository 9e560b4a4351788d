"""Rules: the TOML rule files, validated into frozen models with a canonical text and hash.

A rules file holds ``[[rule]]`` tables (a threshold on an expression over series) and
``[[keyword_rule]]`` tables (phrases in speeches; validated now, evaluated by a later engine).
``load_rules`` reads files and folders (``*.toml``, not recursive: rule unit tests live in
``rules/tests/``), collects *every* problem, and raises one ``RuleError`` listing them as
``FILE:LINE: rule ID: FIELD: message``. Nothing in a file is ever executed: numbers are read as
``Decimal`` and expressions are compiled by ``watchdog.rules.expr``'s whitelist.

Each rule has a canonical text (canonical JSON of its validated fields, decimals normalised, the
rule kind added) and its sha256. That text is what ``rules-loaded`` events record, and
``rule_from_canonical`` rebuilds the same rule from it, so an audit can re-run exactly the rules
the daemon ran. Where a rule came from (``source``) and its compiled expression are not part of
it: moving a file does not change a rule.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar, Iterable, Literal, Mapping, Sequence

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError,
                      ValidationInfo, field_serializer, field_validator, model_validator)
from jinja2 import meta
from pydantic_core import PydanticCustomError

from watchdog.model import tomlpos
from watchdog.market.calterms import TERMS
from watchdog.model.errors import RuleError
from watchdog.model.events import canonical_json, content_hash
from watchdog.rules.derived import DerivedSeries, catalogue_of, check_expressions, drivers_of
from watchdog.rules.expr import Expr, ExprError, compile_expr, derived_names
from watchdog.model.numbers import norm
from watchdog.market.series import SERIES
from watchdog.rules.templates import (SUMMARY_FILTERS, SUMMARY_MAX_CHARS, TemplateProblem, cut_value,  # noqa: F401
                                language_problem, parse_summary, render_bounded)
from watchdog.model.timefmt import parse_duration

Severity = Literal["info", "warning", "critical"]

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_LABELS = frozenset({"rule", "severity"})  # set from the rule itself
_BUSINESS_DAYS = re.compile(r"^(\d+)bd$")
MAX_BUSINESS_DAYS = 260  # a year of business days: bounds the engine's warm-up window

# What a summary may mention. Threshold rules also get every input name of their expression.
THRESHOLD_PLACEHOLDERS = frozenset({"value", "threshold", "date", "rule", "severity"})
KEYWORD_PLACEHOLDERS = frozenset({"rule", "severity", "date", "speaker", "institution",
                                  "title", "url", "phrase"})
MISSING_VALUE = "n/a"  # rendered for a placeholder the caller has no value for


def _business_days(text: str | None) -> int:
    match = _BUSINESS_DAYS.match(text or "")
    days = int(match.group(1)) if match else 0
    return days if 1 <= days <= MAX_BUSINESS_DAYS else 0


def _check_term(term: str) -> None:
    if term not in TERMS:
        raise _problem(f"unknown calendar term {term!r}; known: {', '.join(TERMS)}")


def _problem(message: str) -> PydanticCustomError:
    # "{msg}" keeps braces in the message (e.g. "{{ x }}") away from pydantic's formatting.
    return PydanticCustomError("rule_field", "{msg}", {"msg": message})


class _RuleBase(BaseModel):
    """What every kind of rule shares. It has no fields: each kind declares all of its own so
    their order (which is the order validators see them in) is explicit."""
    # No populate_by_name: a file must say `for`, not the Python spelling `for_`.
    model_config = ConfigDict(frozen=True, extra="forbid")
    KIND: ClassVar[str]
    PLACEHOLDERS: ClassVar[frozenset[str]]
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """``FILE:LINE`` of the rule's table, or where its canonical text came from."""
        return self._source

    @cached_property
    def canonical_text(self) -> str:
        # Absent optional fields (None, "", [], {}) are left out so that adding one in a later
        # version does not change the hash of every existing rule (which would look like a rule
        # change). Fields with a real default, like severity, stay: they are the rule's meaning.
        fields = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        present = {key: value for key, value in fields.items() if value not in ("", [], {})}
        return canonical_json({"kind": self.KIND, **present})

    @cached_property
    def hash(self) -> str:
        return content_hash(self.canonical_text)

    def placeholders(self) -> frozenset[str]:
        """The names ``{{ … }}`` in this rule's summary may use."""
        return self.PLACEHOLDERS

    def __eq__(self, other: object) -> bool:
        # Two rules are the same rule when their canonical texts are; where they were read
        # from is not part of the rule.
        if not isinstance(other, _RuleBase):
            return NotImplemented
        return self.canonical_text == other.canonical_text

    def __hash__(self) -> int:
        return hash(self.canonical_text)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False):
        """A changed rule is a new rule: validate it again (thresholds, hysteresis, expression)
        and let it compute its own hash. pydantic's copy would skip validation and carry over
        the cached canonical text and hash of the original."""
        aliases = {name: info.alias for name, info in type(self).model_fields.items() if info.alias}
        data = self.model_dump(by_alias=True)
        data.update({aliases.get(key, key): value for key, value in (update or {}).items()})
        copy = type(self).model_validate(data)
        copy._source = self._source
        return copy


# ---- field checks shared by every kind (attached per class with field_validator) ----

def _check_id(value: str) -> str:
    if not _KEBAB.match(value):
        raise _problem(f"{value!r} is not kebab-case "
                       "(lowercase letters and digits joined by single hyphens, e.g. sofr-over-iorb)")
    return value


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _LABEL_NAME.match(name):
            raise _problem(f"label name {name!r} must be letters, digits and underscores")
        if name in _RESERVED_LABELS:
            raise _problem(f"label {name!r} is reserved: it is set from the rule's own {name}")
    return value


def _check_phrase_list(value: list[str]) -> list[str]:
    if any(not item.strip() for item in value):
        raise _problem("entries must not be empty")
    return value


def _check_placeholders(text: str, allowed: frozenset[str], info: ValidationInfo | None = None) -> None:
    """Refuse a summary the renderer could not fill: a template syntax error, a construct
    outside the summary language (watchdog.rules.templates: placeholders and a few filters, bounded
    in time and size) or an unknown name would otherwise reach the pager. A rule rebuilt from
    an old log's canonical text is only checked for syntax and names: the renderer still
    refuses to run what is outside the language."""
    strict = not (info is not None and (info.context or {}).get("canonical"))
    try:
        parsed = parse_summary(text, strict=strict)
    except TemplateProblem as exc:
        raise _problem(str(exc)) from None
    bases = {name.split(".")[0] for name in allowed}
    if unknown := sorted(meta.find_undeclared_variables(parsed) - bases):
        raise _problem(f"unknown placeholder {{{{ {unknown[0]} }}}}; known: {', '.join(sorted(allowed))}")


def _number(value: Any, info: ValidationInfo) -> Decimal | None:
    """Thresholds are exact decimals. TOML is read with ``parse_float=Decimal``; text is
    accepted only from canonical JSON, where decimals are strings by design."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _problem("must be a number, not true/false")
    if isinstance(value, float):
        value = Decimal(str(value))  # a caller in Python; str() is the shortest exact spelling
    elif isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str) and not (info.context or {}).get("from_toml"):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise _problem(f"must be a number, got {value!r}") from None
    if not isinstance(value, Decimal):
        raise _problem(f"must be a number, got {type(value).__name__}"
                       + (" (write it without quotes)" if isinstance(value, str) else ""))
    if not value.is_finite():
        raise _problem("must be a finite number")
    return Decimal(norm(value))


class Rule(_RuleBase):
    """``[[rule]]``: fire when ``expr`` is strictly above ``above`` (or below ``below``).

    With ``recover_below`` (``recover_above``) a firing alert resolves only once the value is
    strictly below (above) that level: hysteresis, so a value hovering at the threshold does not
    flap. ``for`` asks for persistence: ``"2bd"`` (the 2nd consecutive business day on which the
    condition holds) or a wall duration such as ``"6h"``.
    """
    KIND: ClassVar[str] = "threshold"
    PLACEHOLDERS: ClassVar[frozenset[str]] = THRESHOLD_PLACEHOLDERS

    id: str
    # The derived series the expression reads ([[series]] tables), with their expressions:
    # filled in when the rule is read from files, so its canonical text (what the log records)
    # is whole without them, and redefining a series it reads makes it a changed rule.
    derived: dict[str, str] = Field(default_factory=dict)
    expr: str
    # `below` comes before `above` so that `above` (validated even when absent) can check
    # that exactly one of the two was given.
    below: Decimal | None = None
    above: Decimal | None = Field(default=None, validate_default=True)
    recover_below: Decimal | None = None
    recover_above: Decimal | None = None
    for_: str | None = Field(default=None, alias="for")
    severity: Severity = "warning"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    # Keep firing until the recovery has held this many business days ("Nbd").
    keep_firing_for: str | None = None
    # Calendar terms (watchdog.market.calterms.TERMS) on whose dates the rule is not evaluated, or the
    # only dates it is: how "pressure on selected dates" is told apart from persistence.
    skip_on: list[str] = Field(default_factory=list)
    only_on: list[str] = Field(default_factory=list)
    # Calendar-dependent thresholds: e.g. above_on = { quarter_turn = 25 } uses 25 on those dates.
    above_on: dict[str, Decimal] = Field(default_factory=dict)
    below_on: dict[str, Decimal] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)
    _labels = field_validator("labels")(_check_labels)
    _numbers = field_validator("below", "above", "recover_below", "recover_above",
                               mode="before")(_number)

    @field_validator("keep_firing_for")
    @classmethod
    def _keep_firing(cls, value: str | None) -> str | None:
        if value is not None and not _business_days(value.strip()):
            raise _problem(f"use business days such as '2bd' (1 to {MAX_BUSINESS_DAYS}), got {value!r}")
        return value.strip() if value is not None else None

    @field_validator("skip_on", "only_on")
    @classmethod
    def _terms(cls, value: list[str]) -> list[str]:
        for term in value:
            _check_term(term)
        return value

    @field_validator("above_on", "below_on", mode="before")
    @classmethod
    def _term_thresholds(cls, value: Any, info: ValidationInfo) -> dict[str, Decimal]:
        if not isinstance(value, dict):
            raise _problem("must be a table of calendar term = threshold")
        out = {}
        for term, number in value.items():
            _check_term(term)
            out[term] = _number(number, info)
        return out

    @model_validator(mode="after")
    def _calendar_consistency(self) -> "Rule":
        if self.above_on and self.above is None:
            raise _problem("above_on goes with above")
        if self.below_on and self.below is None:
            raise _problem("below_on goes with below")
        if both := set(self.skip_on) & set(self.only_on):
            raise _problem(f"a term cannot be in both skip_on and only_on: {sorted(both)}")
        return self

    @field_serializer("below", "above", "recover_below", "recover_above", when_used="json")
    def _exact(self, value: Decimal | None) -> str | None:
        # pydantic would write str(Decimal), which can be "1E-7"; the log wants "0.0000001".
        return None if value is None else norm(value)

    @field_serializer("above_on", "below_on", when_used="json")
    def _exact_terms(self, value: dict[str, Decimal]) -> dict[str, str]:
        return {term: norm(number) for term, number in value.items()}

    @model_validator(mode="before")
    @classmethod
    def _fill_derived(cls, data: Any, info: ValidationInfo) -> Any:
        context = info.context or {}
        if not context.get("from_toml") or not isinstance(data, dict):
            return data
        if "derived" in data:
            raise _problem("derived: not written in a rule: declare derived series in "
                           "[[series]] tables (e.g. rules/series.toml) and use their names")
        used = derived_names(data["expr"], context.get("derived") or {}) \
            if isinstance(data.get("expr"), str) else {}
        return {**data, "derived": used} if used else data

    @field_validator("expr")
    @classmethod
    def _compiles(cls, value: str, info: ValidationInfo) -> str:
        try:
            compiled = compile_expr(value, info.data.get("derived"))
        except ExprError as exc:
            message = str(exc)
            declared = sorted((info.context or {}).get("derived") or {})
            if declared and message.startswith("unknown series"):
                message += f"; derived series ([[series]]): {', '.join(declared)}"
            raise _problem(message) from None
        if compiled.kind != "number":
            raise _problem("must be a number to compare with above/below, not a condition "
                           "(write e.g. expr = \"bp(sofr - iorb)\" and above = 10)")
        return value

    @field_validator("above")
    @classmethod
    def _one_threshold(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if "below" not in info.data:
            return value  # `below` itself was invalid and is reported on its own
        if value is None and info.data["below"] is None:
            raise _problem("one of above or below is required")
        if value is not None and info.data["below"] is not None:
            raise _problem("give either above or below, not both")
        return value

    @field_validator("recover_below")
    @classmethod
    def _recover_below(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        above = info.data.get("above")
        if value is not None and "above" in info.data:
            if above is None:
                raise _problem("recover_below goes with above (with below, use recover_above)")
            if value > above:
                raise _problem(f"inverted hysteresis: recover_below ({norm(value)}) must be "
                               f"<= above ({norm(above)}), or the alert would resolve while firing")
        return value

    @field_validator("recover_above")
    @classmethod
    def _recover_above(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        below = info.data.get("below")
        if value is not None and "below" in info.data:
            if below is None:
                raise _problem("recover_above goes with below (with above, use recover_below)")
            if value < below:
                raise _problem(f"inverted hysteresis: recover_above ({norm(value)}) must be "
                               f">= below ({norm(below)}), or the alert would resolve while firing")
        return value

    @field_validator("for_")
    @classmethod
    def _persistence(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        _parse_for(text)
        return text

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str, info: ValidationInfo) -> str:
        if "expr" in info.data:  # otherwise the expression's own error says what is wrong
            names = compile_expr(info.data["expr"], info.data.get("derived")).names
            _check_placeholders(value, THRESHOLD_PLACEHOLDERS | names, info)
        return value

    # ---- derived ----
    @property
    def compiled(self) -> Expr:
        """The compiled expression (compiled once per distinct text; not part of the rule's
        canonical text)."""
        return compile_expr(self.expr, self.derived)

    @cached_property    # frozen: derived once
    def input_series(self) -> frozenset[str]:
        """The series its expression reads (``sofr`` for ``sofr.p99``)."""
        return frozenset(name.partition(".")[0] for name in self.compiled.names)

    @cached_property    # frozen: derived once
    def drivers(self) -> tuple[str, ...]:
        """The series whose dates the rule is evaluated on, sorted: its market series, or all
        its series when it reads none (a weekly ratio)."""
        return drivers_of(self.compiled.names)

    @property
    def calendar(self) -> str:
        """The calendar its terms and business days are read on: its first driver's (SOFR:
        SIFMA)."""
        return SERIES[self.drivers[0]].calendar

    @property
    def threshold(self) -> Decimal:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def direction(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def recover(self) -> Decimal:
        """The level a firing alert must strictly cross back over to resolve."""
        level = self.recover_below if self.direction == "above" else self.recover_above
        return self.threshold if level is None else level

    @cached_property    # frozen: parsed once, not on every engine evaluation
    def keep_firing_business_days(self) -> int:
        """Business days the recovery must hold before a firing alert resolves (0 = at once)."""
        return _business_days(self.keep_firing_for) if self.keep_firing_for else 0

    def threshold_on(self, terms: frozenset[str]) -> Decimal:
        """The threshold on a date with these calendar terms: the highest matching above_on
        (the lowest below_on), else the plain threshold."""
        if self.above is not None:
            return max([self.above, *(v for t, v in self.above_on.items() if t in terms)])
        return min([self.below, *(v for t, v in self.below_on.items() if t in terms)])  # type: ignore[list-item]

    @cached_property    # frozen: parsed once, not on every engine evaluation
    def for_business_days(self) -> int:
        """Consecutive business days the condition must hold; 1 = fire on the first day."""
        days, _ = _parse_for(self.for_)
        return days

    @cached_property    # frozen: parsed once, not on every engine evaluation
    def for_duration(self) -> timedelta | None:
        """A wall-clock persistence (``for = "6h"``), or None."""
        _, duration = _parse_for(self.for_)
        return duration

    def placeholders(self) -> frozenset[str]:
        return THRESHOLD_PLACEHOLDERS | self.compiled.names


def _parse_for(text: str | None) -> tuple[int, timedelta | None]:
    """``"3bd"`` -> (3, None); ``"6h"`` -> (1, 6h); None -> (1, None)."""
    if text is None:
        return 1, None
    match = _BUSINESS_DAYS.match(text)
    if match:
        days = int(match.group(1))
        if not 1 <= days <= MAX_BUSINESS_DAYS:
            raise _problem(f"business days must be between 1 and {MAX_BUSINESS_DAYS}, got {text!r}")
        return days, None
    try:
        duration = parse_duration(text)
    except ValueError:
        raise _problem(f"bad duration {text!r}: use business days such as '2bd' "
                       "or a duration such as '30m', '6h', '3d'") from None
    if duration <= timedelta(0):
        raise _problem(f"duration {text!r} must be positive (leave 'for' out to fire at once)")
    return 1, duration


class Proximity(BaseModel):
    """``near``: a word of ``left`` within ``within`` words of a word of ``right`` (either order),
    e.g. left = ["reserves"], right = ["ample", "abundant", "scarce"], within = 8."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    left: list[str] = Field(min_length=1)
    right: list[str] = Field(min_length=1)
    within: int = Field(default=10, ge=1, le=100)

    _lists = field_validator("left", "right")(_check_phrase_list)


class KeywordRule(_RuleBase):
    """``[[keyword_rule]]``: flag a speech that contains ``phrases`` (matched case-insensitively
    on word boundaries with simple inflections, never inside an ``ignore`` stop-phrase) or a
    ``near`` proximity pair, at least ``min_hits`` times, optionally only from some speakers or
    institutions."""
    KIND: ClassVar[str] = "keyword"
    PLACEHOLDERS: ClassVar[frozenset[str]] = KEYWORD_PLACEHOLDERS

    id: str
    phrases: list[str] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list)
    speakers: list[str] = Field(default_factory=list)
    institutions: list[str] = Field(default_factory=list)
    near: list[Proximity] = Field(default_factory=list)
    min_hits: int = Field(default=1, ge=1, le=1000)
    severity: Severity = "info"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)
    _labels = field_validator("labels")(_check_labels)
    _lists = field_validator("phrases", "ignore", "speakers", "institutions")(_check_phrase_list)

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str, info: ValidationInfo) -> str:
        _check_placeholders(value, KEYWORD_PLACEHOLDERS, info)
        return value


def _check_series(value: str) -> str:
    if value not in SERIES:
        raise _problem(f"unknown series {value!r}; known: {', '.join(sorted(SERIES))}")
    return value


class CompositeRule(_RuleBase):
    """``[[composite_rule]]``: fire while ``all`` (or ``any``, or ``at_least`` of ``of``) of the
    named rules are firing, e.g. a "funding stress" rule over several spreads. Evaluated whenever
    one of them changes state; its date is the date of that change."""
    KIND: ClassVar[str] = "composite"
    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"rule", "severity", "date", "firing"})

    id: str
    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    at_least: int | None = Field(default=None, ge=1)
    of: list[str] = Field(default_factory=list)
    severity: Severity = "warning"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)
    _labels = field_validator("labels")(_check_labels)

    @model_validator(mode="after")
    def _one_form(self) -> "CompositeRule":
        forms = [bool(self.all), bool(self.any), self.at_least is not None or bool(self.of)]
        if sum(forms) != 1:
            raise _problem("give exactly one of all = [...], any = [...], or at_least = k with of = [...]")
        if (self.at_least is None) != (not self.of) or (self.at_least or 0) > len(self.of):
            if self.at_least is not None or self.of:
                raise _problem("at_least = k needs of = [...] with at least k rule ids")
        if self.id in self.members:
            raise _problem("a composite rule cannot include itself")
        return self

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str, info: ValidationInfo) -> str:
        _check_placeholders(value, cls.PLACEHOLDERS, info)
        return value

    @property
    def members(self) -> list[str]:
        return self.all or self.any or self.of

    def holds(self, firing: set[str]) -> bool:
        count = sum(1 for rule_id in self.members if rule_id in firing)
        if self.all:
            return count == len(self.all)
        if self.any:
            return count >= 1
        return count >= (self.at_least or 1)


class RevisionRule(_RuleBase):
    """``[[revision_rule]]``: flag a published value of ``series`` revised by ``bp`` basis
    points or more (one-shot: a ``flagged`` alert dated with the revised observation date)."""
    KIND: ClassVar[str] = "revision"
    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"rule", "severity", "date", "series", "value",
                                                        "previous", "change"})

    id: str
    series: str
    bp: Decimal = Field(default=Decimal(1))
    severity: Severity = "info"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)
    _labels = field_validator("labels")(_check_labels)
    _series = field_validator("series")(_check_series)
    _bp = field_validator("bp", mode="before")(_number)

    @field_serializer("bp", when_used="json")
    def _exact(self, value: Decimal) -> str:
        return norm(value)

    @model_validator(mode="after")
    def _placeholders(self) -> "RevisionRule":
        if self.bp < 0:
            raise _problem("bp must be >= 0")
        return self

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str, info: ValidationInfo) -> str:
        _check_placeholders(value, cls.PLACEHOLDERS, info)
        return value


class StalenessRule(_RuleBase):
    """``[[staleness_rule]]``: fire when ``series`` has not published its latest expected value
    ``grace`` after its nominal publication time on its own calendar (SOFR for T is expected at
    T+1 08:00 New York); resolves when the value arrives. Deadline-driven: it can fire without
    any new event."""
    KIND: ClassVar[str] = "staleness"
    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"rule", "severity", "date", "series", "value"})

    id: str
    series: str
    grace: str = "1h"
    severity: Severity = "warning"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)
    _labels = field_validator("labels")(_check_labels)

    @field_validator("series")
    @classmethod
    def _market_series(cls, value: str) -> str:
        _check_series(value)
        if SERIES[value].join != "market":
            raise _problem(f"{value!r} has no value per business day to be late with "
                           "(staleness applies to market series)")
        return value

    @field_validator("grace")
    @classmethod
    def _grace(cls, value: str) -> str:
        try:
            grace = parse_duration(value)
        except ValueError as exc:
            raise _problem(str(exc)) from None
        if grace <= timedelta(0):
            raise _problem("grace must be positive: a value is never late at its publication instant")
        return value

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str, info: ValidationInfo) -> str:
        _check_placeholders(value, cls.PLACEHOLDERS, info)
        return value

    @cached_property    # frozen: parsed once, not on every engine evaluation
    def grace_period(self) -> timedelta:
        return parse_duration(self.grace)


AnyRule = Rule | KeywordRule | CompositeRule | RevisionRule | StalenessRule
_KINDS: dict[str, type[_RuleBase]] = {"threshold": Rule, "keyword": KeywordRule, "composite": CompositeRule,
                                      "revision": RevisionRule, "staleness": StalenessRule}
_TABLES: dict[str, type[_RuleBase]] = {"rule": Rule, "keyword_rule": KeywordRule,
                                       "composite_rule": CompositeRule, "revision_rule": RevisionRule,
                                       "staleness_rule": StalenessRule}


class _Value(str):
    """A rendered value that also answers its attributes: ``{{ sofr }}`` and ``{{ sofr.p99 }}``."""

    def __new__(cls, text: str, attributes: Mapping[str, str]):
        value = super().__new__(cls, text)
        value._attributes = dict(attributes)
        return value

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["_attributes"][name]
        except KeyError:
            raise AttributeError(name) from None


def render_summary(rule: AnyRule, values: Mapping[str, str]) -> str:
    """Render the rule's summary (watchdog.rules.templates: sandboxed Jinja2 restricted to
    placeholders and a few filters, StrictUndefined) from ``values`` (already formatted text;
    dotted names such as ``sofr.p99`` become attributes). The output is at most 2000
    characters; a longer one is cut and says so.

    Names were checked when the rule was loaded; one the caller has no value for (say, no
    threshold on a keyword flag) renders as ``n/a`` rather than failing a notification. A
    template outside the language (from an old log) is not run: a notice says why.
    """
    if not rule.summary:
        return ""
    problem = language_problem(rule.summary)
    if problem:
        return f"{rule.id}: summary not rendered: {problem}"
    plain = {k: v for k, v in values.items() if "." not in k}
    dotted: dict[str, dict[str, str]] = {}
    for key, value in values.items():
        if "." in key:
            base, attr = key.split(".", 1)
            dotted.setdefault(base, {})[attr] = cut_value(str(value))
    context = {name: _Value(cut_value(str(plain.get(name, MISSING_VALUE))), dotted.get(name, {}))
               for name in set(plain) | set(dotted)}
    context.update({name: MISSING_VALUE for name in rule.placeholders() if name.split(".")[0] not in context})
    try:
        return render_bounded(rule.summary, context)
    except Exception as exc:       # a summary must never stop an alert from being recorded
        return f"{rule.id}: summary could not be rendered ({type(exc).__name__}: {exc})"


# ---- rule sets ----

@dataclass(frozen=True, eq=False)
class RuleSet:
    """The rules in force. Ordered by id, so the same rules always give the same set."""
    rules: tuple[Rule, ...] = ()
    keyword_rules: tuple[KeywordRule, ...] = ()
    composite_rules: tuple[CompositeRule, ...] = ()
    revision_rules: tuple[RevisionRule, ...] = ()
    staleness_rules: tuple[StalenessRule, ...] = ()
    # The [[series]] tables read with the rules: for display (status, report). Not part of the
    # set's identity: a rule that reads one carries its definition (Rule.derived).
    series: tuple[DerivedSeries, ...] = ()

    @classmethod
    def of(cls, rules: Iterable[AnyRule], series: Iterable[DerivedSeries] = ()) -> "RuleSet":
        """The set of ``rules`` of any kinds, each in its own tuple."""
        rules = list(rules)
        return cls(series=tuple(series), rules=tuple(r for r in rules if isinstance(r, Rule)),
                   keyword_rules=tuple(r for r in rules if isinstance(r, KeywordRule)),
                   composite_rules=tuple(r for r in rules if isinstance(r, CompositeRule)),
                   revision_rules=tuple(r for r in rules if isinstance(r, RevisionRule)),
                   staleness_rules=tuple(r for r in rules if isinstance(r, StalenessRule)))

    def __post_init__(self) -> None:
        for name in ("rules", "keyword_rules", "composite_rules", "revision_rules", "staleness_rules"):
            object.__setattr__(self, name, tuple(sorted(getattr(self, name), key=lambda r: r.id)))
        object.__setattr__(self, "series", tuple(sorted(self.series, key=lambda s: s.name)))
        ids = [rule.id for rule in self.all_rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}")

    @property
    def all_rules(self) -> tuple[AnyRule, ...]:
        return tuple(sorted((*self.rules, *self.keyword_rules, *self.composite_rules,
                             *self.revision_rules, *self.staleness_rules), key=lambda r: r.id))

    @cached_property
    def by_id(self) -> Mapping[str, AnyRule]:
        return MappingProxyType({rule.id: rule for rule in self.all_rules})

    @cached_property
    def canonical_texts(self) -> tuple[str, ...]:
        """Every rule's canonical text in id order: what a ``rules-loaded`` event records."""
        return tuple(rule.canonical_text for rule in self.all_rules)

    @cached_property
    def hash(self) -> str:
        # Canonical JSON escapes newlines inside strings, so "\n" separates texts unambiguously.
        return content_hash("\n".join(self.canonical_texts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuleSet):
            return NotImplemented
        return self.canonical_texts == other.canonical_texts

    def __hash__(self) -> int:
        return hash(self.hash)

    def __len__(self) -> int:
        return len(self.all_rules)

    def staleness_graces(self) -> dict[str, timedelta]:
        """The grace each series' staleness rules give it (the shortest, when several do): what
        ``watchdog status`` and the status page wait past a value's nominal publication."""
        graces: dict[str, timedelta] = {}
        for rule in self.staleness_rules:
            graces[rule.series] = min(graces.get(rule.series, rule.grace_period), rule.grace_period)
        return graces


def rule_from_canonical(text: str, source: str = "<canonical>") -> AnyRule:
    """Rebuild a rule from its canonical text (e.g. from a ``rules-loaded`` event).

    The result has the same canonical text and hash. Raises ``RuleError`` if the text is not a
    valid rule (a corrupted or hand-edited log).
    """
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise RuleError(f"{source}:1: not canonical rule JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") not in _KINDS:
        raise RuleError(f"{source}:1: not canonical rule JSON: missing or unknown 'kind'")
    model = _KINDS[data.pop("kind")]
    try:
        # a rule recorded before the summary language was narrowed still folds (not rendered)
        rule = model.model_validate(data, context={"canonical": True})
    except ValidationError as exc:
        rule_id = _display_id(data.get("id"), 1)
        raise RuleError([f"{source}:1: rule {rule_id}: {_describe_error(err, model)}"
                         for err in exc.errors(include_url=False)]) from None
    rule._source = source
    return rule


def ruleset_from_canonical(texts: Sequence[str], source: str = "<canonical>") -> RuleSet:
    """Rebuild a whole rule set, e.g. from the texts of a ``rules-loaded`` event."""
    rules = [rule_from_canonical(text, source) for text in texts]
    try:
        return RuleSet.of(rules)
    except ValueError as exc:
        raise RuleError(f"{source}:1: {exc}") from None


# ---- loading files ----

def load_rules(paths: Sequence[str | os.PathLike[str]]) -> RuleSet:
    """Load rule files and folders (each folder's ``*.toml``, sorted, not recursive).

    Raises ``RuleError`` listing every problem in every file, one ``FILE:LINE: …`` line each.
    ``[[series]]`` tables of every file are read first: a rule in one file may read a derived
    series declared in another.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one path is a common call; iterating a str would read letters
    files, problems = _expand(paths)
    entries: list[tuple[_Document | None, str | None]] = []
    for file in files:
        text, problem = _read_text(file)
        entries.append((None, problem) if problem else _document(text, file))
    return _ruleset(entries, problems)


def parse_rules(text: str, filename: str = "<rules>") -> RuleSet:
    """Validate the text of one rules file (``filename`` is only used in messages)."""
    return _ruleset([_document(text, filename)], [])


def _ruleset(entries: list[tuple["_Document | None", str | None]], problems: list[str]) -> RuleSet:
    """The rule set of parsed files (each a document or the problem reading it), in order;
    problems listed file by file."""
    documents = [document for document, _ in entries if document is not None]
    series, series_problems = _derived_series(documents)
    catalogue = catalogue_of(series)
    loaded: list[tuple[AnyRule, str]] = []
    for document, problem in entries:
        if document is None:
            problems.append(problem or "")
            continue
        rules, file_problems = _rules_of(document, catalogue)
        loaded.extend(rules)
        file_problems.extend(series_problems.get(document.file, []))
        file_problems.sort(key=lambda item: item[0])  # stable: same-line problems keep field order
        problems.extend(text for _, text in file_problems)
    problems.extend(_duplicates(loaded))
    problems.extend(_composite_references(loaded))
    if problems:
        raise RuleError(problems)
    return RuleSet.of((rule for rule, _ in loaded), series)


def toml_files(folder: str) -> list[str]:
    """The ``*.toml`` files directly in ``folder``, sorted by name. Dotfiles are editor droppings
    (emacs' .#x.toml); sub-folders are not read (they hold rule tests)."""
    names = sorted(name for name in os.listdir(folder) if name.endswith(".toml")
                   and not name.startswith(".") and os.path.isfile(os.path.join(folder, name)))
    return [os.path.join(folder, name) for name in names]


def _expand(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """Files to read, in order, each once; and the paths that are not there."""
    files: list[str] = []
    problems: list[str] = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            found = toml_files(path)
            if not found:
                # An empty rules folder would make a daemon that never alerts: say so.
                problems.append(f"{path}:1: no *.toml rule files in this folder")
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            problems.append(f"{path}:1: no such rules file or folder")
    seen: set[str] = set()
    unique = []
    for file in files:
        real = os.path.realpath(file)
        if real not in seen:
            seen.add(real)
            unique.append(file)
    return unique, problems


def _read_text(file: str) -> tuple[str, str | None]:
    try:
        return tomlpos.read_text(file), None
    except tomlpos.TomlProblem as exc:
        return "", str(exc)


@dataclass(frozen=True)
class _Document:
    """One rules file, parsed: its tables and where each key is written."""
    file: str
    data: dict[str, Any]
    where: tomlpos.Positions


def _document(text: str, file: str) -> tuple[_Document | None, str | None]:
    try:
        return _Document(file, tomlpos.loads(text, file, parse_float=Decimal),
                         tomlpos.positions(text)), None
    except tomlpos.TomlProblem as exc:
        return None, str(exc)


def _tables(document: _Document, key: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    value = document.data[key]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        line = document.where.line_of((key,))
        return [], [(line, f"{document.file}:{line}: {key!r} must be written as [[{key}]] tables")]
    return value, []


def _derived_series(documents: Sequence[_Document]) -> tuple[list[DerivedSeries], dict[str, list[tuple[int, str]]]]:
    """Every file's ``[[series]]`` tables, validated (names unique across files, expressions
    compiling against the whole catalogue); problems by file."""
    problems: dict[str, list[tuple[int, str]]] = {}
    found: list[DerivedSeries] = []
    first: dict[str, str] = {}
    for document in documents:
        if "series" not in document.data:
            continue
        tables, bad = _tables(document, "series")
        problems.setdefault(document.file, []).extend(bad)
        for index, table in enumerate(tables):
            base = ("series", index)
            name = _display_id(table.get("name"), index + 1)
            try:
                item = DerivedSeries.model_validate(table)
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    line = document.where.line_of(base + tuple(err["loc"]))
                    problems[document.file].append(
                        (line, f"{document.file}:{line}: series {name}: "
                               f"{_describe_error(err, DerivedSeries)}"))
                continue
            line = document.where.line_of(base + ("name",))
            item._source = f"{document.file}:{document.where.line_of(base)}"
            if item.name in first:
                problems[document.file].append(
                    (line, f"{document.file}:{line}: duplicate series name {item.name!r} "
                           f"(first declared at {first[item.name]})"))
                continue
            first[item.name] = f"{document.file}:{line}"
            found.append(item)
    bad = check_expressions(found)
    for item, reason in bad:
        file, _, line = item.source.rpartition(":")
        problems.setdefault(file, []).append(
            (int(line), f"{item.source}: series {item.name}: expr: {reason}"))
    bad_names = {item.name for item, _ in bad}
    return [item for item in found if item.name not in bad_names], problems


def _rules_of(document: _Document, catalogue: Mapping[str, str]
              ) -> tuple[list[tuple[AnyRule, str]], list[tuple[int, str]]]:
    """Validate one file's rule tables: its rules (each with where its id is written) and
    problems (line, text)."""
    file, where = document.file, document.where
    rules: list[tuple[AnyRule, str]] = []
    problems: list[tuple[int, str]] = []
    for key in document.data:
        line = where.line_of((key,))
        if key == "series":
            continue
        if key not in _TABLES:
            problems.append((line, f"{file}:{line}: unknown table or key {key!r}; "
                                   "a rules file holds [[rule]], [[keyword_rule]], [[composite_rule]], "
                                   "[[revision_rule]], [[staleness_rule]] and [[series]] tables"))
            continue
        tables, bad = _tables(document, key)
        problems.extend(bad)
        for index, table in enumerate(tables):
            rule, table_problems = _validate_table(file, where, key, index, table, catalogue)
            rules.extend(rule)
            problems.extend(table_problems)
    return rules, problems


def _validate_table(file: str, where: tomlpos.Positions, key: str, index: int,
                    table: dict[str, Any], catalogue: Mapping[str, str]
                    ) -> tuple[list[tuple[AnyRule, str]], list[tuple[int, str]]]:
    model = _TABLES[key]
    base = (key, index)
    rule_id = _display_id(table.get("id"), index + 1)
    try:
        rule = model.model_validate(table, context={"from_toml": True, "derived": catalogue})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            line = where.line_of(base + tuple(err["loc"]))
            problems.append((line, f"{file}:{line}: rule {rule_id}: {_describe_error(err, model)}"))
        return [], problems
    rule._source = f"{file}:{where.line_of(base)}"
    return [(rule, f"{file}:{where.line_of(base + ('id',))}")], []


def _duplicates(loaded: Sequence[tuple[AnyRule, str]]) -> list[str]:
    first: dict[str, str] = {}
    problems = []
    for rule, id_location in loaded:
        if rule.id in first:
            problems.append(f"{id_location}: duplicate rule id {rule.id!r} "
                            f"(first defined at {first[rule.id]})")
        else:
            first[rule.id] = id_location
    return problems


def _composite_references(loaded: Sequence[tuple[AnyRule, str]]) -> list[str]:
    """Composite rules name rules that exist, and never (through others) themselves."""
    ids = {rule.id for rule, _ in loaded}
    members = {rule.id: rule.members for rule, _ in loaded if isinstance(rule, CompositeRule)}
    problems = []
    for rule, _ in loaded:
        if not isinstance(rule, CompositeRule):
            continue
        if unknown := [m for m in rule.members if m not in ids]:
            problems.append(f"{rule.source}: rule {rule.id}: members: unknown rule ids {unknown}")
        elif _reaches(rule.id, rule.id, members, set()):
            problems.append(f"{rule.source}: rule {rule.id}: members: composite rules form a cycle")
    return problems


def _reaches(start: str, target: str, members: Mapping[str, list[str]], seen: set[str]) -> bool:
    """Whether ``target`` is among the (transitive) members of ``start``."""
    for member in members.get(start, []):
        if member == target:
            return True
        if member not in seen:
            seen.add(member)
            if _reaches(member, target, members, seen):
                return True
    return False


def _display_id(raw: object, number: int) -> str:
    """How a rule is named in a message, even when its id is missing or malformed."""
    if isinstance(raw, str) and re.fullmatch(r"[\w.-]{1,80}", raw):
        return raw
    if isinstance(raw, str):
        return repr(raw[:80])
    return f"#{number}"


def _describe_error(err: Mapping[str, Any], model: type[BaseModel]) -> str:
    """``field: message`` for one pydantic error, worded for a rule author."""
    field_name = tomlpos.dotted(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = sorted(info.alias or name for name, info in model.model_fields.items())
        message = f"unknown field; known fields: {', '.join(known)}"
    elif err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "too_short":
        message = "must not be empty"
    return f"{field_name}: {message}" if field_name else message
