"""Numbers and times for people (watchdog/model/display.py): exact rounding, units, New York time."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from watchdog.model.display import (
    basis_points, duration, new_york_time, percent, plain, quantity, rate, spread, usd_bn,
)


@pytest.mark.parametrize("value, shown", [
    ("315", "315 bp"), ("-3", "-3 bp"), ("2.5", "2.5 bp"), ("2.53", "2.5 bp"), ("2.96", "3 bp"),
    ("314.99999999999999999999999997", "315 bp"), ("-0.04", "0 bp"), ("1234", "1,234 bp"),
])
def test_spreads_read_in_whole_basis_points_or_one_decimal_where_the_data_has_one(value, shown):
    assert basis_points(Decimal(value)) == shown


def test_a_negative_spread_reads_under_not_minus_over():
    assert spread(Decimal("-3")) == "3 bp under"
    assert spread("12") == "12 bp over"
    assert spread("-1.5", over="above", under="below") == "1.5 bp below"


@pytest.mark.parametrize("value, shown", [
    ("1234.5", "$1,234.5bn"), ("-8.224", "-$8.2bn"), ("50", "$50bn"), ("2848.021", "$2,848bn"),
    ("14257.64", "$14,257.6bn"), ("-0.04", "$0bn"), ("0.05", "$0.1bn"),
])
def test_amounts_read_as_billions_of_dollars(value, shown):
    assert usd_bn(value) == shown


def test_rates_ratios_and_plain_numbers():
    assert rate("4.2") == "4.20%" and rate("4.325") == "4.325%" and rate(Decimal(4)) == "4.00%"
    assert percent("9.703674190093303137684445111") == "9.70%"
    assert plain("12.50") == "12.5" and plain("1234567") == "1,234,567" and plain("0.3333333") == "0.33"


def test_the_unit_decides_the_form():
    assert quantity("315", "bp") == "315 bp"
    assert quantity("4.33", "%") == "4.33%"
    assert quantity("2848.021", "USD bn") == "$2,848bn"
    assert quantity("9.7036", "ratio") == "9.70%"
    assert quantity("101.5", "index") == "101.5"
    assert quantity("101.5", None) == "101.5"


def test_what_is_not_a_number_is_shown_as_it_is():
    assert basis_points("n/a") == "n/a" and usd_bn(None) == "n/a" and spread(None) == "n/a"
    assert quantity(float("nan"), "bp") == "nan"     # a float never decides: shown, not rounded


def test_instants_read_in_new_york_time_with_the_zone():
    assert new_york_time("2025-10-31T13:15:00.000000Z") == "2025-10-31 09:15 EDT"
    assert new_york_time("2025-12-31T14:00:00.123456Z") == "2025-12-31 09:00 EST"


@pytest.mark.parametrize("delta, shown", [
    (timedelta(seconds=45), "45s"), (timedelta(minutes=12, seconds=5), "12m"),
    (timedelta(hours=5, minutes=20), "5h 20m"), (timedelta(days=3, hours=4, minutes=2), "3d 4h"),
    (timedelta(days=2), "2d"), (timedelta(hours=-2), "-2h"),
])
def test_durations_read_in_their_two_largest_units(delta, shown):
    assert duration(delta) == shown


def test_a_share_of_volume_reads_as_a_percentage_without_false_decimals():
    # derived series in "%" (share_at_or_above steps, pct_rank): 25%, 99.6%, never "25.00%"
    assert [quantity(v, "share") for v in ("25", "99.6", "100", "33.333")] == ["25%", "99.6%", "100%", "33.3%"]
    assert quantity("4.33", "%") == "4.33%"              # a rate keeps its two decimals
