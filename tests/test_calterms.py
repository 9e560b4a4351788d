"""Calendar terms (pressure dates) on real dates: the DOMAIN.md episodes, holidays, the
difference between the SIFMA and Fed calendars, and window semantics."""
from __future__ import annotations

from datetime import date

import pytest

from watchdog.market.calendar import is_business_day
from watchdog.market.calterms import (TERMS, business_day_of_month, business_days_to_month_end,
                               is_term, terms_on)

D = date.fromisoformat


def test_the_2019_repo_spike_day_is_a_rolled_tax_date_and_coupon_settlement():
    # 2019-09-15 was a Sunday: both the tax date and the mid-month settlement rolled to Monday.
    assert terms_on(D("2019-09-16")) == {"tax_date", "coupon_settlement"}
    assert not is_term("tax_date", D("2019-09-13"))


def test_the_day_after_the_rolled_tax_date_is_within_window_one():
    assert not is_term("tax_date", D("2019-09-17"))
    assert is_term("tax_date", D("2019-09-17"), window=1)


def test_2018_year_end_is_also_quarter_end_and_month_end():
    assert terms_on(D("2018-12-31")) == {"month_end", "quarter_end", "year_end",
                                         "coupon_settlement"}


def test_first_business_day_after_new_year_holiday_is_turn_and_year_turn():
    assert terms_on(D("2019-01-02")) >= {"turn", "quarter_turn", "year_turn"}
    assert is_term("year_turn", D("2026-01-02"))  # after 2025-12-31


def test_quarter_turn_2024_10_01():
    assert is_term("quarter_turn", D("2024-10-01"))
    assert is_term("turn", D("2024-10-01"))
    assert not is_term("year_turn", D("2024-10-01"))
    assert is_term("quarter_end", D("2024-09-30"))


def test_month_end_and_turn_of_october_2025():
    assert is_term("month_end", D("2025-10-31"))
    assert not is_term("quarter_end", D("2025-10-31"))
    assert terms_on(D("2025-11-03")) == {"turn"}   # 11-01/02 are a weekend
    assert is_term("turn", D("2025-12-01"))        # after Friday 2025-11-28 (an early close)
    assert is_term("month_end", D("2025-11-28"))


def test_year_end_on_a_weekend_falls_back_to_friday():
    # 2023-12-31 is a Sunday.
    assert is_term("year_end", D("2023-12-29"))
    assert not is_term("year_end", D("2023-12-28"))
    assert not is_term("year_end", D("2023-12-31"))


def test_month_end_before_a_memorial_day_on_the_last_calendar_day():
    # 2021-05-31 is Memorial Day: month_end is Friday 05-28, and the month-end coupon
    # settlement rolls into June, onto the turn.
    assert not is_business_day("sifma", D("2021-05-31"))
    assert is_term("month_end", D("2021-05-28"))
    assert not is_term("coupon_settlement", D("2021-05-28"))
    assert is_term("turn", D("2021-06-01"))
    assert is_term("coupon_settlement", D("2021-06-01"))


def test_coupon_settlement_rolls_over_weekend_and_labor_day_into_next_month():
    # 2025-08-31 is a Sunday and 2025-09-01 Labor Day.
    assert is_term("coupon_settlement", D("2025-09-02"))
    assert is_term("turn", D("2025-09-02"))
    assert not is_term("coupon_settlement", D("2025-08-29"))


def test_good_friday_month_end_depends_on_the_calendar():
    # 2024-03-29 is Good Friday (2024-03-31 a Sunday): no SOFR, but EFFR is published.
    assert is_term("quarter_end", D("2024-03-28"), "sifma")
    assert not is_term("quarter_end", D("2024-03-29"), "sifma")
    assert is_term("quarter_end", D("2024-03-29"), "fed")
    assert not is_term("quarter_end", D("2024-03-28"), "fed")


def test_good_friday_2021_does_not_move_march_month_end():
    assert not is_business_day("sifma", D("2021-04-02"))
    assert is_term("month_end", D("2021-03-31"))
    assert is_term("quarter_turn", D("2021-04-01"))
    assert terms_on(D("2021-04-02")) == frozenset()  # not a SIFMA business day


def test_daily_calendar_never_rolls():
    assert is_term("tax_date", D("2019-09-15"), "daily")
    assert not is_term("tax_date", D("2019-09-16"), "daily")
    assert is_term("month_end", D("2023-12-31"), "daily")


def test_window_reaches_both_sides_in_business_days():
    # month_end 2025-10-31 (Fri); business days before: 10-30, 10-29; after: 11-03, 11-04.
    assert is_term("month_end", D("2025-10-30"), window=1)
    assert not is_term("month_end", D("2025-10-29"), window=1)
    assert is_term("month_end", D("2025-10-29"), window=2)
    assert is_term("month_end", D("2025-11-03"), window=1)  # across the weekend
    assert not is_term("month_end", D("2025-11-04"), window=1)
    assert is_term("month_end", D("2025-11-04"), window=2)


def test_weekend_day_carries_no_term_at_any_window():
    assert terms_on(D("2025-11-01"), window=3) == frozenset()


def test_gse_cycle_covers_business_days_18_to_25():
    assert is_term("gse_cycle", D("2025-11-18"))
    assert is_term("gse_cycle", D("2025-11-25"))
    assert not is_term("gse_cycle", D("2025-11-17"))
    assert not is_term("gse_cycle", D("2025-11-26"))
    assert is_term("gse_cycle", D("2025-11-26"), window=1)


def test_an_ordinary_day_has_no_terms():
    assert terms_on(D("2025-11-06")) == frozenset()


def test_business_day_of_month():
    assert business_day_of_month(D("2025-11-03")) == 1
    assert business_day_of_month(D("2025-11-04")) == 2
    assert business_day_of_month(D("2025-11-01")) == 0      # Saturday before the first one
    assert business_day_of_month(D("2025-11-11")) == 6      # Veterans Day: count so far
    assert business_day_of_month(D("2025-11-11"), "daily") == 11


def test_business_days_to_month_end():
    assert business_days_to_month_end(D("2025-10-31")) == 0
    assert business_days_to_month_end(D("2025-10-30")) == 1
    assert business_days_to_month_end(D("2025-10-25")) == 5  # Saturday: 27..31 to come
    assert business_days_to_month_end(D("2023-12-31")) == 0  # Sunday after the month_end
    assert business_days_to_month_end(D("2024-03-28"), "sifma") == 0
    assert business_days_to_month_end(D("2024-03-28"), "fed") == 1


def test_unknown_term_names_the_known_ones():
    with pytest.raises(ValueError, match="month_end.*gse_cycle"):
        is_term("monthend", D("2025-10-31"))


def test_negative_window_is_rejected():
    with pytest.raises(ValueError, match="window"):
        is_term("turn", D("2025-11-03"), window=-1)
    with pytest.raises(ValueError, match="window"):
        terms_on(D("2025-11-01"), window=-1)


def test_unknown_calendar_is_rejected():
    with pytest.raises(ValueError, match="unknown calendar"):
        is_term("turn", D("2025-11-03"), "nyse")


def test_terms_is_the_documented_tuple():
    assert TERMS == ("month_end", "quarter_end", "year_end", "turn", "quarter_turn",
                     "year_turn", "tax_date", "coupon_settlement", "gse_cycle")
