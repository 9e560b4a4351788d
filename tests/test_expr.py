"""The rule expression language: exact decimals, a strict whitelist, clear refusals."""
from __future__ import annotations

import decimal
import statistics
from fractions import Fraction
from decimal import Decimal

import pytest

from watchdog.market import calterms
from watchdog.rules.expr import EvalError, ExprError, check_reserved_names, compile_expr
from watchdog.market.series import SERIES

D = Decimal


def value(text: str, **inputs: str) -> Decimal | bool:
    names = {key.replace("__", "."): D(raw) for key, raw in inputs.items()}
    return compile_expr(text).evaluate(names)


# ---- exactness ----

def test_basis_points_of_a_decimal_difference_are_exact():
    assert value("bp(4.00 - 3.90)") == D("10")
    assert value("bp(sofr - iorb)", sofr="4.00", iorb="3.90") == D("10")


def test_a_threshold_equal_to_the_value_is_not_exceeded():
    assert value("10 > 10") is False
    assert value("bp(4.00 - 3.90) > 10") is False
    assert value("bp(4.01 - 3.90) > 10") is True


def test_literals_are_read_from_their_text_not_through_float():
    # 0.1 + 0.2 is 0.30000000000000004 in binary floating point.
    assert value("0.1 + 0.2 == 0.3") is True
    assert value("0.1 + 0.2") == D("0.3")


def test_results_are_decimals_and_conditions_are_bools():
    assert isinstance(value("sofr * 2", sofr="2.5"), Decimal)
    assert value("sofr * 2", sofr="2.5") == D("5")
    assert value("sofr > 1 and not iorb > 5", sofr="2", iorb="4") is True


def test_arithmetic_follows_precedence_and_parentheses():
    assert value("1 + 2 * 3") == D("7")
    assert value("(1 + 2) * 3") == D("9")
    assert value("-sofr + 1", sofr="0.25") == D("0.75")
    assert value("10 / 4") == D("2.5")


def test_functions_abs_min_max_bp():
    assert value("abs(sofr - iorb)", sofr="3.80", iorb="3.90") == D("0.10")
    assert value("min(sofr, tgcr, bgcr)", sofr="4.22", tgcr="4.20", bgcr="4.21") == D("4.20")
    assert value("max(sofr, 5)", sofr="4.22") == D("5")
    assert value("bp(0.0001)") == D("0.01")


def test_chained_comparison_means_both_hold():
    assert value("1 < sofr < 5", sofr="4.22") is True
    assert value("1 < sofr < 4", sofr="4.22") is False
    assert value("sofr == 4.220", sofr="4.22") is True
    assert value("sofr != 4.22", sofr="4.22") is False


def test_boolean_operators_combine_conditions():
    assert value("sofr > 5 or iorb < 4", sofr="4", iorb="3.9") is True
    assert value("sofr > 5 or iorb < 3", sofr="4", iorb="3.9") is False
    assert value("not (sofr > 5)", sofr="4") is True


# ---- names ----

def test_names_are_the_series_and_attributes_read():
    assert compile_expr("bp(sofr - iorb)").names == frozenset({"sofr", "iorb"})
    assert compile_expr("bp(sofr.p99 - iorb)").names == frozenset({"sofr.p99", "iorb"})


def test_dotted_series_attribute_reads_its_own_input():
    expr = compile_expr("bp(sofr.p99 - sofr)")
    assert expr.evaluate({"sofr.p99": D("5.25"), "sofr": D("4.22")}) == D("103")
    assert value("effr.volume > 100", effr__volume="120") is True


def test_compiled_expression_keeps_its_text_and_kind():
    expr = compile_expr("bp(sofr - iorb)")
    assert expr.text == "bp(sofr - iorb)"
    assert expr.kind == "number"
    assert compile_expr("sofr > iorb").kind == "condition"


# ---- evaluation errors ----

def test_division_by_zero_is_an_eval_error():
    with pytest.raises(EvalError, match="division by zero"):
        value("sofr / (iorb - iorb)", sofr="1", iorb="2")
    with pytest.raises(EvalError, match="division by zero"):
        value("0 / 0")


