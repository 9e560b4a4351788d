from datetime import date, datetime, timedelta, timezone

from watchdog.market.staleness import expected_date, next_deadline

H1 = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_friday_sofr_is_due_monday_after_publication_plus_grace():
    assert expected_date("sofr", at("2025-11-03T08:59:00-05:00"), H1) == date(2025, 10, 30)
    assert expected_date("sofr", at("2025-11-03T09:00:00-05:00"), H1) == date(2025, 10, 31)
    assert next_deadline("sofr", at("2025-11-03T09:00:00-05:00"), H1) == at("2025-11-04T09:00:00-05:00")


def test_good_friday_is_never_expected_for_sofr_but_is_for_effr():
    monday = at("2023-04-10T12:00:00-04:00")
    assert expected_date("sofr", monday, H1) == date(2023, 4, 6)
    assert expected_date("effr", monday, H1) == date(2023, 4, 7)
