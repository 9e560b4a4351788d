"""Unit tests for rules, promtool style: a few dated values in, the exact alert transitions out.

A rule test file (TOML, e.g. ``rules/tests/funding_test.toml``) names the rule files it tests and
holds ``[[test]]`` cases. Each case lists values of canonical series by observation date and the
transitions it expects::

    rule_files = ["../funding.toml"]          # relative to this test file; files or folders

    [[test]]
    name = "sofr-over-iorb fires on the second business day over 10 bp"
    # as_of = 2019-09-18T12:00:00-04:00       # optional: as `replay --as-of` (see below)
    [test.series]                             # series -> { YYYY-MM-DD = value }; a date with no
    iorb = { 2019-08-01 = 2.10 }              #   value is simply absent (a holiday, a weekend)
    [test.series.sofr]                        # the same, one date per line
    2019-09-16 = 2.43
    2019-09-17 = 5.25
    [test.attributes]                         # optional: "series.attr" -> { date = value }
    "sofr.p99" = { 2019-09-17 = 9.00 }
    [[test.speech]]                           # optional: speeches, for keyword rules
    speaker = "Powell"
    date = 2019-10-08
    text = "..."                              # institution, title, url, position optional
    [[test.expect]]
    rule = "sofr-over-iorb"
    state = "pending"                         # pending | firing | resolved | flagged
    date = 2019-09-16                         # the observation date of the transition
    value = 33                                # optional, exact (decimal)
    # known_at = 2019-09-17T08:00:00-04:00    # optional: the engine time of the transition
    [[test.expect_value]]                     # optional: a derived series ([[series]]) ...
    series = "effr_iorb"                      # ... computed from the case's values ...
    date = 2019-09-17                         # ... on this date ...
    value = 20                                # ... is exactly this (decimal)
    [[test.expect_none]]                      # optional: no transition ...
    rule = "effr-above-target"                # ... of this rule (leave out: of any rule)
    # state = "firing"                        # ... optionally only of this state
    # since = 2019-09-01                      # ... optionally only dated in this range
    # until = 2019-09-30                      #     (inclusive)

How a case runs: exactly like ``watchdog replay``. Every value becomes an
``observation-recorded`` event of the series' primary source, published at the series' nominal
publication time for its date (``series.nominal_publication``: SOFR for T at T+1 08:00 New York
on the SIFMA calendar, EFFR T+1 09:00 on the Fed calendar, administered rates at 00:00 of their
effective date); a speech is published at the end of its date in New York. The events go through
a ``MemoryEventStore`` and ``Engine(ruleset)`` in (``published_at``, ``seq``) order, the engine
time being each event's ``published_at``; deadlines (staleness rules) are ticked before each fact
and at the end, up to the last publication -- or up to ``as_of`` when the case sets it, facts
published after ``as_of`` being left out, exactly as ``watchdog replay --as-of``. Values are exact
decimals (read with ``parse_float=Decimal``), never floats.

When a case passes:

- For every rule named in an ``expect``, the rule's transitions must be *exactly* the expected
  ones: each expectation matches one transition (same state and date, and value and ``known_at``
  when given), and a transition of that rule that no expectation matches is a failure. Pending
  transitions count: a ``for = "2bd"`` rule that fires is expected as ``pending`` on the first
  day and ``firing`` on the second.
- Rules named in no ``expect`` are not checked, except by ``expect_none``: no transition may
  match an ``expect_none`` (its rule, or any rule when it names none; its state when given; its
  date range when given).
- Every ``expect_value`` must hold: the derived series, computed from the case's values through
  the join and windows a rule reading it is judged on (``engine.data.derived_values``), has
  exactly that value on that date; a date it cannot be computed on (an input missing, a window
  longer than the case's history) fails and says so.
- A case with neither ``expect``, ``expect_value`` nor ``expect_none`` checks nothing and is refused, and so is an
  ``expect_none`` that would pass only because its threshold rule never ran (an input without
  a value on the driver's dates): for a named rule, that rule must have been evaluated; without
  a rule, every threshold rule whose input series the case gives must have been.

Problems are reported in the project format, ``FILE:LINE: message``: assertion failures point at
the expectation (or the first expectation of the rule, for an unexpected transition); mistakes in
a case (an unknown series, a bad date, an unknown rule) fail that case without running it; a
problem that stops the whole file (unreadable, TOML syntax, no ``rule_files``, a rule file that
does not load) is one failed result named ``(file)`` carrying the rules' own error lines.
``run_rule_tests`` never raises for a bad input: every problem is a failed result.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from watchdog.model import tomlpos
from watchdog.engine.data import SeriesData, derived_values
from watchdog.engine.fold import Engine, replay_events
from watchdog.model.errors import RuleError
from watchdog.model.events import (FACT_TYPES, AlertTransition, NewEvent, Observation, Speech,
                             new_observation, new_speech)
from watchdog.model.numbers import norm
from watchdog.rules.derived import catalogue_of
from watchdog.rules.ruleset import RuleSet, load_rules, toml_files
from watchdog.market.series import SERIES, attribute_names, nominal_publication_text
from watchdog.store import MemoryEventStore, iter_published
from watchdog.model.timefmt import end_of_day_new_york, parse_utc, utc_text

FILE_CASE = "(file)"  # the name of the result that reports a problem of a whole file

STATES = ("pending", "firing", "resolved", "flagged")
_ONE_SHOT_KINDS = frozenset({"keyword", "revision"})  # kinds whose only transition is flagged
_TOP_KEYS = ("rule_files", "test")
_CASE_KEYS = ("name", "as_of", "series", "attributes", "speech", "expect", "expect_value",
              "expect_none")
_EXPECT_VALUE_KEYS = ("series", "date", "value")
_EXPECT_KEYS = ("rule", "state", "date", "value", "known_at")
_EXPECT_NONE_KEYS = ("rule", "state", "since", "until")
_SPEECH_KEYS = ("speaker", "institution", "date", "title", "text", "url", "position")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one ``[[test]]`` (or of a whole file, named ``(file)``)."""
    file: str
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    duration_s: float = 0.0


