"""The rule expression language: a tiny, exact, safe subset of Python expression syntax.

``bp(sofr - iorb)``, ``sofr.p99 - iorb > 0.05 and onrrp < 100``, ``max(sofr, tgcr) - iorb``,
``zscore(bp(sofr - iorb), "250bd")``, ``reserves / gdp``, ``bp(sofr - iorb) > 10 and not turn(1)``.

Text is parsed once with ``ast.parse(mode="eval")``; a strict whitelist walk turns the tree into
nested Python closures. User text is never passed to ``eval``/``exec`` and never reaches Python's
attribute machinery: ``sofr.p99`` is one identifier of the language (a series attribute) that the
compiler resolves against the series catalogue, so ``sofr.__class__`` is simply an unknown name.
Strings exist only as the window argument of a window function (``"20bd"``).

Numbers are ``Decimal`` throughout. A literal is parsed from its source text (``3.90`` is exactly
3.90, never the float 3.8999…), arithmetic runs in a private context, so
``bp(4.00 - 3.90) == 10`` exactly and ``10 > 10`` is false. The compiler also checks types: an
arithmetic operand must be a number and ``and``/``or``/``not`` need conditions, so a rule that
compares a condition with a threshold is refused at load instead of silently treating
``True`` as 1.

Evaluation context
------------------
A compiled expression is evaluated for one observation date ``d`` through an ``EvalContext``
(``Expr.evaluate_at(ctx, d)``); the context owns the data, the joining and the calendar, the
expression owns the arithmetic. Every name (``sofr``, ``sofr.p99``, ``reserves``) is read as
``ctx.value(name, day)``: the *joined* value at that day (a market series on the day itself, an
as-of series such as ``gdp`` from its latest known observation, so ``reserves / gdp`` mixes
frequencies correctly). ``None`` means "not available" and the evaluation raises ``EvalError``.

Windows count *evaluation dates* (``ctx.history``), not calendar days: ``"5bd"`` is the five
evaluation dates before ``d``. ``x`` inside a window may be any number expression; it is evaluated
at each date it needs. A window is never partial: a history shorter than the window, or a missing
value on any date read, raises ``EvalError`` (the engine then skips ``d``), so a statistic never
silently rests on fewer points than the rule says.

- ``change(x, "Nbd")``      x(d) − x(d−N)                 (reads d and d−N only)
- ``pct_change(x, "Nbd")``  (x(d) − x(d−N)) / x(d−N) × 100 (reads d and d−N only)
- ``avg/min/max(x, "Nbd")`` over the N dates ending at d (``min(a, b, …)`` of values still works:
  a string second argument selects the window form)
- ``stdev(x, "Nbd")``       sample standard deviation of the N dates ending at d (N ≥ 2); a
  constant window has stdev 0
- ``zscore(x, "Nbd")``      (x(d) − mean) / stdev over the N dates ending at d (N ≥ 2); a
  constant window (stdev 0) raises ``EvalError``
- ``count(c, "Nbd")``       how many of the N dates ending at d condition ``c`` held on
                            (``count(sofr > iorb, "20bd")``: days repo traded above IORB)
- ``pct_rank(x, "Nbd")``    where x(d) ranks in its own trailing window: the percentage of the
                            N dates ending at d whose value is at or below x(d) (100 = a new
                            high for the window; "crossed its own trailing percentile")
- ``lag(x, n)``             x at the n-th evaluation date before d (reads that date only)
- ``days_since(series)``    calendar days from the latest observation of ``series`` to d
- ``share_at_or_above(rate, level)``  the share of ``rate``'s volume that traded at or above
  ``level``, in percent, from its published volume percentiles (p1, p25, the median, p75,
  p99): a lower bound. If ``rate.p75 >= level``, at least 25 % traded at or above it, and so
  on; the true share is below the next step (``rate.p50 < level <= rate.p75`` means 25 % to
  under 50 %), so the error is under 25 points (under 24 at the tails) and the estimate never
  overstates. This is the proxy Fed staff describe for "the share of repo at or above IORB",
  which is not published (research/official-monitors.md).

Derived series (``[[series]]`` tables beside the rules, ``rules/series.toml``) are names of the
language too: ``compile_expr(text, derived={"effr_iorb": "bp(effr - iorb)"})`` compiles a rule
reading ``effr_iorb`` as if its expression were written in its place, so a derived value is
computed from the recorded facts at every evaluation (live and replay read the same facts, so
they agree) and windows over it (``change(effr_iorb, "20bd")``) evaluate it on each date they
read. A derived series may read other derived series; a cycle is refused.

Calendar terms: ``month_end``, ``quarter_end``, ``year_end``, ``turn``, ``quarter_turn``,
``year_turn``, ``tax_date``, ``coupon_settlement``, ``gse_cycle`` are conditions at d
(``ctx.term(name, d, 0)``); ``turn(1)`` widens to ±1 business day (``ctx.term("turn", d, 1)``).
``bdom`` (or ``business_day_of_month``) is the business day of the month of d, a number. These
names and the function names are reserved: no series may be called that.
"""
from __future__ import annotations