def test_missing_input_is_an_eval_error():
    with pytest.raises(EvalError, match="no value for 'iorb'"):
        compile_expr("sofr - iorb").evaluate({"sofr": D("1")})


def test_float_input_is_refused_at_evaluation():
    with pytest.raises(EvalError, match="not Decimal"):
        compile_expr("sofr + 1").evaluate({"sofr": 0.1})


def test_overflow_is_an_eval_error_not_infinity():
    with pytest.raises(EvalError):
        value("1e999000 * 1e999000")


# ---- refusals ----

@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "unknown function '__import__'"),
    ("().__class__", "attribute access '.__class__' is not allowed"),
    ("sofr.__class__", "unknown attribute 'sofr.__class__'"),
    ("sofr.p99.real", "attribute access '.real' is not allowed"),
    ("[1][0]", "subscript [...] is not allowed"),
    ("'a'", "string 'a' is not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("2**999", "operator '**' is not allowed"),
    ("7 // 2", "operator '//' is not allowed"),
    ("7 % 2", "operator '%' is not allowed"),
    ("[x for x in sofr]", "list comprehension is not allowed"),
    ("sofr if 1 else 2", "conditional 'x if c else y' is not allowed"),
    ("(x := 1)", "assignment ':=' is not allowed"),
    ("f'{sofr}'", "f-string is not allowed"),
    ("{'a': 1}", "dict {...} is not allowed"),
    ("sofr in [1]", "comparison 'in' is not allowed"),
    ("sofr is None", "comparison 'is' is not allowed"),
    ("~1", "unary '~' is not allowed"),
    ("True", "constant True is not allowed"),
    ("None", "constant None is not allowed"),
    ("0x10", "number '0x10' is not allowed"),
    ("1j", "complex number is not allowed"),
    ("open('x')", "unknown function 'open'"),
    ("bp(x=1)", "keyword arguments are not allowed in bp()"),
    ("max(*[1, 2])", "'*' arguments are not allowed in max()"),
    ("max(sofr)", "max() takes at least 2 argument(s), got 1"),
    ("bp(sofr, iorb)", "bp() takes 1 argument(s), got 2"),
    ("bp", "function 'bp' must be called"),
    ("(lambda: 1)()", "calling lambda is not allowed"),
    ("sofr.p99()", "calling attribute '.p99' is not allowed"),
])
def test_forbidden_constructs_are_refused_by_name(text, message):
    with pytest.raises(ExprError) as caught:
        compile_expr(text)
    assert message in str(caught.value)


def test_unknown_series_lists_the_known_series():
    with pytest.raises(ExprError) as caught:
        compile_expr("bp(sofx - iorb)")
    message = str(caught.value)
    assert "unknown series 'sofx'" in message
    assert "sofr" in message and "iorb" in message and "tgcr" in message


def test_unknown_attribute_lists_the_series_attributes():
    with pytest.raises(ExprError) as caught:
        compile_expr("sofr.p50")
    assert "unknown attribute 'sofr.p50'; attributes of sofr: p1, p25, p75, p99, volume" in str(caught.value)
    with pytest.raises(ExprError, match="attributes of iorb: none"):
        compile_expr("iorb.p99")


def test_unknown_function_lists_the_allowed_functions():
    with pytest.raises(ExprError) as caught:
        compile_expr("log(sofr)")
    message = str(caught.value)
    assert ("unknown function 'log'; functions: abs, avg, bp, change, count, days_since, lag, max, min, "
            "pct_change, pct_rank, share_at_or_above, stdev, zscore; calendar terms: month_end") in message


@pytest.mark.parametrize("text, message", [
    ("bp(sofr > iorb)", "bp() needs a number, got a condition"),
    ("(sofr > 1) + 1", "operator '+' needs a number"),
    ("sofr and iorb", "'and' needs a condition"),
    ("not sofr", "'not' needs a condition"),
    ("(sofr > 1) > 0", "comparison needs a number"),
])
def test_mixing_numbers_and_conditions_is_refused(text, message):
    with pytest.raises(ExprError) as caught:
        compile_expr(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "sofr -", "sofr iorb", "1 +* 2"])