# ---- the parsed form of a test file ----

@dataclass(frozen=True)
class _Expect:
    rule: str
    state: str
    date: str
    value: Decimal | None
    known_at: str | None
    where: str                     # FILE:LINE of the [[test.expect]] table
    rule_where: str                # FILE:LINE of its rule key


@dataclass(frozen=True)
class _ExpectValue:
    series: str
    date: str
    value: Decimal
    where: str                     # FILE:LINE of the [[test.expect_value]] table


@dataclass(frozen=True)
class _ExpectNone:
    rule: str | None
    state: str | None
    since: str | None
    until: str | None
    where: str
    rule_where: str


@dataclass
class _Case:
    name: str
    where: str
    as_of: str | None = None
    events: list[NewEvent] = field(default_factory=list)
    expects: list[_Expect] = field(default_factory=list)
    nones: list[_ExpectNone] = field(default_factory=list)
    values: list[_ExpectValue] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class _TestFile:
    path: str
    rule_paths: list[str] = field(default_factory=list)
    rules_where: str = ""
    cases: list[_Case] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Problem(Exception):
    """One mistake in a test file, already worded for its author (without FILE:LINE)."""

    def __init__(self, message: str, path: tomlpos.Path = ()):
        super().__init__(message)
        self.message = message
        self.path = path


# ---- public API ----