import ast
import decimal
import re
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date as Date
from decimal import Decimal
from functools import lru_cache
from typing import Callable, Literal, Mapping, Protocol, Sequence

from watchdog.market.calterms import NUMBER_TERMS, TERMS
from watchdog.market.series import SERIES

MAX_LENGTH = 1000     # far beyond any sensible rule; bounds parse time and nesting depth
MAX_DEPTH = 50        # nested operations; Python's own parser recurses on them
MAX_WINDOW = 1000     # evaluation dates: four years of business days
MAX_TERM_WINDOW = 10  # ±business days around a calendar term
# Nested windows multiply: avg(zscore(x, "250bd"), "20bd") evaluates x 5,000 times per date.
# Beyond this a rule is a mistake that would stall warm-up over years of history.
MAX_EVALUATIONS = 25_000

# Traps make a bad computation an error instead of a silent NaN or Infinity that would compare
# false and quietly keep an alert from firing.
_CONTEXT = decimal.Context(
    prec=28, rounding=decimal.ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
    traps=[decimal.DivisionByZero, decimal.InvalidOperation, decimal.Overflow],
)

# Standard deviations divide, take a root and maybe divide again: they run with 50 digits and
# are rounded once to 28, so a result is the correctly rounded value, not off in the last digit.
_WIDE = _CONTEXT.copy()
_WIDE.prec = 50

Kind = Literal["number", "condition"]
Value = Decimal | bool

FUNCTIONS = {
    # name: (minimum arguments, maximum arguments or None, usage)
    "bp": (1, 1, "bp(x): percentage points to basis points, x * 100"),
    "abs": (1, 1, "abs(x)"),
    "min": (2, None, 'min(a, b, ...) or min(x, "20bd")'),
    "max": (2, None, 'max(a, b, ...) or max(x, "20bd")'),
    "lag": (2, 2, "lag(x, 1)"),
    "days_since": (1, 1, "days_since(reserves)"),
    "share_at_or_above": (2, 2, "share_at_or_above(sofr, iorb)"),
    # window-only functions join from WINDOWS (end of the module), with their usage
}
_WINDOW_TEXT = re.compile(r"([0-9]+)bd")


class EvalContext(Protocol):
    """What an expression needs from its evaluator. Dates are ``YYYY-MM-DD`` text.

    - ``value(name, date)``: the joined value of series or attribute ``name`` (``sofr``,
      ``sofr.p99``) at observation date ``date``; ``None`` when it is not available. Must be a
      ``Decimal`` (an ``int`` is accepted; a float is refused).
    - ``history(date, n)``: the last ``n`` evaluation dates ending at ``date`` (inclusive),
      oldest first; fewer when the history is short. Windows count these dates.
    - ``latest_date(name, date)``: the date of the latest observation of series ``name`` on or
      before ``date`` (``days_since``), or ``None``.
    - ``term(term, date, window)``: whether calendar term ``term`` (one of ``TERMS``)
      holds at ``date`` or within ``window`` business days either side of it.
    - ``business_day_of_month(date)``: 1 for the month's first business day, and so on.
    """

    def value(self, name: str, date: str) -> Decimal | None: ...

    def history(self, date: str, n: int) -> Sequence[str]: ...

    def latest_date(self, name: str, date: str) -> str | None: ...

    def term(self, term: str, date: str, window: int) -> bool: ...

    def business_day_of_month(self, date: str) -> int: ...


Fn = Callable[[EvalContext, str], Value]


class ExprError(ValueError):
    """The expression text is not in the language. The message names the offending part."""


class EvalError(ArithmeticError):
    """An expression could not be evaluated for one set of inputs (division by zero, a missing
    input, a history shorter than a window). The engine skips that date rather than guessing."""


def check_reserved_names(series_names: Collection[str]) -> None:
    """Refuse a series catalogue that uses a reserved word: the series would be unreachable
    (``turn`` would always mean the calendar term). Checked once at import."""
    clash = sorted(set(series_names) & (set(TERMS) | set(NUMBER_TERMS) | set(FUNCTIONS)))
    if clash:
        raise RuntimeError(f"series names {', '.join(clash)} are reserved words of the "
                           "expression language")


check_reserved_names(SERIES)


