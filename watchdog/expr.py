"""The rule expression language: a tiny, exact, safe subset of Python expression syntax.

``bp(sofr - iorb)``, ``sofr.p99 - iorb > 0.05 and onrrp < 100``, ``max(sofr, tgcr) - iorb``.

Text is parsed once with ``ast.parse(mode="eval")``; a strict whitelist walk turns the tree into
nested Python closures. User text is never passed to ``eval``/``exec`` and never reaches Python's
attribute machinery: ``sofr.p99`` is one identifier of the language (a series attribute) that the
compiler resolves against the series catalogue, so ``sofr.__class__`` is simply an unknown name.

Numbers are ``Decimal`` throughout. A literal is parsed from its source text (``3.90`` is exactly
3.90, never the float 3.8999…), arithmetic runs in a private context, so
``bp(4.00 - 3.90) == 10`` exactly and ``10 > 10`` is false. The compiler also checks types: an
arithmetic operand must be a number and ``and``/``or``/``not`` need conditions, so a rule that
compares a condition with a threshold is refused at load instead of silently treating
``True`` as 1.
"""
from __future__ import annotations

import ast
import decimal
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Callable, Literal, Mapping

from watchdog.series import SERIES

MAX_LENGTH = 1000     # far beyond any sensible rule; bounds parse time and nesting depth
MAX_DEPTH = 50        # nested operations; Python's own parser recurses on them

# Traps make a bad computation an error instead of a silent NaN or Infinity that would compare
# false and quietly keep an alert from firing.
_CONTEXT = decimal.Context(
    prec=28, rounding=decimal.ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
    traps=[decimal.DivisionByZero, decimal.InvalidOperation, decimal.Overflow],
)

Kind = Literal["number", "condition"]
Value = Decimal | bool
Fn = Callable[[Mapping[str, Decimal]], Value]

FUNCTIONS = {
    # name: (minimum arguments, maximum arguments or None, what it does)
    "bp": (1, 1, "percentage points to basis points, x * 100"),
    "abs": (1, 1, "absolute value"),
    "min": (2, None, "smallest argument"),
    "max": (2, None, "largest argument"),
}


class ExprError(ValueError):
    """The expression text is not in the language. The message names the offending part."""


class EvalError(ArithmeticError):
    """An expression could not be evaluated for one set of inputs (division by zero, a missing
    input). The engine skips that date rather than guessing a value."""


@dataclass(frozen=True)
class Expr:
    """A compiled expression: evaluate it as many times as needed, it is never re-parsed."""
    text: str
    names: frozenset[str]          # series and dotted series attributes it reads
    kind: Kind                     # "number" (compared with thresholds) or "condition"
    _fn: Fn = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, Decimal]) -> Value:
        """Evaluate with ``values`` keyed by the names in ``self.names``.

        Raises ``EvalError`` for a missing or non-decimal input, division by zero or overflow.
        """
        try:
            return self._fn(values)
        except (decimal.DivisionByZero, decimal.DivisionUndefined) as exc:
            raise EvalError(f"division by zero in {self.text!r}") from exc
        except decimal.DecimalException as exc:
            raise EvalError(f"cannot compute {self.text!r}: {type(exc).__name__}") from exc


def compile_expr(text: str) -> Expr:
    """Compile ``text`` once. Raises ``ExprError`` naming the construct that is not allowed."""
    if not isinstance(text, str):
        raise ExprError("an expression must be text")
    return _compile(text)


@lru_cache(maxsize=1024)
def _compile(text: str) -> Expr:
    # Cached: an Expr is immutable, and the same rule texts are re-validated on every reload.
    source = text.strip()
    if not source:
        raise ExprError("empty expression")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        with warnings.catch_warnings():
            # e.g. "'is' with a literal": the walk below refuses such text with a clearer message
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        column = f" at column {exc.offset}" if exc.offset else ""
        raise ExprError(f"syntax error{column}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is nested too deeply or is not valid text") from None
    compiler = _Compiler(source)
    fn, kind = compiler.node(tree.body, depth=0)
    return Expr(text=text, names=frozenset(compiler.names), kind=kind, _fn=fn)