def run_rule_tests(paths: Sequence[str | os.PathLike[str]]) -> list[CaseResult]:
    """Run every case of the given test files (a folder means its ``*.toml``, sorted, not
    recursive), in order. Never raises for bad input: problems are failed results."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    results: list[CaseResult] = []
    rulesets: dict[tuple[str, ...], RuleSet | RuleError] = {}
    for file, problem in _expand(paths):
        if problem:
            results.append(CaseResult(file, FILE_CASE, False, [problem]))
            continue
        results.extend(_run_file(_parse_file(file), rulesets))
    return results


def failed(results: Iterable[CaseResult]) -> list[CaseResult]:
    return [r for r in results if not r.passed]


def exit_code(results: Sequence[CaseResult]) -> int:
    """0 when there were results and all passed, else 1 (what ``watchdog test-rules`` exits)."""
    return 0 if results and not failed(results) else 1


def render_text(results: Sequence[CaseResult]) -> str:
    """The human report: one ``PASS``/``FAIL`` line per case, each failure indented under its
    case, and a summary line. Deterministic (no timings)."""
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'} {r.file}: {r.name}")
        lines.extend(f"  {failure}" for failure in r.failures)
    bad = len(failed(results))
    lines.append(f"{len(results)} test{'s' if len(results) != 1 else ''}, {bad} failed"
                 if results else "no rule tests found")
    return "\n".join(lines) + "\n"


def junit_xml(results: Sequence[CaseResult]) -> str:
    """JUnit XML (``testsuites`` > one ``testsuite`` per file > ``testcase`` with ``failure``),
    as read by CI systems (GitLab, Jenkins, GitHub test reporters)."""
    by_file: dict[str, list[CaseResult]] = {}
    for r in results:
        by_file.setdefault(r.file, []).append(r)
    root = ET.Element("testsuites", {
        "name": "watchdog test-rules", "tests": str(len(results)),
        "failures": str(len(failed(results))), "errors": "0",
        "time": _seconds(sum(r.duration_s for r in results))})
    for file, cases in by_file.items():
        suite = ET.SubElement(root, "testsuite", {
            "name": _xml_text(file), "tests": str(len(cases)),
            "failures": str(len(failed(cases))), "errors": "0", "skipped": "0",
            "time": _seconds(sum(r.duration_s for r in cases))})
        for r in cases:
            case = ET.SubElement(suite, "testcase", {
                "name": _xml_text(r.name), "classname": _xml_text(_classname(file)),
                "file": _xml_text(file), "time": _seconds(r.duration_s)})
            if not r.passed:
                first = r.failures[0] if r.failures else "failed"
                failure = ET.SubElement(case, "failure", {
                    "message": _xml_text(first),
                    "type": "load" if r.name == FILE_CASE else "assertion"})
                failure.text = _xml_text("\n".join(r.failures))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---- files ----

def _expand(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            files = toml_files(path)
            if not files:
                out.append((path, f"{path}:1: no *.toml rule test files in this folder"))
            out.extend((file, None) for file in files)
        elif os.path.isfile(path):
            out.append((path, None))
        else:
            out.append((path, f"{path}:1: no such rule test file or folder"))
    return out


def _parse_file(file: str) -> _TestFile:
    parsed = _TestFile(file)
    try:
        text = tomlpos.read_text(file)
        data = tomlpos.loads(text, file, parse_float=Decimal)
    except tomlpos.TomlProblem as exc:
        parsed.problems.append(str(exc))
        return parsed
    where = tomlpos.positions(text)

    def at(path: tomlpos.Path) -> str:
        return f"{file}:{where.line_of(path)}"

    for key in data:
        if key not in _TOP_KEYS:
            parsed.problems.append(f"{at((key,))}: unknown key {key!r}; a rule test file holds "
                                   "rule_files = [...] and [[test]] tables")
    rule_files = data.get("rule_files")
    parsed.rules_where = at(("rule_files",))
    if rule_files is None:
        parsed.problems.append(f"{file}:1: rule_files is missing: list the rule files this file "
                               'tests, relative to it (e.g. rule_files = ["../funding.toml"])')
    elif (not isinstance(rule_files, list) or not rule_files
          or not all(isinstance(p, str) and p.strip() for p in rule_files)):
        parsed.problems.append(f"{parsed.rules_where}: rule_files must be a non-empty list of "
                               "paths (strings)")
    else:
        base = os.path.dirname(file)
        parsed.rule_paths = [os.path.normpath(os.path.join(base, p)) for p in rule_files]
    cases = data.get("test")
    if cases is None:
        parsed.problems.append(f"{file}:1: no [[test]] tables: nothing to run")
    elif not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        parsed.problems.append(f"{at(('test',))}: 'test' must be written as [[test]] tables")
    else:
        seen: dict[str, str] = {}
        for index, table in enumerate(cases):
            case = _parse_case(table, ("test", index), at)
            if case.name in seen:
                case.problems.insert(0, f"{at(('test', index, 'name'))}: duplicate test name "
                                        f"{case.name!r} (first at {seen[case.name]})")
            else:
                seen[case.name] = at(("test", index, "name"))
            parsed.cases.append(case)
    return parsed


def _parse_case(table: dict[str, Any], base: tomlpos.Path, at) -> _Case:
    raw_name = table.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) and raw_name.strip() else f"test #{base[1] + 1}"
    case = _Case(name=name, where=at(base))

    def problem(path: tomlpos.Path, message: str) -> None:
        field_name = tomlpos.dotted(path)
        case.problems.append(f"{at(base + path)}: test {name!r}: "
                             + (f"{field_name}: {message}" if field_name else message))

    if not (isinstance(raw_name, str) and raw_name.strip()):
        problem(("name",), "required: a non-empty string naming the case")
    for key in table:
        if key not in _CASE_KEYS:
            problem((key,), f"unknown key; known: {', '.join(_CASE_KEYS)}")
    if "as_of" in table:
        try:
            case.as_of = _instant(table["as_of"], "as_of")
        except _Problem as exc:
            problem(exc.path, exc.message)

    values: dict[tuple[str, str], Decimal] = {}
    attributes: dict[tuple[str, str], dict[str, Decimal]] = {}
    for path, message in _parse_series(table.get("series", {}), values):
        problem(("series", *path), message)
    for path, message in _parse_attributes(table.get("attributes", {}), values, attributes):
        problem(("attributes", *path), message)
    for (series, day), value in sorted(values.items()):
        spec = SERIES[series]
        try:
            observation = Observation(
                series=series, date=day, value=norm(value), unit=spec.unit,
                source=spec.primary_source, provenance={"file": "rule test"},
                attributes={k: norm(v) for k, v in attributes.get((series, day), {}).items()})
            published = nominal_publication_text(series, date.fromisoformat(day))
        except (ValueError, OverflowError) as exc:   # e.g. a date whose publication day overflows
            problem(("series", series, day), f"cannot be published: {exc}")
            continue
        case.events.append(new_observation(observation, published))

    for index, item in enumerate(_tables(table, "speech", problem)):
        try:
            case.events.append(_speech_event(item))
        except _Problem as exc:
            problem(("speech", index, *exc.path), exc.message)

    for index, item in enumerate(_tables(table, "expect", problem)):
        try:
            case.expects.append(_parse_expect(item, at, base + ("expect", index)))
        except _Problem as exc:
            problem(("expect", index, *exc.path), exc.message)
    for index, item in enumerate(_tables(table, "expect_none", problem)):
        try:
            case.nones.append(_parse_expect_none(item, at, base + ("expect_none", index)))
        except _Problem as exc:
            problem(("expect_none", index, *exc.path), exc.message)
    for index, item in enumerate(_tables(table, "expect_value", problem)):
        try:
            _no_unknown(item, _EXPECT_VALUE_KEYS)
            series = item.get("series")
            if not isinstance(series, str) or not series:
                raise _Problem("required: the name of a derived series ([[series]])", ("series",))
            if "value" not in item:
                raise _Problem("required: the exact value expected", ("value",))
            try:
                value = _number(item["value"])
            except _Problem as exc:
                raise _Problem(exc.message, ("value",)) from None
            case.values.append(_ExpectValue(series, _date_value(item, "date", required=True) or "",
                                            value, at(base + ("expect_value", index))))
        except _Problem as exc:
            problem(("expect_value", index, *exc.path), exc.message)
    if not any(key in table for key in ("expect", "expect_none", "expect_value")):
        problem((), "no [[test.expect]], [[test.expect_value]] or [[test.expect_none]]: "
                    "the case would check nothing")
    return case


def _tables(table: dict[str, Any], key: str, problem) -> list[dict[str, Any]]:
    items = table.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        problem((key,), f"must be written as [[test.{key}]] tables")
        return []
    return items


def _parse_series(raw: Any, out: dict[tuple[str, str], Decimal]):
    """Yield (path, message) problems; fill ``out[(series, date)] = value``."""
    if not isinstance(raw, dict):
        yield (), 'must be a table of series = { YYYY-MM-DD = value, ... }'
        return
    for series, points in raw.items():
        if series not in SERIES:
            yield (series,), f"unknown series {series!r}; known: {', '.join(sorted(SERIES))}"
            continue
        if not isinstance(points, dict):
            yield (series,), 'must be a table of { YYYY-MM-DD = value, ... }'
            continue
        for day, value in points.items():
            try:
                out[(series, _date_key(day))] = _number(value)
            except _Problem as exc:
                yield (series, day), exc.message


def _parse_attributes(raw: Any, values: dict[tuple[str, str], Decimal],
                      out: dict[tuple[str, str], dict[str, Decimal]]):
    if not isinstance(raw, dict):
        yield (), 'must be a table of "series.attribute" = { YYYY-MM-DD = value, ... }'
        return
    for name, points in raw.items():
        series, _, attr = name.partition(".")
        if series not in SERIES:
            yield (name,), f"unknown series {series!r}; known: {', '.join(sorted(SERIES))}"
            continue
        known = attribute_names(series)
        if attr not in known:
            yield (name,), (f"unknown attribute {attr!r} of {series}; known: {', '.join(known)}"
                            if known else f"{series} has no attributes")
            continue
        if not isinstance(points, dict):
            yield (name,), 'must be a table of { YYYY-MM-DD = value, ... }'
            continue
        for day, value in points.items():
            try:
                key = (series, _date_key(day))
                number = _number(value)
            except _Problem as exc:
                yield (name, day), exc.message
                continue
            if key not in values:
                yield (name, day), (f"{series} has no value on {key[1]}: an attribute belongs to an "
                                    f"observation (add it under [test.series])")
                continue
            out.setdefault(key, {})[attr] = number


def _speech_event(item: dict[str, Any]) -> NewEvent:
    _no_unknown(item, _SPEECH_KEYS)
    texts = {}
    for key in ("speaker", "institution", "title", "text", "url", "position"):
        value = item.get(key, "")
        if not isinstance(value, str):
            raise _Problem("must be a string", (key,))
        texts[key] = value
    for key in ("speaker", "text"):
        if not texts[key].strip():
            raise _Problem("required: a non-empty string", (key,))
    day = _date_value(item, "date", required=True)
    text = texts.pop("text")
    speech = Speech(**texts, date=day, text=text, source="rule-test",
                    content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest())
    # As the history importer does: the end of the speech date in New York, never early.
    return new_speech(speech, utc_text(end_of_day_new_york(date.fromisoformat(day))))


def _parse_expect(item: dict[str, Any], at, path: tomlpos.Path) -> _Expect:
    _no_unknown(item, _EXPECT_KEYS)
    rule = _rule_id(item, required=True)
    state = item.get("state")
    if state not in STATES:
        raise _Problem(f"required: one of {', '.join(STATES)}" if state is None
                       else f"{state!r} is not one of {', '.join(STATES)}", ("state",))
    value = None
    if "value" in item:
        try:
            value = _number(item["value"])
        except _Problem as exc:
            raise _Problem(exc.message, ("value",)) from None
    known_at = None
    if "known_at" in item:
        known_at = _instant(item["known_at"])
    return _Expect(rule=rule, state=state, date=_date_value(item, "date", required=True),
                   value=value, known_at=known_at, where=at(path), rule_where=at(path + ("rule",)))


def _parse_expect_none(item: dict[str, Any], at, path: tomlpos.Path) -> _ExpectNone:
    _no_unknown(item, _EXPECT_NONE_KEYS)
    state = item.get("state")
    if state is not None and state not in STATES:
        raise _Problem(f"{state!r} is not one of {', '.join(STATES)}", ("state",))
    since = _date_value(item, "since", required=False)
    until = _date_value(item, "until", required=False)
    if since and until and since > until:
        raise _Problem(f"since ({since}) is after until ({until})", ("until",))
    return _ExpectNone(rule=_rule_id(item, required=False), state=state, since=since,
                       until=until, where=at(path), rule_where=at(path + ("rule",)))


def _no_unknown(item: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in item:
        if key not in known:
            raise _Problem(f"unknown key; known: {', '.join(known)}", (key,))


def _rule_id(item: dict[str, Any], required: bool) -> str | None:
    rule = item.get("rule")
    if rule is None and not required:
        return None
    if not isinstance(rule, str) or not rule.strip():
        raise _Problem("required: the id of a rule" if rule is None else "must be a rule id (a string)",
                       ("rule",))
    return rule.strip()


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Problem("must be a number, not true/false")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Problem("must be a finite number")
        return value
    if isinstance(value, str):
        raise _Problem(f"must be a number, got the string {value!r} (write it without quotes)")
    raise _Problem(f"must be a number, got {type(value).__name__}")


def _date_key(text: str) -> str:
    if not _DATE.match(text):
        raise _Problem(f"{text!r} is not a date: write YYYY-MM-DD")
    try:
        date.fromisoformat(text)
    except ValueError:
        raise _Problem(f"{text!r} is not a real date") from None
    return text


def _date_value(item: dict[str, Any], key: str, required: bool) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise _Problem("required: a date (YYYY-MM-DD)", (key,))
        return None
    if isinstance(value, datetime) or not isinstance(value, (date, str)):
        raise _Problem("must be a date (YYYY-MM-DD), not a time or another type", (key,))
    if isinstance(value, date):
        return value.isoformat()
    try:
        return _date_key(value)
    except _Problem as exc:
        raise _Problem(exc.message, (key,)) from None


def _instant(value: Any, key: str = "known_at") -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Problem(f"{value!r} is not an ISO 8601 time", (key,)) from None
    if not isinstance(value, datetime):
        raise _Problem("must be a time with a UTC offset, e.g. 2019-09-18T08:00:00-04:00", (key,))
    if value.tzinfo is None:
        raise _Problem("has no UTC offset (write e.g. 2019-09-18T08:00:00-04:00)", (key,))
    return utc_text(value)


# ---- running ----

def _run_file(parsed: _TestFile, rulesets: dict[tuple[str, ...], RuleSet | RuleError]) -> list[CaseResult]:
    if parsed.problems:
        return [CaseResult(parsed.path, FILE_CASE, False, parsed.problems)]
    key = tuple(os.path.realpath(p) for p in parsed.rule_paths)
    if key not in rulesets:
        try:
            rulesets[key] = load_rules(parsed.rule_paths)
        except RuleError as exc:
            rulesets[key] = exc
    ruleset = rulesets[key]
    if isinstance(ruleset, RuleError):
        return [CaseResult(parsed.path, FILE_CASE, False,
                           [f"{parsed.rules_where}: rule_files: the rules do not load:",
                            *ruleset.problems])]
    return [_run_case(parsed.path, case, ruleset) for case in parsed.cases]


def _run_case(file: str, case: _Case, ruleset: RuleSet) -> CaseResult:
    started = time.perf_counter()
    problems = case.problems + _check_rule_names(case, ruleset)
    if problems:
        return CaseResult(file, case.name, False, problems, time.perf_counter() - started)
    try:
        got, evaluated = _transitions(ruleset, case.events, case.as_of)
    except Exception as exc:  # an engine bug must fail this case, not the whole run
        failures = [f"{case.where}: test {case.name!r}: the engine failed: {type(exc).__name__}: {exc}"]
        return CaseResult(file, case.name, False, failures, time.perf_counter() - started)
    failures = _compare(case, got) + _vacuous(case, ruleset, evaluated) + _check_values(case, ruleset)
    return CaseResult(file, case.name, not failures, failures, time.perf_counter() - started)


def _check_values(case: _Case, ruleset: RuleSet) -> list[str]:
    """Each ``expect_value``: the derived series computed from the case's facts on its date."""
    if not case.values:
        return []
    data = SeriesData()
    for event in sorted(case.events, key=lambda e: (e.published_at or "", e.key)):
        if "series" in event.payload:
            data.add(event.payload, event.published_at or "")
    declared = {item.name: item for item in ruleset.series}
    catalogue = catalogue_of(ruleset.series)
    failures = []
    for want in case.values:
        item = declared.get(want.series)
        if item is None:
            known = ", ".join(sorted(declared)) or "none"
            failures.append(f"{want.where}: test {case.name!r}: unknown derived series "
                            f"{want.series!r}; the rule files declare: {known}")
            continue
        got = dict(derived_values(item, catalogue, data, since=want.date, until=want.date))
        if want.date not in got:
            failures.append(f"{want.where}: test {case.name!r}: {want.series} cannot be computed "
                            f"on {want.date} from the case's values (an input is missing, or a "
                            "window is longer than the history given)")
        elif got[want.date] != want.value:
            failures.append(f"{want.where}: test {case.name!r}: {want.series} on {want.date}: "
                            f"expected {norm(want.value)}, got {norm(got[want.date])}")
    return failures