@dataclass(frozen=True)
class Expr:
    """A compiled expression: evaluate it as many times as needed, it is never re-parsed."""
    text: str
    names: frozenset[str]          # series and dotted series attributes it reads (also in windows)
    kind: Kind                     # "number" (compared with thresholds) or "condition"
    max_window: int                # evaluation dates ending at d it may read; 0 = d alone
    terms: frozenset[str]          # calendar terms used (TERMS members, "bdom")
    # Series read at the evaluation date on every evaluation path (see _strict_series): without
    # a value for all of them on a date, evaluating there cannot succeed.
    strict_series: frozenset[str]
    derived: frozenset[str] = frozenset()   # derived series it reads (their inputs are in names)
    _fn: Fn = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def evaluate_at(self, ctx: EvalContext, date: str) -> Value:
        """Evaluate for observation date ``date``, reading everything through ``ctx``.

        Raises ``EvalError`` for a missing or non-decimal input, a short history, division by
        zero or overflow.
        """
        try:
            return self._fn(ctx, date)
        except (decimal.DivisionByZero, decimal.DivisionUndefined) as exc:
            raise EvalError(f"division by zero in {self.text!r}") from exc
        except decimal.DecimalException as exc:
            raise EvalError(f"cannot compute {self.text!r}: {type(exc).__name__}") from exc

    def evaluate(self, values: Mapping[str, Decimal]) -> Value:
        """Evaluate with ``values`` keyed by the names in ``self.names``, for one date.

        Windows, ``days_since`` and calendar terms need a history: they raise ``EvalError``.
        """
        return self.evaluate_at(_ValuesContext(values), "")


class _ValuesContext:
    """One date's values and nothing else: what ``Expr.evaluate`` offers."""

    def __init__(self, values: Mapping[str, Decimal]):
        self.values = values

    def value(self, name: str, date: str) -> Decimal | None:
        return self.values.get(name)

    def _none(self, what: str) -> EvalError:
        return EvalError(f"{what} needs history: evaluate it with evaluate_at(ctx, date)")

    def history(self, date: str, n: int) -> Sequence[str]:
        raise self._none("a window")

    def latest_date(self, name: str, date: str) -> str | None:
        raise self._none("days_since")

    def term(self, term: str, date: str, window: int) -> bool:
        raise self._none(f"calendar term {term!r}")

    def business_day_of_month(self, date: str) -> int:
        raise self._none("bdom")


def compile_expr(text: str, derived: Mapping[str, str] | None = None) -> Expr:
    """Compile ``text`` once. Raises ``ExprError`` naming the construct that is not allowed.

    ``derived`` maps derived series names to their expressions (``[[series]]`` tables): a rule
    may read them as names."""
    if not isinstance(text, str):
        raise ExprError("an expression must be text")
    return _compile(text, tuple(sorted(derived.items())) if derived else ())


def derived_names(text: str, derived: Mapping[str, str]) -> dict[str, str]:
    """The derived series ``text`` reads, directly or through other derived series, with their
    expressions: what a rule records beside its own text so it is whole without its files.
    Unparseable text gives what could be read (compiling it reports the error)."""
    found: dict[str, str] = {}
    pending = [text]
    while pending:
        try:
            tree = _parse(pending.pop())
        except ExprError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in derived and node.id not in found:
                found[node.id] = derived[node.id]
                pending.append(derived[node.id])
    return dict(sorted(found.items()))


def _parse(text: str) -> ast.Expression:
    source = text.strip()
    if not source:
        raise ExprError("empty expression")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        with warnings.catch_warnings():
            # e.g. "'is' with a literal": the walk below refuses such text with a clearer message
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        column = f" at column {exc.offset}" if exc.offset else ""
        raise ExprError(f"syntax error{column}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is nested too deeply or is not valid text") from None


@lru_cache(maxsize=1024)
def _compile(text: str, derived: tuple[tuple[str, str], ...] = ()) -> Expr:
    # Cached: an Expr is immutable, and the same rule texts are re-validated on every reload.
    tree = _parse(text)
    catalogue = dict(derived)
    compiler = _Compiler(text.strip(), catalogue)
    fn, kind = compiler.node(tree.body, depth=0)
    max_window = compiler.max_lookback + 1 if compiler.uses_history else 0
    strict = _strict_series(tree, catalogue, set())
    return Expr(text=text, names=frozenset(compiler.names), kind=kind, max_window=max_window,
                terms=frozenset(compiler.terms), strict_series=frozenset(strict),
                derived=frozenset(compiler.expanded), _fn=fn)


_EAGER = frozenset({"bp", "abs", "min", "max"})   # functions that evaluate every argument at d


def _strict_series(node: ast.AST, derived: Mapping[str, str], seen: set[str]) -> set[str]:
    """Series read at the evaluation date on every evaluation path of an expression: both sides
    of arithmetic, the arguments of bp/abs and value-form min/max, the first comparison of a
    chain, the first operand of and/or, and those of a derived series read there. Windows, lag,
    days_since and later operands are left out (they read other dates, or may not be reached)."""
    def strict(child: ast.AST) -> set[str]:
        return _strict_series(child, derived, seen)
    if isinstance(node, ast.Expression):
        return strict(node.body)
    if isinstance(node, ast.Name):
        if node.id in derived and node.id not in seen:
            return _strict_series(_parse(derived[node.id]), derived, seen | {node.id})
        return {node.id} if node.id in SERIES else set()
    if isinstance(node, ast.Attribute):
        return {node.value.id} if isinstance(node.value, ast.Name) and node.value.id in SERIES else set()
    if isinstance(node, ast.BinOp):
        return strict(node.left) | strict(node.right)
    if isinstance(node, ast.UnaryOp):
        return strict(node.operand)
    if isinstance(node, ast.Compare):
        return strict(node.left) | strict(node.comparators[0])
    if isinstance(node, ast.BoolOp):
        return strict(node.values[0])
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _EAGER
            and not any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
        return set().union(*(strict(a) for a in node.args))
    return set()


