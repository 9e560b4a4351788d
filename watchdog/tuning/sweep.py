"""Sweeps: many variants of a rule set evaluated in one pass over the decoded log.

``--set RULE.FIELD=VALUES`` (repeatable) names a field of a rule and the values to try:
``5..30:5`` (a range with a step, both ends included), ``a,b,c`` (a list) or one value. Several
settings multiply (cartesian product). Each variant is the rule rebuilt with
``model_copy(update=…)``, which validates it again: a variant the rule loader would refuse (a
threshold below its ``recover_below``, a value that is not a number, …) is kept as *skipped*,
with the reason naming the rule and field, and the sweep goes on with the others. Only when
every variant is refused is that an error (``RuleError``, one line per variant); a setting that
names no rule or field, or one that cannot be swept, is an error at once.

One pass: the fact events are read and decoded once and fed to

- one **shared** engine with every rule the sweep does not touch (the same for all variants),
- one small **variant** engine per variant with only the swept rules, fed only the facts of
  the series those rules read (an engine never reads other series, so this changes nothing);
  variants that read the same series share one ``SeriesData`` (the same points, added again
  by each engine, stored once),
- and, for composite rules that depend on a swept rule, a composite-only engine per variant
  that follows the firing states of the members from both engines.

Each variant's transitions equal those of ``replay`` with that variant's rule set (tests check
this property). That shortcut is exact when the composites over swept rules only have threshold
members without a wall-clock ``for`` (their members then move only on facts, never on ticks);
otherwise the variant engines also carry copies of every member (slower, exact by construction).

Pure: events in, transitions out; no store, no clock.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from watchdog.engine.data import SeriesData
from watchdog.engine.fold import PRUNE_EVERY, Engine
from watchdog.model.errors import RuleError
from watchdog.model.events import SPEECH_RECORDED, AlertTransition
from watchdog.model.numbers import norm
from watchdog.model.tomlpos import dotted
from watchdog.rules.ruleset import AnyRule, CompositeRule, Rule, RuleSet

MAX_VARIANTS = 10_000


@dataclass(frozen=True)
class Setting:
    """One ``--set RULE.FIELD=VALUES``."""
    rule: str
    field: str
    values: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Variant:
    """One point of the sweep: the settings it takes and the rule set they give; or, when the
    rule loader would refuse that rule set, no rule set and the ``problem`` (skipped)."""
    settings: tuple[tuple[str, str], ...]     # (("sofr-over-iorb.above", "15"), …)
    ruleset: RuleSet | None
    problem: str = ""                          # "rule sofr-over-iorb: recover_below: inverted …"

    @property
    def label(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.settings) or "(as loaded)"

    @property
    def skipped(self) -> bool:
        return self.ruleset is None


def parse_setting(text: str) -> Setting:
    """``RULE.FIELD=5..30:5`` | ``RULE.FIELD=a,b,c`` | ``RULE.FIELD=value``; ValueError if not."""
    target, eq, spec = text.partition("=")
    rule, dot, field = target.strip().partition(".")
    if not eq or not dot or not rule or not field or not spec.strip():
        raise ValueError(f"--set {text!r}: use RULE.FIELD=VALUES, e.g. sofr-over-iorb.above=5..30:5 "
                         "or sofr-over-iorb.for=1bd,2bd,3bd")
    return Setting(rule=rule, field=field.strip(), values=_values(spec.strip(), text), text=text)


def _values(spec: str, text: str) -> tuple[str, ...]:
    if ".." not in spec:
        values = tuple(v.strip() for v in spec.split(","))
        if any(not v for v in values):
            raise ValueError(f"--set {text!r}: empty value in the list")
        return values
    lo_text, _, rest = spec.partition("..")
    hi_text, _, step_text = rest.partition(":")
    try:
        lo, hi, step = Decimal(lo_text), Decimal(hi_text), Decimal(step_text or "1")
    except InvalidOperation:
        raise ValueError(f"--set {text!r}: a range is FROM..TO:STEP with numbers, e.g. 5..30:5") from None
    if step <= 0 or hi < lo or not all(v.is_finite() for v in (lo, hi, step)):
        raise ValueError(f"--set {text!r}: a range needs FROM <= TO and a positive STEP")
    if (hi - lo) / step > MAX_VARIANTS:
        raise ValueError(f"--set {text!r}: more than {MAX_VARIANTS} values")
    count = int((hi - lo) / step) + 1
    return tuple(norm(lo + step * i) for i in range(count))


def build_variants(ruleset: RuleSet, settings: list[Setting]) -> list[Variant]:
    """Every combination of the settings' values (cartesian product, in the order given); the
    combinations the rule loader would refuse are skipped variants (``RuleError`` if all are)."""
    for setting in settings:
        _check_target(ruleset, setting)
    names = [f"{s.rule}.{s.field}" for s in settings]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"--set {twice[0]} is given twice: list its values in one --set (a,b,c)")
    combos = list(itertools.product(*(s.values for s in settings)))
    if len(combos) > MAX_VARIANTS:
        raise ValueError(f"--set: {len(combos)} variants; at most {MAX_VARIANTS}")
    variants, refused = [], []
    for combo in combos:
        chosen = tuple(zip(names, combo))
        try:
            variants.append(Variant(settings=chosen, ruleset=_apply(ruleset, settings, combo)))
        except Refused as exc:
            skipped = Variant(settings=chosen, ruleset=None, problem="; ".join(exc.problems))
            variants.append(skipped)
            refused.extend(f"--set {skipped.label}: {problem}" for problem in exc.problems)
    if all(v.skipped for v in variants):
        raise RuleError(refused)
    return variants


def _check_target(ruleset: RuleSet, setting: Setting) -> None:
    rule = ruleset.by_id.get(setting.rule)
    if rule is None:
        raise RuleError(f"--set {setting.text}: rule {setting.rule}: no such rule in the rule set")
    fields = {info.alias or name: name for name, info in type(rule).model_fields.items()}
    if setting.field not in fields:
        raise RuleError(f"--set {setting.text}: rule {setting.rule}: {setting.field}: unknown field; "
                        f"known fields: {', '.join(sorted(fields))}")
    current = getattr(rule, fields[setting.field])
    if setting.field == "id" or isinstance(current, (list, dict, tuple)):
        raise RuleError(f"--set {setting.text}: rule {setting.rule}: {setting.field}: cannot be swept "
                        "(only single values: thresholds, for, keep_firing_for, severity, expr, …)")


def _apply(ruleset: RuleSet, settings: list[Setting], combo: tuple[str, ...]) -> RuleSet:
    """The rule set with each setting's value in place (rules re-validated); ``Refused`` if the
    rule loader would refuse it."""
    updates: dict[str, dict[str, str]] = {}
    for setting, value in zip(settings, combo):
        updates.setdefault(setting.rule, {})[setting.field] = value
    rules: list[AnyRule] = list(ruleset.all_rules)
    problems = []
    for i, rule in enumerate(rules):
        if rule.id in updates:
            try:
                rules[i] = _rebuilt(rule, updates[rule.id])
            except Refused as exc:
                problems.extend(exc.problems)
    if problems:
        raise Refused(problems)
    try:
        return RuleSet.of(rules)
    except ValueError as exc:
        raise Refused([str(exc)]) from None


class Refused(Exception):
    """A variant the rule loader would refuse; ``problems``: ``rule ID: FIELD: message`` each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _rebuilt(rule: AnyRule, update: dict[str, str]) -> AnyRule:
    try:
        return rule.model_copy(update=update)
    except ValueError as exc:                # pydantic's ValidationError is one
        errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
        raise Refused([f"rule {rule.id}: {dotted(err['loc']) or next(iter(update))}: "
                       f"{err['msg'].removeprefix('Value error, ')}" for err in errors]) from None