def _transitions(ruleset: RuleSet, events: list[NewEvent], as_of: str | None = None,
                 ) -> tuple[list[AlertTransition], set[str]]:
    """What ``watchdog replay [--as-of]`` would print for these facts, pending included: facts in
    (published_at, seq) order, engine time = published_at, deadlines (staleness) ticked before
    each fact and, at the end, up to ``as_of`` or the last publication. Also the ids of the rules
    the engine evaluated at least once."""
    engine = Engine(ruleset)
    out: list[AlertTransition] = []
    if events:
        events = sorted(events, key=lambda e: (e.published_at or "", e.key))
        # The log "learns" every fact once all are public: a store caps published_at at
        # recorded_at, and a fixed clock keeps the run deterministic (replay never reads it).
        learned = parse_utc(events[-1].published_at or "")
        store = MemoryEventStore(now=lambda: learned)
        store.append(events)
        out = list(replay_events(engine, iter_published(store, types=FACT_TYPES, until=as_of), until=as_of))
    return sorted(out, key=lambda t: (t.evaluated_at, t.rule, t.date)), _evaluated(engine)


def _evaluated(engine: Engine) -> set[str]:
    return {rule_id for rule_id, state in engine.states.items() if state.last_date}


def _vacuous(case: _Case, ruleset: RuleSet, evaluated: set[str]) -> list[str]:
    """An ``expect_none`` about a threshold rule the engine never evaluated passes for the wrong
    reason (an input without a value on the driver's dates, a misspelt series): refuse it."""
    given = {e.payload["series"] for e in case.events if "series" in e.payload}
    dates: dict[str, int] = {}
    for e in case.events:
        if "series" in e.payload:
            dates[e.payload["series"]] = dates.get(e.payload["series"], 0) + 1
    problems = []
    for n in case.nones:
        if n.rule is not None:
            rules = [ruleset.by_id[n.rule]] if n.rule in ruleset.by_id else []
        else:
            # Any rule: check those the case gives every input series of, on enough dates for
            # their windows (a "20bd" window cannot run on a week: name the rule to require it).
            rules = [r for r in ruleset.rules if r.input_series <= given
                     and r.compiled.max_window <= min(dates[s] for s in r.drivers)]
            only_thresholds = len(ruleset.all_rules) == len(ruleset.rules)
            if not rules and not evaluated and ruleset.rules and only_thresholds:
                problems.append(f"{n.where}: test {case.name!r}: expected {_describe_none(n)}, "
                                "but no rule was evaluated at all: give every input of a rule "
                                "a value on the same dates")
        for rule in rules:
            if rule.KIND == "threshold" and rule.id not in evaluated:
                inputs = ", ".join(sorted(rule.compiled.names))  # type: ignore[union-attr]
                problems.append(f"{n.where}: test {case.name!r}: expected {_describe_none(n)}, "
                                f"but {rule.id} was never evaluated: give each of its inputs "
                                f"({inputs}) a value on the same dates")
    return problems