class _Compiler:
    """Walks the whitelisted node types; anything else is an ``ExprError``."""

    def __init__(self, source: str, derived: Mapping[str, str] | None = None):
        self.source = source
        self.derived = dict(derived or {})
        self.expanding: list[str] = []      # derived series being compiled (cycle check)
        self.expanded: set[str] = set()
        self.names: set[str] = set()
        self.terms: set[str] = set()
        # Dates before d read by the window being compiled (windows nest: they add up).
        self.lookback = 0
        self.max_lookback = 0
        self.uses_history = False
        self.fanout = 1   # evaluations of the current subexpression per evaluated date

    def fail(self, node: ast.AST, what: str) -> ExprError:
        column = getattr(node, "col_offset", None)
        where = f" (column {column + 1})" if column is not None else ""
        return ExprError(f"{what}{where}")

    def text_of(self, node: ast.AST) -> str:
        return repr(ast.get_source_segment(self.source, node) or _describe(node))

    def node(self, node: ast.AST, depth: int) -> tuple[Fn, Kind]:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression nested deeper than {MAX_DEPTH} levels")
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise self.fail(node, f"{_describe(node)} is not allowed")
        return handler(self, node, depth + 1)

    def number(self, node: ast.AST, depth: int, role: str) -> Fn:
        """Compile an operand that must be a number."""
        fn, kind = self.node(node, depth)
        if kind != "number":
            raise self.fail(node, f"{role} needs a number, got a condition")
        return fn

    def condition(self, node: ast.AST, depth: int, role: str) -> Fn:
        fn, kind = self.node(node, depth)
        if kind != "condition":
            raise self.fail(node, f"{role} needs a condition (a comparison), got a number")
        return fn

    # ---- leaves ----
    def constant(self, node: ast.Constant, depth: int) -> tuple[Fn, Kind]:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(node, f"{_describe(node)} is not allowed (only decimal numbers)")
        literal = (ast.get_source_segment(self.source, node) or "").replace("_", "")
        try:
            number = Decimal(literal)
        except decimal.InvalidOperation:
            raise self.fail(node, f"number {literal!r} is not allowed (write it in decimal)") from None
        if not number.is_finite():
            raise self.fail(node, f"number {literal!r} is not finite")
        return (lambda ctx, date: number), "number"

    def name(self, node: ast.Name, depth: int) -> tuple[Fn, Kind]:
        name = node.id
        if name in FUNCTIONS:
            raise self.fail(node, f"function {name!r} must be called, e.g. {FUNCTIONS[name][2]}")
        if name in TERMS:
            return self.term(name, 0), "condition"
        if name in NUMBER_TERMS:
            self.terms.add("bdom")
            return _bdom, "number"
        if name in self.derived:
            return self.expand(node, name, depth), "number"
        if name not in SERIES:
            derived = f"; derived series: {', '.join(sorted(self.derived))}" if self.derived else ""
            raise self.fail(node, f"unknown series {name!r}; known series: {_known_series()}"
                                  f"{derived}; calendar terms: {', '.join(TERMS + NUMBER_TERMS)}")
        return self.lookup(name), "number"

    def expand(self, node: ast.Name, name: str, depth: int) -> Fn:
        """Compile a derived series in place of its name: its windows nest inside the caller's
        (they add to the look-back and multiply the work like any window)."""
        if name in self.expanding:
            cycle = " -> ".join([*self.expanding[self.expanding.index(name):], name])
            raise self.fail(node, f"derived series form a cycle: {cycle}")
        text = self.derived[name]
        source, self.source = self.source, text.strip()
        self.expanding.append(name)
        try:
            fn, kind = self.node(_parse(text).body, depth)
        except ExprError as exc:
            if str(exc).startswith("derived series"):
                raise
            raise ExprError(f"derived series {name!r} ({text}): {exc}") from None
        finally:
            self.expanding.pop()
            self.source = source
        if kind != "number":
            raise self.fail(node, f"derived series {name!r} is a condition, not a number")
        self.expanded.add(name)
        return fn

    def attribute(self, node: ast.Attribute, depth: int) -> tuple[Fn, Kind]:
        # Only `series.attribute` exists; it is a name of the language, resolved right here.
        base = node.value
        if isinstance(base, ast.Name) and base.id in self.derived:
            raise self.fail(node, f"derived series {base.id!r} has no attributes "
                                  f"('.{node.attr}'): declare another derived series instead")
        if not isinstance(base, ast.Name) or base.id not in SERIES:
            raise self.fail(node, f"attribute access '.{node.attr}' is not allowed "
                                  "(only series attributes such as sofr.p99)")
        allowed = SERIES[base.id].attributes
        if node.attr not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise self.fail(node, f"unknown attribute '{base.id}.{node.attr}'; "
                                  f"attributes of {base.id}: {known}")
        return self.lookup(f"{base.id}.{node.attr}"), "number"

    def lookup(self, key: str) -> Fn:
        self.names.add(key)

        def read(ctx: EvalContext, date: str) -> Decimal:
            value = ctx.value(key, date)
            if type(value) is Decimal:       # the engine's case: skip the checks below
                return value
            if value is None:
                raise EvalError(f"no value for {key!r}" + (f" on {date}" if date else ""))
            if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
                # A float here would already be inexact: refuse rather than decide on it.
                raise EvalError(f"input {key!r} is {type(value).__name__}, not Decimal")
            return Decimal(value)
        return read

    def term(self, term: str, window: int) -> Fn:
        self.terms.add(term)

        def holds(ctx: EvalContext, date: str) -> bool:
            return bool(ctx.term(term, date, window))
        return holds

    # ---- operators ----
    def binop(self, node: ast.BinOp, depth: int) -> tuple[Fn, Kind]:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator {_OPERATOR_TEXT.get(type(node.op), '?')!r} "
                                  "is not allowed (use + - * /)")
        symbol, method = op
        left = self.number(node.left, depth, f"operator {symbol!r}")
        right = self.number(node.right, depth, f"operator {symbol!r}")
        if symbol == "/":
            def divide(ctx, date):
                divisor = right(ctx, date)
                if divisor == 0:
                    raise EvalError("division by zero")
                return _CONTEXT.divide(left(ctx, date), divisor)
            return divide, "number"
        return (lambda ctx, date: method(left(ctx, date), right(ctx, date))), "number"

    def unaryop(self, node: ast.UnaryOp, depth: int) -> tuple[Fn, Kind]:
        if isinstance(node.op, ast.USub):
            operand = self.number(node.operand, depth, "unary '-'")
            return (lambda ctx, date: _CONTEXT.minus(operand(ctx, date))), "number"
        if isinstance(node.op, ast.Not):
            operand = self.condition(node.operand, depth, "'not'")
            return (lambda ctx, date: not operand(ctx, date)), "condition"
        raise self.fail(node, f"unary {_OPERATOR_TEXT.get(type(node.op), '?')!r} is not allowed")

    def compare(self, node: ast.Compare, depth: int) -> tuple[Fn, Kind]:
        # Chained `a < b < c` means `a < b and b < c` with b evaluated once, as in Python.
        operands = [self.number(node.left, depth, "comparison")]
        tests = []
        for op, right in zip(node.ops, node.comparators):
            test = _COMPARISONS.get(type(op))
            if test is None:
                raise self.fail(node, f"comparison {_OPERATOR_TEXT.get(type(op), '?')!r} "
                                      "is not allowed (use < <= > >= == !=)")
            tests.append(test)
            operands.append(self.number(right, depth, "comparison"))

        def chain(ctx, date):
            left = operands[0](ctx, date)
            for test, operand in zip(tests, operands[1:]):
                right = operand(ctx, date)
                if not test(left, right):
                    return False
                left = right
            return True
        return chain, "condition"

    def boolop(self, node: ast.BoolOp, depth: int) -> tuple[Fn, Kind]:
        word = "and" if isinstance(node.op, ast.And) else "or"
        parts = [self.condition(value, depth, f"'{word}'") for value in node.values]
        if word == "and":
            return (lambda ctx, date: all(part(ctx, date) for part in parts)), "condition"
        return (lambda ctx, date: any(part(ctx, date) for part in parts)), "condition"

    # ---- calls ----
    def call(self, node: ast.Call, depth: int) -> tuple[Fn, Kind]:
        name = self.callee(node)
        if name in TERMS:
            return self.term_call(node, name), "condition"
        low, high, usage = FUNCTIONS[name]
        if len(node.args) < low or (high is not None and len(node.args) > high):
            wanted = str(low) if low == high else f"at least {low}"
            raise self.fail(node, f"{name}() takes {wanted} argument(s), got {len(node.args)} "
                                  f"(usage: {usage})")
        if name == "days_since":
            return self.days_since(node), "number"
        if name == "share_at_or_above":
            return self.share_at_or_above(node, depth), "number"
        if name == "lag":
            return self.lag(node, depth), "number"
        if name in WINDOWS:
            # A string second argument selects the window form (min/max also have a value form).
            if _is_text(node.args[1]):
                return self.window_call(node, name, depth), "number"
            if name not in ("min", "max"):
                self.window(node.args[1], name)   # raises: the window is not a string
            for arg in node.args:
                if _is_text(arg):
                    raise self.fail(arg, f'{name}(): a window such as "20bd" is allowed only '
                                         f"as the second of two arguments (usage: {usage})")
        args = [self.number(arg, depth, f"{name}()") for arg in node.args]
        return _FUNCTION_BODIES[name](args), "number"

    def callee(self, node: ast.Call) -> str:
        """The called name, after the checks every call shares."""
        known = ", ".join(sorted(FUNCTIONS))
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, f"calling {_describe(node.func)} is not allowed "
                                  f"(functions: {known})")
        name = node.func.id
        if name in NUMBER_TERMS:
            raise self.fail(node, f"{name!r} is a number, not a function: write {name}")
        if name not in FUNCTIONS and name not in TERMS:
            raise self.fail(node, f"unknown function {name!r}; functions: {known}; "
                                  f"calendar terms: {', '.join(TERMS)}")
        if node.keywords:
            raise self.fail(node, f"keyword arguments are not allowed in {name}()")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail(node, f"'*' arguments are not allowed in {name}()")
        return name

    def term_call(self, node: ast.Call, name: str) -> Fn:
        if len(node.args) != 1:
            raise self.fail(node, f"{name}() takes 1 argument, a ±business-day window such as "
                                  f"{name}(1), got {len(node.args)}")
        window = self.count(node.args[0], f"{name}() window", 0, MAX_TERM_WINDOW, f"{name}(1)")
        return self.term(name, window)

    def days_since(self, node: ast.Call) -> Fn:
        arg = node.args[0]
        if not isinstance(arg, ast.Name) or arg.id not in SERIES:
            raise self.fail(arg, "days_since() needs a bare series name such as "
                                 f"days_since(reserves), got {self.text_of(arg)}")
        series = arg.id
        self.names.add(series)

        def since(ctx: EvalContext, date: str) -> Decimal:
            latest = ctx.latest_date(series, date)
            if latest is None:
                raise EvalError(f"no observation of {series!r} on or before {date}")
            days = (_day(date) - _day(latest)).days
            if days < 0:
                raise EvalError(f"latest observation of {series!r} ({latest}) is after {date}")
            return Decimal(days)
        return since

    def share_at_or_above(self, node: ast.Call, depth: int) -> Fn:
        rate = node.args[0]
        if not (isinstance(rate, ast.Name) and rate.id in SERIES
                and set(_PERCENTILES) <= set(SERIES[rate.id].attributes)):
            with_percentiles = sorted(s for s, spec in SERIES.items()
                                      if set(_PERCENTILES) <= set(spec.attributes))
            raise self.fail(rate, "share_at_or_above() needs a bare rate series with volume "
                                  f"percentiles ({', '.join(with_percentiles)}), got "
                                  f"{self.text_of(rate)}")
        series = rate.id
        # The median is the published rate itself (SOFR, TGCR, EFFR are volume-weighted medians).
        steps = [(f"{series}.{p}" if p else series, share)
                 for p, share in zip((*_PERCENTILES[:2], None, *_PERCENTILES[2:]), _SHARES)]
        reads = [(self.lookup(key), Decimal(share)) for key, share in steps]
        level = self.number(node.args[1], depth, "share_at_or_above() level")

        def share(ctx: EvalContext, date: str) -> Decimal:
            bar = level(ctx, date)
            for read, at_least in reads:     # lowest percentile first: the largest share
                if read(ctx, date) >= bar:
                    return at_least
            return Decimal(0)
        return share

    def lag(self, node: ast.Call, depth: int) -> Fn:
        n = self.count(node.args[1], "lag() distance", 1, MAX_WINDOW, "lag(sofr, 1)")
        x = self.windowed(node.args[0], depth, "lag()", lookback=n, reads=1)
        label = f"lag(..., {n})"

        def lagged(ctx: EvalContext, date: str) -> Decimal:
            return x(ctx, _history(ctx, date, n + 1, label)[0])
        return lagged

    def window_call(self, node: ast.Call, name: str, depth: int) -> Fn:
        if len(node.args) != 2:
            raise self.fail(node, f'{name}() with a window takes 2 arguments, {name}(x, "20bd"), '
                                  f"got {len(node.args)}")
        span = self.window(node.args[1], name)
        # change/pct_change compare d with the date N before it; the others aggregate N dates.
        spec = WINDOWS[name]
        count = span + 1 if spec.endpoints else span
        reads = 2 if spec.endpoints else count
        x = self.windowed(node.args[0], depth, f"{name}()", lookback=count - 1, reads=reads,
                          kind="condition" if spec.condition else "number")
        label = f'{name}(..., "{span}bd")'
        reduce = spec.reduce
        if spec.endpoints:
            def compare_ends(ctx: EvalContext, date: str) -> Decimal:
                days = _history(ctx, date, count, label)
                return reduce([x(ctx, days[0]), x(ctx, days[-1])])
            return compare_ends

        def aggregate(ctx: EvalContext, date: str) -> Decimal:
            return reduce([x(ctx, day) for day in _history(ctx, date, count, label)])
        return aggregate

    def windowed(self, node: ast.AST, depth: int, role: str, lookback: int, reads: int,
                 kind: Kind = "number") -> Fn:
        """Compile the argument of a window, evaluated at ``reads`` of the dates up to
        ``lookback`` before d; a window inside it reaches further back and multiplies the work."""
        fanout = self.fanout * reads
        if fanout > MAX_EVALUATIONS:
            raise self.fail(node, f"nested windows would evaluate {fanout} values per date "
                                  f"(limit {MAX_EVALUATIONS})")
        outer = self.fanout
        self.uses_history = True
        self.lookback += lookback
        self.max_lookback = max(self.max_lookback, self.lookback)
        self.fanout = fanout
        try:
            if kind == "condition":
                return self.condition(node, depth, role)
            return self.number(node, depth, role)
        finally:
            self.lookback -= lookback
            self.fanout = outer

    # ---- literal arguments ----
    def window(self, node: ast.AST, name: str) -> int:
        """A window literal "Nbd": N evaluation dates, 1..MAX_WINDOW."""
        if not _is_text(node):
            raise self.fail(node, f'{name}() window must be a string such as "20bd", '
                                  f"got {self.text_of(node)}")
        match = _WINDOW_TEXT.fullmatch(node.value)
        if match is None:
            raise self.fail(node, f"{name}() window {node.value!r} is not a count of business "
                                  'days: write it like "5bd"')
        span = int(match.group(1))
        smallest = WINDOWS[name].smallest
        if not smallest <= span <= MAX_WINDOW:
            raise self.fail(node, f"{name}() window {node.value!r} must be {smallest}bd to "
                                  f"{MAX_WINDOW}bd")
        return span

    def count(self, node: ast.AST, role: str, low: int, high: int, example: str) -> int:
        """A whole-number literal such as the 1 of ``lag(x, 1)`` or ``turn(1)``."""
        literal = (ast.get_source_segment(self.source, node) or "").replace("_", "")
        if not (isinstance(node, ast.Constant) and type(node.value) is int and literal.isdigit()):
            raise self.fail(node, f"{role} must be a whole number written as a literal, "
                                  f"e.g. {example}, got {self.text_of(node)}")
        if not low <= node.value <= high:
            raise self.fail(node, f"{role} must be {low} to {high}, got {node.value}")
        return node.value