# ---- the one-pass evaluation ----

def affected_ids(ruleset: RuleSet, swept: Iterable[str]) -> frozenset[str]:
    """The swept rules and every composite that depends on one of them, transitively."""
    out = set(swept)
    grew = True
    while grew:
        grew = False
        for composite in ruleset.composite_rules:
            if composite.id not in out and any(m in out for m in composite.members):
                out.add(composite.id)
                grew = True
    return frozenset(out)


def _members(ruleset: RuleSet, ids: Iterable[str]) -> set[str]:
    """Every rule the composites among ``ids`` read, transitively (the ids themselves too)."""
    out, todo = set(), list(ids)
    while todo:
        rule_id = todo.pop()
        if rule_id not in out:
            out.add(rule_id)
            rule = ruleset.by_id[rule_id]
            todo.extend(rule.members if isinstance(rule, CompositeRule) else ())
    return out


def _shortcut_exact(ruleset: RuleSet, affected: frozenset[str]) -> bool:
    """Whether composites over swept rules can follow their members from outside: every member
    is a threshold rule that moves only when a fact is applied (no wall-clock ``for``)."""
    for composite in ruleset.composite_rules:
        if composite.id in affected:
            for member in composite.members:
                rule = ruleset.by_id[member]
                if not isinstance(rule, Rule) or rule.for_duration is not None:
                    return False
    return True