def test_syntax_errors_and_empty_text_are_refused(text):
    with pytest.raises(ExprError):
        compile_expr(text)


def test_pathologically_long_or_deep_expressions_are_refused():
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("1 + " * 400 + "1")
    with pytest.raises(ExprError, match="nested"):
        compile_expr("-" * 200 + "1")


def test_error_message_gives_the_column():
    with pytest.raises(ExprError, match=r"column 8"):
        compile_expr("sofr + 2**3")


def test_non_text_is_refused():
    with pytest.raises(ExprError):
        compile_expr(42)  # type: ignore[arg-type]


# ---- evaluation through a context: windows, as-of joins, calendar terms ----

# SOFR as published (NY Fed) around the October 2025 month-end, with IORB stepping from 4.15 to
# 3.90 after the 29 October FOMC meeting; reserves and GDP are illustrative as-of values.
SOFR = {
    "2025-10-20": "4.16", "2025-10-21": "4.23", "2025-10-22": "4.21", "2025-10-23": "4.24",
    "2025-10-24": "4.24", "2025-10-27": "4.27", "2025-10-28": "4.31", "2025-10-29": "4.27",
    "2025-10-30": "4.04", "2025-10-31": "4.22", "2025-11-03": "4.13", "2025-11-04": "4.00",
}
DATES = sorted(SOFR)


class Context:
    """A hand-made EvalContext: evaluation dates are the SOFR dates; as-of series are joined by
    their latest observation on or before the date, as the engine joins them."""

    def __init__(self, data=None, asof=None, terms=None, bdom=None, dates=DATES):
        self.data = data if data is not None else {
            "sofr": {d: D(v) for d, v in SOFR.items()},
            "iorb": {d: D("4.15") if d <= "2025-10-29" else D("3.90") for d in SOFR},
        }
        self.asof = asof or {}
        self.terms = terms or {}
        self.bdom = bdom or {}
        self.dates = dates
        self.calls: list[tuple] = []

    def value(self, name, date):
        if name in self.asof:
            latest = self.latest_date(name, date)
            return self.asof[name][latest] if latest else None
        return self.data.get(name, {}).get(date)

    def history(self, date, n):
        self.calls.append(("history", date, n))
        upto = [d for d in self.dates if d <= date]
        return upto[-n:]

    def latest_date(self, name, date):
        known = [d for d in self.asof.get(name, self.data.get(name, {})) if d <= date]
        return max(known) if known else None

    def term(self, term, date, window):
        self.calls.append(("term", term, date, window))
        i = self.dates.index(date)
        near = self.dates[max(0, i - window): i + window + 1]
        return any(d in self.terms.get(term, ()) for d in near)

    def business_day_of_month(self, date):
        return self.bdom[date]


def at(text: str, date: str, ctx: Context | None = None):
    return compile_expr(text).evaluate_at(ctx or Context(), date)


def test_names_read_through_the_context_at_the_date():
    assert at("bp(sofr - iorb)", "2025-10-31") == D("32")
    assert at("bp(sofr - iorb)", "2025-10-29") == D("12")
    assert at("bp(sofr - iorb) > 10", "2025-10-30") is True


def test_a_missing_value_names_the_input_and_the_date():
    with pytest.raises(EvalError, match="no value for 'sofr.p99' on 2025-10-31"):
        at("sofr.p99 - sofr", "2025-10-31")


def test_ratio_of_series_with_different_frequencies_joins_as_of():
    ctx = Context(asof={"reserves": {"2025-10-22": D("2830.5"), "2025-10-29": D("2843.1")},
                       "gdp": {"2025-04-01": D("30485.7")}})
    # The value on 31 October is the week of the 29th over the latest GDP print.
    assert at("reserves / gdp * 100", "2025-10-31", ctx) == D("2843.1") * 100 / D("30485.7")
    assert at("reserves / gdp", "2025-10-27", ctx) == D("2830.5") / D("30485.7")