class _Compiler:
    """Walks the whitelisted node types; anything else is an ``ExprError``."""

    def __init__(self, source: str):
        self.source = source
        self.names: set[str] = set()

    def fail(self, node: ast.AST, what: str) -> ExprError:
        column = getattr(node, "col_offset", None)
        where = f" (column {column + 1})" if column is not None else ""
        return ExprError(f"{what}{where}")

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
        return (lambda values: number), "number"

    def name(self, node: ast.Name, depth: int) -> tuple[Fn, Kind]:
        if node.id in FUNCTIONS:
            raise self.fail(node, f"function {node.id!r} must be called, e.g. {node.id}(x)")
        if node.id not in SERIES:
            raise self.fail(node, f"unknown series {node.id!r}; known series: {_known_series()}")
        return self.lookup(node.id), "number"

    def attribute(self, node: ast.Attribute, depth: int) -> tuple[Fn, Kind]:
        # Only `series.attribute` exists; it is a name of the language, resolved right here.
        base = node.value
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

        def read(values: Mapping[str, Decimal]) -> Decimal:
            try:
                value = values[key]
            except KeyError:
                raise EvalError(f"no value for {key!r}") from None
            if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
                # A float here would already be inexact: refuse rather than decide on it.
                raise EvalError(f"input {key!r} is {type(value).__name__}, not Decimal")
            return Decimal(value)
        return read

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
            def divide(values):
                divisor = right(values)
                if divisor == 0:
                    raise EvalError("division by zero")
                return _CONTEXT.divide(left(values), divisor)
            return divide, "number"
        return (lambda values: method(left(values), right(values))), "number"

    def unaryop(self, node: ast.UnaryOp, depth: int) -> tuple[Fn, Kind]:
        if isinstance(node.op, ast.USub):
            operand = self.number(node.operand, depth, "unary '-'")
            return (lambda values: _CONTEXT.minus(operand(values))), "number"
        if isinstance(node.op, ast.Not):
            operand = self.condition(node.operand, depth, "'not'")
            return (lambda values: not operand(values)), "condition"
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

        def chain(values):
            left = operands[0](values)
            for test, operand in zip(tests, operands[1:]):
                right = operand(values)
                if not test(left, right):
                    return False
                left = right
            return True
        return chain, "condition"

    def boolop(self, node: ast.BoolOp, depth: int) -> tuple[Fn, Kind]:
        word = "and" if isinstance(node.op, ast.And) else "or"
        parts = [self.condition(value, depth, f"'{word}'") for value in node.values]
        if word == "and":
            return (lambda values: all(part(values) for part in parts)), "condition"
        return (lambda values: any(part(values) for part in parts)), "condition"

    def call(self, node: ast.Call, depth: int) -> tuple[Fn, Kind]:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, f"calling {_describe(node.func)} is not allowed "
                                  f"(functions: {', '.join(sorted(FUNCTIONS))})")
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(node, f"unknown function {name!r}; "
                                  f"functions: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise self.fail(node, f"keyword arguments are not allowed in {name}()")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail(node, f"'*' arguments are not allowed in {name}()")
        low, high, _ = FUNCTIONS[name]
        if len(node.args) < low or (high is not None and len(node.args) > high):
            wanted = str(low) if low == high else f"at least {low}"
            raise self.fail(node, f"{name}() takes {wanted} argument(s), got {len(node.args)}")
        args = [self.number(arg, depth, f"{name}()") for arg in node.args]
        return _FUNCTION_BODIES[name](args), "number"


def _bp(args: list[Fn]) -> Fn:
    (x,) = args
    return lambda values: _CONTEXT.multiply(x(values), _HUNDRED)


def _abs(args: list[Fn]) -> Fn:
    (x,) = args
    return lambda values: _CONTEXT.abs(x(values))


def _min(args: list[Fn]) -> Fn:
    return lambda values: min(arg(values) for arg in args)


def _max(args: list[Fn]) -> Fn:
    return lambda values: max(arg(values) for arg in args)


_HUNDRED = Decimal(100)
_FUNCTION_BODIES = {"bp": _bp, "abs": _abs, "min": _min, "max": _max}
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