def _check_rule_names(case: _Case, ruleset: RuleSet) -> list[str]:
    problems = []
    known = ruleset.by_id
    names = ", ".join(known) or "none"
    for e in [*case.expects, *case.nones]:
        if e.rule is None:
            continue
        rule = known.get(e.rule)
        if rule is None:
            problems.append(f"{e.rule_where}: test {case.name!r}: rule: unknown rule {e.rule!r}; "
                            f"the rule files define: {names}")
            continue
        one_shot = rule.KIND in _ONE_SHOT_KINDS
        if e.state is not None and one_shot != (e.state == "flagged"):
            allowed = "flagged" if one_shot else "pending, firing or resolved"
            problems.append(f"{e.where}: test {case.name!r}: state: {e.rule} is a "
                            f"{rule.KIND} rule: its transitions are {allowed}, "
                            f"not {e.state}")
    return problems


def _compare(case: _Case, got: list[AlertTransition]) -> list[str]:
    failures: list[tuple[str, str]] = []   # (where, message) kept in file order below
    checked = list(dict.fromkeys(e.rule for e in case.expects))
    for rule in checked:
        want = [e for e in case.expects if e.rule == rule]
        have = [t for t in got if t.rule == rule]
        left = list(have)
        missing = []
        # Most specific expectations first, so a bare one never takes a transition that a
        # value-checking one needs.
        for e in sorted(want, key=lambda e: (e.value is None) + (e.known_at is None)):
            match = next((t for t in left if _matches(e, t)), None)
            if match is None:
                missing.append(e)
            else:
                left.remove(match)
        for e in sorted(missing, key=want.index):
            near = next((t for t in left if t.state == e.state and t.date == e.date), None)
            if near is not None:
                left.remove(near)
                diffs = []
                if e.value is not None and not _same_value(e.value, near.value):
                    diffs.append(f"expected value {norm(e.value)}, got {near.value}")
                if e.known_at is not None and e.known_at != near.evaluated_at:
                    diffs.append(f"expected known_at {e.known_at}, got {near.evaluated_at}")
                failures.append((e.where, f"{rule} {e.state} on {e.date}: {'; '.join(diffs)}"))
            else:
                failures.append((e.where, f"expected {_describe_expect(e)}, got no such "
                                          f"transition; {rule} had: {_brief(have)}"))
        first = want[0].where
        for t in left:
            failures.append((first, f"unexpected {_describe(t)}; expected only: "
                                    f"{', '.join(_describe_expect(e, rule=False) for e in want)}"))
    for n in case.nones:
        for t in got:
            if _within(n, t):
                failures.append((n.where, f"expected {_describe_none(n)}, got {_describe(t)}"))
    ordered = sorted(failures, key=lambda f: _line(f[0]))
    return [f"{where}: test {case.name!r}: {message}" for where, message in ordered]