def test_change_is_the_difference_with_n_evaluation_dates_before():
    assert at("change(sofr, \"5bd\")", "2025-10-31") == D("-0.02")      # 4.22 - 4.24
    assert at("bp(change(sofr, \"1bd\"))", "2025-10-31") == D("18")     # 4.22 - 4.04
    assert at("change(sofr, \"5bd\")", "2025-10-27") == D("0.11")       # 4.27 - 4.16


def test_pct_change_is_in_percent_with_one_rounding():
    assert at("pct_change(sofr, \"1bd\")", "2025-10-24") == D("0")
    result = at("pct_change(sofr, \"1bd\")", "2025-10-31")
    assert result == D("18") / D("4.04")        # 28 significant digits, half-even
    assert str(result) == "4.455445544554455445544554455"


def test_pct_change_from_zero_is_an_eval_error():
    ctx = Context(data={"srf": {"2025-10-30": D("0"), "2025-10-31": D("50.35")}},
                  dates=["2025-10-30", "2025-10-31"])
    with pytest.raises(EvalError, match="zero"):
        at("pct_change(srf, \"1bd\")", "2025-10-31", ctx)


def test_avg_min_max_over_a_window_include_the_date():
    # 27-31 October: 4.27 4.31 4.27 4.04 4.22
    assert at("avg(sofr, \"5bd\")", "2025-10-31") == D("4.222")
    assert at("min(sofr, \"5bd\")", "2025-10-31") == D("4.04")
    assert at("max(sofr, \"5bd\")", "2025-10-31") == D("4.31")
    assert at("avg(sofr, \"1bd\")", "2025-10-31") == D("4.22")


def test_window_of_an_expression_evaluates_it_at_every_date():
    # Spreads 12, 16, 12, 14, 32 bp: IORB steps down on the 30th.
    assert at("avg(bp(sofr - iorb), \"5bd\")", "2025-10-31") == D("17.2")
    assert at("max(bp(sofr - iorb), \"5bd\") > 30", "2025-10-31") is True


def test_min_and_max_of_values_still_work_beside_the_window_form():
    assert at("min(sofr, iorb)", "2025-10-31") == D("3.90")
    assert at("max(sofr, iorb, 5)", "2025-10-31") == D("5")
    assert at("max(sofr, \"3bd\") - min(sofr, \"3bd\")", "2025-10-31") == D("0.23")


def test_stdev_is_the_sample_standard_deviation_exactly():
    ctx = Context(data={"sofr": {"2025-10-01": D("4.30"), "2025-10-02": D("4.32"),
                                 "2025-10-03": D("4.34")}},
                  dates=["2025-10-01", "2025-10-02", "2025-10-03"])
    assert at("stdev(sofr, \"3bd\")", "2025-10-03", ctx) == D("0.02")
    assert at("zscore(sofr, \"3bd\")", "2025-10-03", ctx) == D("1")
    assert at("zscore(sofr, \"2bd\")", "2025-10-02", Context(
        data={"sofr": {"2025-10-01": D("4.30"), "2025-10-02": D("4.34")}},
        dates=["2025-10-01", "2025-10-02"])) == D("0.7071067811865475244008443621")


def correctly_rounded(exact: Fraction, root: bool = False) -> Decimal:
    """``exact`` (or its square root) to 28 significant digits, computed with 60."""
    with decimal.localcontext(prec=60):
        wide = Decimal(exact.numerator) / Decimal(exact.denominator)
        if root:
            wide = wide.sqrt()
    with decimal.localcontext(prec=28, rounding=decimal.ROUND_HALF_EVEN):
        return +wide


def test_stdev_and_zscore_are_the_correctly_rounded_exact_values():
    window = [Fraction(v) for v in ("4.27", "4.31", "4.27", "4.04", "4.22")]
    variance = statistics.variance(window)            # an exact Fraction
    assert at("stdev(sofr, \"5bd\")", "2025-10-31") == correctly_rounded(variance, root=True)
    z_squared = (window[-1] - statistics.mean(window)) ** 2 / variance
    z = at("zscore(sofr, \"5bd\")", "2025-10-31")
    assert z < 0 and -z == correctly_rounded(z_squared, root=True)