def _reads(ruleset: RuleSet) -> tuple[frozenset[str], bool]:
    """The series an engine with ``ruleset`` reads, and whether it reads speeches."""
    series = {s for rule in ruleset.rules for s in rule.input_series}
    series |= {r.series for r in (*ruleset.staleness_rules, *ruleset.revision_rules)}
    return frozenset(series), bool(ruleset.keyword_rules)


def _order(t: AlertTransition) -> tuple:
    return (t.evaluated_at, t.rule, t.date)   # replay's order (watchdog.tuning.replay)


class _Lane:
    """One variant's own engines and the transitions of its swept rules."""

    def __init__(self, ruleset: RuleSet, affected: frozenset[str], shortcut: bool,
                 pool: dict[tuple, SeriesData]):
        composites = {r.id for r in ruleset.composite_rules if r.id in affected}
        own = affected - composites if shortcut else _members(ruleset, affected)
        rules = RuleSet.of(r for r in ruleset.all_rules if r.id in own)
        self.engine = Engine(rules)
        self.series, self.speeches = _reads(rules)
        # lanes fed the very same facts share the points (each engine adds them again: a no-op)
        self.engine.data = pool.setdefault((self.series, self.speeches), SeriesData())
        self.report = affected
        self.comp = None
        self.members: tuple[str, ...] = ()
        if shortcut and composites:
            chosen = RuleSet.of(r for r in ruleset.composite_rules if r.id in composites)
            self.comp = Engine(chosen)
            self.members = tuple(sorted({m for c in chosen.composite_rules for m in c.members}))
        self.out: list[AlertTransition] = []

    def wants(self, event) -> bool:
        if event.type == SPEECH_RECORDED:
            return self.speeches
        return event.payload.get("series") in self.series

    def feed(self, event, shared: Engine, shared_out: list[AlertTransition]) -> None:
        now, own = event.published_at, []
        if self.wants(event):
            own = self.engine.tick(now) + self.engine.apply(event, now)
            self.out.extend(t for t in own if t.rule in self.report)
        if self.comp is not None:
            self._follow(event, shared, shared_out + own)

    def _follow(self, event, shared: Engine, moved: list[AlertTransition]) -> None:
        """Composites over swept rules, evaluated as one engine would after this fact: on the
        members' firing states after it, from whichever engine runs each member."""
        causes = [t for t in moved if t.rule in self.members and t.state in ("firing", "resolved")]
        if not causes:
            return
        for member in self.members:
            source = self.engine if member in self.engine.rules else shared
            self.comp.emitted[member] = source.emitted.get(member, "")
            if member in source.moved:                   # the member's last move: its input
                self.comp.moved[member] = source.moved[member]
        # the engine's own composite step (same fixpoint, same reasons), fed from two engines
        self.out.extend(self.comp._composites(causes, event.published_at, event.seq))

    def finish(self, until: str) -> None:
        self.out.extend(t for t in self.engine.tick(until) if t.rule in self.report)


def swept_ids(variants: Iterable[Variant]) -> set[str]:
    """The ids of the rules the variants' settings change."""
    return {name.split(".", 1)[0] for v in variants for name, _ in v.settings}


def run_sweep(facts: Iterable, ruleset: RuleSet, variants: list[Variant]) -> Iterator[list[AlertTransition]]:
    """Each variant's transitions (as ``replay`` would give them with ``variant.ruleset``), from
    one pass over ``facts`` (fact events in publication order). Skipped variants have no rule
    set to run: leave them out (``app.sweep_results`` does)."""
    if skipped := [v.label for v in variants if v.skipped]:
        raise ValueError(f"run_sweep: skipped variants cannot run: {', '.join(skipped)}")
    affected = affected_ids(ruleset, swept_ids(variants))
    shortcut = all(_shortcut_exact(v.ruleset, affected) for v in variants)
    # the shared engine forgets what its rules cannot read again, as replay's does; the variant
    # engines share their points between lanes, and one lane's pruning must not drop another's
    shared = Engine(RuleSet.of(r for r in ruleset.all_rules if r.id not in affected), prune_every=PRUNE_EVERY)
    pool: dict[tuple, SeriesData] = {}
    lanes = [_Lane(v.ruleset, affected, shortcut, pool) for v in variants]
    common: list[AlertTransition] = []
    last = None
    for event in facts:
        now = event.published_at
        out = shared.tick(now) + shared.apply(event, now)
        common.extend(out)
        for lane in lanes:
            lane.feed(event, shared, out)
        last = now
    if last is not None:
        common.extend(shared.tick(last))
        for lane in lanes:
            lane.finish(last)
    for lane in lanes:
        yield sorted(common + lane.out, key=_order)
