"""The rule expression language: exact decimals, a strict whitelist, clear refusals."""
from __future__ import annotations

from decimal import Decimal

import pytest

from watchdog.expr import EvalError, ExprError, compile_expr

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
    with pytest.raises(ExprError, match=r"unknown function 'log'; functions: abs, bp, max, min"):
        compile_expr("log(sofr)")


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