def test_constant_window_has_zero_stdev_and_no_zscore():
    flat = Context(data={"iorb": {d: D("4.15") for d in DATES}})
    assert at("stdev(iorb, \"5bd\")", "2025-10-31", flat) == 0
    with pytest.raises(EvalError, match="constant window"):
        at("zscore(iorb, \"5bd\")", "2025-10-31", flat)


def test_lag_reads_the_nth_evaluation_date_before():
    assert at("lag(sofr, 1)", "2025-10-31") == D("4.04")
    assert at("lag(bp(sofr - iorb), 2)", "2025-10-31") == D("12")   # 29 Oct: 4.27 - 4.15
    assert at("sofr - lag(sofr, 1)", "2025-11-03") == D("-0.09")    # across the weekend


def test_days_since_counts_calendar_days_to_the_latest_observation():
    ctx = Context(asof={"reserves": {"2025-10-22": D("2830.5"), "2025-10-29": D("2843.1")}})
    assert at("days_since(reserves)", "2025-10-31", ctx) == D("2")
    assert at("days_since(reserves)", "2025-11-04", ctx) == D("6")
    with pytest.raises(EvalError, match="no observation of 'reserves' on or before 2025-10-20"):
        at("days_since(reserves)", "2025-10-20", ctx)


def test_nested_windows_reach_back_by_the_sum_of_their_windows():
    # change(sofr, "1bd") is 0.18 on the 31st and -0.23 on the 30th.
    assert at("avg(change(sofr, \"1bd\"), \"2bd\")", "2025-10-31") == D("-0.025")
    with pytest.raises(EvalError, match="history has 1"):
        at("avg(change(sofr, \"1bd\"), \"2bd\")", "2025-10-21")


def test_the_context_is_asked_for_exactly_the_dates_a_window_needs():
    ctx = Context()
    at("avg(sofr, \"5bd\") + change(sofr, \"5bd\") + lag(sofr, 2)", "2025-10-31", ctx)
    assert ctx.calls == [("history", "2025-10-31", 5), ("history", "2025-10-31", 6),
                         ("history", "2025-10-31", 3)]


@pytest.mark.parametrize("text, date, needs", [
    ("avg(sofr, \"5bd\")", "2025-10-23",
     "needs 5 evaluation dates up to 2025-10-23, history has 4"),
    ("change(sofr, \"5bd\")", "2025-10-24", "needs 6 evaluation dates"),
    ("lag(sofr, 1)", "2025-10-20", "needs 2 evaluation dates up to 2025-10-20, history has 1"),
    ("zscore(sofr, \"250bd\")", "2025-11-04", "needs 250 evaluation dates"),
])
def test_a_history_shorter_than_the_window_is_an_error_never_a_partial_window(text, date, needs):
    with pytest.raises(EvalError, match=needs):
        at(text, date)


def test_a_missing_value_anywhere_in_the_window_is_an_error():
    ctx = Context()
    del ctx.data["iorb"]["2025-10-28"]
    with pytest.raises(EvalError, match="no value for 'iorb' on 2025-10-28"):
        at("avg(bp(sofr - iorb), \"5bd\")", "2025-10-31", ctx)
    assert at("avg(bp(sofr - iorb), \"2bd\")", "2025-10-31", ctx) == D("23")


def test_a_history_not_ending_at_the_date_is_refused():
    ctx = Context()
    ctx.history = lambda date, n: DATES[:n]          # a context bug: the wrong anchor
    with pytest.raises(EvalError, match="ends on"):
        at("avg(sofr, \"2bd\")", "2025-10-31", ctx)


def test_windows_terms_and_days_since_need_a_context_not_a_dict():
    for text in ("avg(sofr, \"5bd\")", "lag(sofr, 1)", "days_since(reserves)", "turn", "bdom"):
        with pytest.raises(EvalError, match="needs history"):
            compile_expr(text).evaluate({"sofr": D("4.22"), "reserves": D("2843.1")})


# ---- calendar terms ----

TERMS = {"month_end": {"2025-10-31"}, "turn": {"2025-11-03"}}


def test_bare_calendar_terms_are_conditions_at_the_date():
    ctx = Context(terms=TERMS)
    assert at("month_end", "2025-10-31", ctx) is True
    assert at("month_end", "2025-10-30", ctx) is False
    assert at("turn", "2025-10-31", ctx) is False
    assert ctx.calls[-1] == ("term", "turn", "2025-10-31", 0)


