"""Alert summaries: a small template language whose rendering is bounded in time and size.

A summary is Jinja2 syntax restricted to what an alert line needs:

- text, and ``{{ name }}`` placeholders (``{{ sofr.p99 }}`` for an attribute of an input);
- each placeholder optionally piped through filters from ``SUMMARY_FILTERS`` (``{{ value |
  float | round(2) }}``), whose arguments are literals (``round(2)``, ``default("n/a")``);
- comments ``{# … #}`` and ``{% raw %}…{% endraw %}``.

The display filters show a value as people read it, through watchdog.model.display (the one
module that decides how numbers read): ``bp`` (``315 bp``), ``spread`` (``3 bp under``,
``12 bp over``; ``spread("above", "below")`` picks the words), ``usd_bn`` (``-$8.2bn``), ``pct``
(a number already in percent, ``9.70%``; ``pct(1)`` for one decimal, 0 to 4), ``rate`` (a rate in
percent, ``4.33%``) and ``num`` (plain, at most two decimals). A placeholder with no value (``n/a``)
goes through them unchanged.

Nothing else: no tags (``{% for %}``, ``{% if %}``, ``{% set %}``, macros, includes), no
operators (``*``, ``+``, ``~``, comparisons), no calls, subscripts or literal lists. A template
is at most ``SUMMARY_MAX_CHARS`` characters. Every construct left does work linear in its input,
so a summary renders in time proportional to the template and its values, and the output is cut
at ``SUMMARY_MAX_CHARS`` characters, ending ``… [cut at 2000 characters]``. ``check`` refuses a
template outside the language, at its line; one that reaches the renderer anyway (a rule
recorded in an old log) is not run, and renders as a one-line notice instead.

The limits are structural, not a clock: rendering is deterministic, so live, replay and audit
render the same text.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from watchdog.model import display

SUMMARY_MAX_CHARS = 2000
# Filters whose output is at most a small multiple of their input (or a literal argument).
JINJA_FILTERS = ("abs", "capitalize", "default", "float", "int", "lower", "round", "title",
                 "trim", "truncate", "upper")
MAX_PCT_PLACES = 4
WORD_CHARS = 40                  # a literal word of ``spread``: "over", "above", "below IORB"


def _word(text: Any, default: str) -> str:
    """A literal word argument, one line and at most ``WORD_CHARS`` characters."""
    word = " ".join(str(text).split())[:WORD_CHARS]
    return word or default


def _spread(value: Any, over: Any = "over", under: Any = "under") -> str:
    return display.spread(str(value), _word(over, "over"), _word(under, "under"))


def _pct(value: Any, places: Any = 2) -> str:
    try:
        shown = min(max(int(places), 0), MAX_PCT_PLACES)
    except (TypeError, ValueError):
        shown = 2
    return display.percent(str(value), shown)


# Display filters: the value as people read it (watchdog.model.display), linear in their input.
DISPLAY_FILTERS = {
    "bp": lambda value: display.basis_points(str(value)),
    "spread": _spread,
    "usd_bn": lambda value: display.usd_bn(str(value)),
    "pct": _pct,
    "rate": lambda value: display.rate(str(value)),
    "num": lambda value: display.plain(str(value)),
}
SUMMARY_FILTERS = JINJA_FILTERS + tuple(DISPLAY_FILTERS)
LANGUAGE = ("allowed: text, {{ name }} placeholders and the filters "
            f"{', '.join(SUMMARY_FILTERS)} with literal arguments")


class TemplateProblem(ValueError):
    """A summary template outside the language (or not Jinja2 at all); says what and why."""


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    # Defence in depth: what the language checker lets through is all the renderer has.
    env.filters = {**{name: env.filters[name] for name in JINJA_FILTERS}, **DISPLAY_FILTERS}
    env.tests = {}
    env.globals = {}
    return env


_ENV = _environment()

_TAGS = {nodes.For: "for", nodes.If: "if", nodes.Macro: "macro", nodes.CallBlock: "call",
         nodes.FilterBlock: "filter", nodes.With: "with", nodes.Block: "block",
         nodes.Extends: "extends", nodes.Include: "include", nodes.Import: "import",
         nodes.FromImport: "from", nodes.Assign: "set", nodes.AssignBlock: "set",
         nodes.ExprStmt: "do", nodes.Continue: "continue", nodes.Break: "break",
         nodes.Scope: "scope", nodes.ScopedEvalContextModifier: "autoescape",
         nodes.EvalContextModifier: "autoescape"}
_OPERATORS = {nodes.Mul: "*", nodes.Add: "+", nodes.Sub: "-", nodes.Div: "/",
              nodes.FloorDiv: "//", nodes.Mod: "%", nodes.Pow: "**", nodes.Concat: "~",
              nodes.Neg: "unary -", nodes.Pos: "unary +", nodes.Not: "not", nodes.And: "and",
              nodes.Or: "or", nodes.Compare: "comparison", nodes.Test: "'is' test",
              nodes.CondExpr: "inline if/else"}


def parse_summary(text: str, *, strict: bool = True) -> nodes.Template:
    """The parsed template. ``TemplateProblem`` for a syntax error and, when ``strict``, for
    a template longer than ``SUMMARY_MAX_CHARS`` or outside the language."""
    if strict and len(text) > SUMMARY_MAX_CHARS:
        raise TemplateProblem(f"{len(text):,} characters, more than the {SUMMARY_MAX_CHARS} a "
                              "summary template may have (put the rest in description)")
    try:
        parsed = _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}") from None
    if strict:
        problem = _problem(parsed)
        if problem:
            raise TemplateProblem(f"{problem} in a summary; {LANGUAGE}")
    return parsed


@lru_cache(maxsize=1024)
def language_problem(text: str) -> str | None:
    """Why ``text`` is not a summary template the renderer runs, or None."""
    try:
        parse_summary(text)
    except TemplateProblem as exc:
        return str(exc)
    return None


def _problem(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Template):
        return _first(node.body)
    if isinstance(node, nodes.Output):
        return _first(n for n in node.nodes if not isinstance(n, nodes.TemplateData))
    if isinstance(node, nodes.Stmt):
        tag = _TAGS.get(type(node), type(node).__name__.lower())
        return f"{{% {tag} %}} is not allowed"
    return _expression_problem(node)


def _first(children) -> str | None:
    for child in children:
        problem = _problem(child)
        if problem:
            return problem
    return None


def _expression_problem(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return None
    if isinstance(node, nodes.Getattr):
        if not isinstance(node.node, nodes.Name) or node.attr.startswith("_"):
            return f"attribute {node.attr!r} is not allowed"      # an input's own: sofr.p99
        return None
    if isinstance(node, nodes.Const):
        if isinstance(node.value, (str, int, float, bool)) or node.value is None:
            return None
        return f"the literal {node.value!r} is not allowed"
    if isinstance(node, nodes.Filter) and node.node is not None:
        if node.name not in SUMMARY_FILTERS:
            return f"filter {node.name!r} is not allowed"
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return f"filter {node.name!r} with *args or **kwargs is not allowed"
        for arg in [*node.args, *(keyword.value for keyword in node.kwargs)]:
            if not isinstance(arg, nodes.Const):
                return f"filter {node.name!r} with an argument that is not a literal is not allowed"
        return _expression_problem(node.node)
    for kind, shown in _OPERATORS.items():
        if isinstance(node, kind):
            return f"operator {shown} is not allowed"
    if isinstance(node, nodes.Call):
        return "a call is not allowed"
    if isinstance(node, (nodes.Getitem, nodes.Slice)):
        return "a subscript ([…]) is not allowed"
    return f"a {type(node).__name__.lower()} expression is not allowed"


@lru_cache(maxsize=1024)
def _compiled(text: str):
    parse_summary(text)                 # never compile what is outside the language
    return _ENV.from_string(text)


def cut_value(text: str) -> str:
    """A placeholder's value as the renderer sees it: no more than the output can show (one
    character more, so that a long value still makes the output say it was cut)."""
    return text if len(text) <= SUMMARY_MAX_CHARS else text[:SUMMARY_MAX_CHARS + 1]


def render_bounded(text: str, context: Mapping[str, Any]) -> str:
    """Render ``text`` (a template in the language; ``TemplateProblem`` otherwise) with
    ``context``, stopping once the output passes ``SUMMARY_MAX_CHARS``: then the first
    ``SUMMARY_MAX_CHARS`` characters and ``… [cut at 2000 characters]``."""
    pieces: list[str] = []
    size = 0
    for piece in _compiled(text).generate(dict(context)):
        pieces.append(piece)
        size += len(piece)
        if size > SUMMARY_MAX_CHARS:
            break
    out = "".join(pieces)
    if len(out) > SUMMARY_MAX_CHARS:
        return f"{out[:SUMMARY_MAX_CHARS]}… [cut at {SUMMARY_MAX_CHARS} characters]"
    return out