def _is_text(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _day(text: str) -> Date:
    try:
        return Date.fromisoformat(text)
    except (TypeError, ValueError):
        raise EvalError(f"not a date: {text!r}") from None


def _history(ctx: EvalContext, date: str, count: int, label: str) -> list[str]:
    """The ``count`` evaluation dates ending at ``date``; a short history is an error, never a
    partial window."""
    days = list(ctx.history(date, count))
    if len(days) < count:
        raise EvalError(f"{label} needs {count} evaluation dates up to {date}, "
                        f"history has {len(days)}")
    days = days[-count:]
    if days[-1] != date:
        # A window anchored elsewhere would compare the wrong dates: refuse, do not guess.
        raise EvalError(f"{label}: the history for {date} ends on {days[-1]}")
    return days


def _bdom(ctx: EvalContext, date: str) -> Decimal:
    day = ctx.business_day_of_month(date)
    if isinstance(day, bool) or not isinstance(day, int):
        raise EvalError(f"business day of month is {type(day).__name__}, not int")
    return Decimal(day)


# ---- functions of values ----
def _bp(args: list[Fn]) -> Fn:
    (x,) = args
    return lambda ctx, date: _CONTEXT.multiply(x(ctx, date), _HUNDRED)


def _abs(args: list[Fn]) -> Fn:
    (x,) = args
    return lambda ctx, date: _CONTEXT.abs(x(ctx, date))


def _min(args: list[Fn]) -> Fn:
    return lambda ctx, date: min(arg(ctx, date) for arg in args)


def _max(args: list[Fn]) -> Fn:
    return lambda ctx, date: max(arg(ctx, date) for arg in args)


# ---- window reductions (values oldest first; d is the last) ----
def _change(values: list[Decimal]) -> Decimal:
    return _CONTEXT.subtract(values[-1], values[0])


def _pct_change(values: list[Decimal]) -> Decimal:
    base = values[0]
    if base == 0:
        raise EvalError("pct_change from a zero value")
    # Multiply first: the only rounding is the final division.
    return _CONTEXT.divide(_CONTEXT.multiply(_change(values), _HUNDRED), base)


def _sum(values: list[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _CONTEXT.add(total, value)
    return total


def _avg(values: list[Decimal]) -> Decimal:
    return _CONTEXT.divide(_sum(values), len(values))


def _spread(values: list[Decimal]) -> Decimal:
    """Sample standard deviation, sqrt((nΣx² − (Σx)²) / (n(n−1))), to 50 digits. Without a
    rounded mean the numerator is exact, so a constant window gives exactly 0."""
    n = len(values)
    squares = total = Decimal(0)
    for v in values:
        squares = _WIDE.add(squares, _WIDE.multiply(v, v))
        total = _WIDE.add(total, v)
    spread = _WIDE.subtract(_WIDE.multiply(n, squares), _WIDE.multiply(total, total))
    return _WIDE.sqrt(_WIDE.divide(spread, n * (n - 1)))


def _stdev(values: list[Decimal]) -> Decimal:
    return _CONTEXT.plus(_spread(values))


def _zscore(values: list[Decimal]) -> Decimal:
    """(x(d) − mean) / stdev, computed as (n·x(d) − Σx) / (n·stdev)."""
    deviation = _spread(values)
    if deviation == 0:
        raise EvalError("zscore of a constant window (standard deviation 0)")
    n = len(values)
    total = Decimal(0)
    for v in values:
        total = _WIDE.add(total, v)
    centred = _WIDE.subtract(_WIDE.multiply(n, values[-1]), total)
    return _CONTEXT.plus(_WIDE.divide(centred, _WIDE.multiply(n, deviation)))


def _count(values: list[bool]) -> Decimal:
    return Decimal(sum(1 for held in values if held))


def _pct_rank(values: list[Decimal]) -> Decimal:
    """The percentage of the window at or below its last value (d): 100 for a new high."""
    last = values[-1]
    at_or_below = sum(1 for value in values if value <= last)
    return _CONTEXT.divide(_CONTEXT.multiply(Decimal(at_or_below), _HUNDRED), len(values))


_PERCENTILES = ("p1", "p25", "p75", "p99")
_SHARES = (99, 75, 50, 25, 1)     # at least this % traded at or above p1, p25, median, p75, p99
_HUNDRED = Decimal(100)
_FUNCTION_BODIES = {"bp": _bp, "abs": _abs, "min": _min, "max": _max}


@dataclass(frozen=True)
class Window:
    """A window function: ``name(x, "Nbd")`` over the N evaluation dates ending at d."""
    usage: str
    reduce: Callable[[list[Decimal]], Decimal]
    smallest: int = 1          # the smallest window it accepts (a sample stdev needs two values)
    endpoints: bool = False    # compares d with d-N (reads N + 1 dates, uses the two ends)
    condition: bool = False    # x is a condition (count), not a number


# Every window function, one row each: adding one is its reducer above and a row here.
WINDOWS: dict[str, Window] = {
    "change": Window('change(x, "5bd")', _change, endpoints=True),
    "pct_change": Window('pct_change(x, "5bd")', _pct_change, endpoints=True),
    "avg": Window('avg(x, "20bd")', _avg),
    "min": Window('min(x, "20bd")', min),        # min/max also have a value form (FUNCTIONS)
    "max": Window('max(x, "20bd")', max),
    "stdev": Window('stdev(x, "20bd")', _stdev, smallest=2),
    "zscore": Window('zscore(x, "250bd")', _zscore, smallest=2),
    "count": Window('count(sofr > iorb, "20bd")', _count, condition=True),
    "pct_rank": Window('pct_rank(x, "250bd")', _pct_rank, smallest=2),
}
FUNCTIONS.update({name: (2, 2, w.usage) for name, w in WINDOWS.items() if name not in FUNCTIONS})
_ARITHMETIC = {
    ast.Add: ("+", _CONTEXT.add),
    ast.Sub: ("-", _CONTEXT.subtract),
    ast.Mult: ("*", _CONTEXT.multiply),
    ast.Div: ("/", _CONTEXT.divide),
}
_COMPARISONS = {
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
}
_OPERATOR_TEXT = {
    ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@",
    ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^",
    ast.Invert: "~", ast.UAdd: "+", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
    ast.IsNot: "is not",
}
_HANDLERS = {
    ast.Constant: _Compiler.constant, ast.Name: _Compiler.name,
    ast.Attribute: _Compiler.attribute, ast.BinOp: _Compiler.binop,
    ast.UnaryOp: _Compiler.unaryop, ast.Compare: _Compiler.compare,
    ast.BoolOp: _Compiler.boolop, ast.Call: _Compiler.call,
}
_DESCRIPTIONS = {
    ast.Subscript: "subscript [...]", ast.Lambda: "lambda", ast.IfExp: "conditional 'x if c else y'",
    ast.ListComp: "list comprehension", ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension", ast.GeneratorExp: "generator expression",
    ast.List: "list [...]", ast.Tuple: "tuple (...)", ast.Set: "set {...}", ast.Dict: "dict {...}",
    ast.JoinedStr: "f-string", ast.NamedExpr: "assignment ':='", ast.Starred: "'*' unpacking",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield from", ast.Slice: "slice",
}


def _describe(node: ast.AST) -> str:
    """Name a construct the way a rule author would recognise it."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):
            return f"string {value[:20]!r}"
        if isinstance(value, bytes):
            return "bytes literal"
        if value is None or isinstance(value, bool):
            return f"constant {value!r}"
        if isinstance(value, complex):
            return "complex number"
        return f"constant {value!r}"
    if isinstance(node, ast.Name):
        return f"name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return f"attribute '.{node.attr}'"
    return _DESCRIPTIONS.get(type(node), f"{type(node).__name__} expression")


def _known_series() -> str:
    return ", ".join(sorted(SERIES))