def test_a_call_widens_a_term_by_business_days_either_side():
    ctx = Context(terms=TERMS)
    assert at("turn(1)", "2025-10-31", ctx) is True
    assert at("turn(1)", "2025-11-04", ctx) is True
    assert at("turn(1)", "2025-10-30", ctx) is False
    assert at("turn(0)", "2025-11-03", ctx) is True
    assert ctx.calls[-1] == ("term", "turn", "2025-11-03", 0)


def test_terms_combine_with_conditions():
    ctx = Context(terms=TERMS, bdom={"2025-10-31": 22, "2025-10-29": 20})
    text = "bp(sofr - iorb) > 25 and not (month_end or turn(1))"
    assert at(text, "2025-10-31", ctx) is False        # 32 bp, but on a pressure date
    assert at("bp(sofr - iorb) > 25 and bdom >= 22", "2025-10-31", ctx) is True
    assert at("business_day_of_month == 20", "2025-10-29", ctx) is True


def test_every_calendar_term_is_a_reserved_name_of_the_language():
    assert not set(calterms.TERMS) & set(SERIES)
    for term in calterms.TERMS:
        expr = compile_expr(f"{term} or {term}(2)")
        assert expr.kind == "condition" and expr.names == frozenset() and expr.terms == {term}


@pytest.mark.parametrize("names", [{"turn"}, {"sofr", "month_end"}, {"bdom"}, {"avg"}])
def test_a_series_may_not_take_a_reserved_name(names):
    with pytest.raises(RuntimeError, match="reserved"):
        check_reserved_names(names)


# ---- compile-time metadata ----

@pytest.mark.parametrize("text, window", [
    ("bp(sofr - iorb)", 0),
    ("days_since(reserves)", 0),
    ("avg(sofr, \"20bd\")", 20),
    ("avg(sofr, \"1bd\")", 1),
    ("change(sofr, \"5bd\")", 6),
    ("lag(sofr, 1)", 2),
    ("zscore(bp(sofr - iorb), \"250bd\")", 250),
    ("change(sofr, \"5bd\") + avg(sofr, \"20bd\")", 20),
    ("avg(change(sofr, \"5bd\"), \"20bd\")", 25),
    ("lag(avg(sofr, \"3bd\"), 2)", 5),
])
def test_max_window_counts_the_evaluation_dates_read(text, window):
    assert compile_expr(text).max_window == window


def test_nested_windows_are_bounded_by_the_work_they_multiply():
    assert compile_expr("avg(avg(sofr, \"1000bd\"), \"25bd\")").max_window == 1024
    assert compile_expr("avg(change(sofr, \"1000bd\"), \"1000bd\")").max_window == 2000
    with pytest.raises(ExprError, match="nested windows would evaluate 26000 values per date"):
        compile_expr("avg(avg(sofr, \"1000bd\"), \"26bd\")")
    with pytest.raises(ExprError, match="limit 25000"):
        compile_expr("max(avg(avg(sofr, \"50bd\"), \"50bd\"), \"50bd\")")


def test_names_include_windows_and_days_since_and_terms_are_listed():
    expr = compile_expr("zscore(bp(sofr.p99 - iorb), \"250bd\") > 2 and days_since(reserves) < 8"
                        " and not quarter_turn(1) and bdom > 1")
    assert expr.names == frozenset({"sofr.p99", "iorb", "reserves"})
    assert expr.terms == frozenset({"quarter_turn", "bdom"})
    assert compile_expr("business_day_of_month").terms == {"bdom"}
    assert compile_expr("sofr").terms == frozenset()


# ---- malformed windows, lags, terms ----