def _matches(e: _Expect, t: AlertTransition) -> bool:
    return (t.state == e.state and t.date == e.date
            and (e.value is None or _same_value(e.value, t.value))
            and (e.known_at is None or e.known_at == t.evaluated_at))


def _same_value(expected: Decimal, got: str | None) -> bool:
    return got is not None and Decimal(got) == expected


def _within(n: _ExpectNone, t: AlertTransition) -> bool:
    return ((n.rule is None or t.rule == n.rule) and (n.state is None or t.state == n.state)
            and (n.since is None or t.date >= n.since) and (n.until is None or t.date <= n.until))


def _describe(t: AlertTransition) -> str:
    value = "no value" if t.value is None else f"value {t.value}"
    return f"{t.rule} {t.state} on {t.date} ({value}, known at {t.evaluated_at})"


def _describe_expect(e: _Expect, rule: bool = True) -> str:
    extra = [f"value {norm(e.value)}"] if e.value is not None else []
    extra += [f"known at {e.known_at}"] if e.known_at else []
    text = f"{e.rule + ' ' if rule else ''}{e.state} on {e.date}"
    return f"{text} ({', '.join(extra)})" if extra else text


def _describe_none(n: _ExpectNone) -> str:
    what = f"no {n.state + ' ' if n.state else ''}transition of "
    what += n.rule if n.rule else "any rule"
    if n.since or n.until:
        what += f" dated {n.since or '…'}..{n.until or '…'}"
    return what


def _brief(transitions: list[AlertTransition]) -> str:
    if not transitions:
        return "no transitions"
    return ", ".join(f"{t.state} on {t.date} ({t.value})" for t in transitions)


def _line(where: str) -> int:
    return int(where.rsplit(":", 1)[1])


# ---- JUnit helpers ----

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry control characters, even escaped: show them as U+FFFD."""
    return _XML_BAD.sub("\ufffd", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _classname(file: str) -> str:
    stem = os.path.splitext(os.path.normpath(file))[0]
    return stem.replace(os.sep, ".").lstrip(".")