@pytest.mark.parametrize("text, message", [
    ("avg(sofr, 20)", "avg() window must be a string such as \"20bd\", got '20'"),
    ("zscore(sofr, iorb)", "zscore() window must be a string such as \"20bd\", got 'iorb'"),
    ("avg(sofr, \"20d\")",
     "avg() window '20d' is not a count of business days: write it like \"5bd\""),
    ("change(sofr, \"5 bd\")", "change() window '5 bd' is not a count of business days"),
    ("change(sofr, \"5BD\")", "is not a count of business days"),
    ("change(sofr, \"-5bd\")", "is not a count of business days"),
    ("change(sofr, \"0bd\")", "change() window '0bd' must be 1bd to 1000bd"),
    ("avg(sofr, \"1001bd\")", "avg() window '1001bd' must be 1bd to 1000bd"),
    ("stdev(sofr, \"1bd\")", "stdev() window '1bd' must be 2bd to 1000bd"),
    ("zscore(sofr, \"1bd\")", "zscore() window '1bd' must be 2bd to 1000bd"),
    ("avg(sofr)", "avg() takes 2 argument(s), got 1 (usage: avg(x, \"20bd\"))"),
    ("avg(sofr, \"5bd\", 1)", "avg() takes 2 argument(s), got 3"),
    ("min(sofr, \"5bd\", tgcr)", "min() with a window takes 2 arguments"),
    ("min(\"5bd\", sofr)", "min(): a window such as \"20bd\" is allowed only as the second"),
    ("max(sofr, tgcr, \"5bd\")", "max(): a window such as \"20bd\" is allowed only as the second"),
    ("avg(sofr > 1, \"5bd\")", "avg() needs a number, got a condition"),
    ("avg(sofr, window=\"5bd\")", "keyword arguments are not allowed in avg()"),
    ("avg", "function 'avg' must be called, e.g. avg(x, \"20bd\")"),
    ("lag(sofr, iorb)",
     "lag() distance must be a whole number written as a literal, e.g. lag(sofr, 1), got 'iorb'"),
    ("lag(sofr, 1.5)", "lag() distance must be a whole number written as a literal"),
    ("lag(sofr, -1)", "got '-1'"),
    ("lag(sofr, \"1bd\")", "lag() distance must be a whole number written as a literal"),
    ("lag(sofr, True)", "lag() distance must be a whole number written as a literal"),
    ("lag(sofr, 0)", "lag() distance must be 1 to 1000, got 0"),
    ("lag(sofr)", "lag() takes 2 argument(s), got 1"),
    ("days_since(sofr - iorb)",
     "days_since() needs a bare series name such as days_since(reserves), got 'sofr - iorb'"),
    ("days_since(sofr.p99)", "days_since() needs a bare series name"),
    ("days_since(turn)", "days_since() needs a bare series name"),
    ("days_since(\"sofr\")", "days_since() needs a bare series name"),
    ("month_ends", "unknown series 'month_ends'"),
    ("quarter_ends(1)", "unknown function 'quarter_ends'"),
    ("turn(\"x\")", "turn() window must be a whole number written as a literal, e.g. turn(1)"),
    ("turn(sofr)", "turn() window must be a whole number written as a literal"),
    ("turn(11)", "turn() window must be 0 to 10, got 11"),
    ("turn(-1)", "turn() window must be a whole number written as a literal"),
    ("turn()", "turn() takes 1 argument"),
    ("turn(1, 2)", "turn() takes 1 argument"),
    ("bdom(1)", "'bdom' is a number, not a function: write bdom"),
    ("turn + 1", "operator '+' needs a number, got a condition"),
    ("bdom and turn", "'and' needs a condition"),
    ("turn.p99", "attribute access '.p99' is not allowed"),
    ("sofr > \"5bd\"", "string '5bd' is not allowed"),
    ("bp(\"5bd\")", "string '5bd' is not allowed"),
])
def test_malformed_windows_lags_and_terms_are_refused_at_compile_time(text, message):
    with pytest.raises(ExprError) as caught:
        compile_expr(text)
    assert message in str(caught.value)


def test_unknown_names_list_the_calendar_terms_too():
    with pytest.raises(ExprError) as caught:
        compile_expr("quarter_ends(1)")
    assert "calendar terms: month_end, quarter_end" in str(caught.value)
    with pytest.raises(ExprError) as caught:
        compile_expr("month_ends")
    assert "month_end" in str(caught.value) and "bdom" in str(caught.value)
