"""An FOMC decision recorded the moment it is announced (``watchdog announce``): which
administered rates an announcement may set, what it must satisfy, and the observation facts that
record it.

Why record it by hand: FRED's copy of IORB arrives after the first SOFR fixing under the new
rate, so without it the spreads of the effective date are first judged against the old IORB
(and corrected as a revised input once FRED catches up). The facts look like the importer's
FOMC implementation-note rows: source ``fomc``, published at the announcement. A mistyped rate
is corrected by announcing again; the store records that as a revision.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from watchdog.market.series import SERIES
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import norm
from watchdog.model.redact import redact_url
from watchdog.model.timefmt import utc_text

ADMINISTERED = ("iorb", "onrrp_rate", "srf_rate", "fftarget_upper", "fftarget_lower")


class AnnouncementRefused(ValueError):
    """An announcement that cannot be recorded. ``argument`` names the input at fault
    (``announced`` or ``settings``), ``problem`` says what is wrong with it."""

    def __init__(self, argument: str, problem: str):
        self.argument, self.problem = argument, problem
        super().__init__(f"{argument}: {problem}")


def announcement_events(settings: Iterable[str], effective: date, announced: datetime,
                        url: str | None = None) -> list[NewEvent]:
    """One ``observation-recorded`` per ``SERIES=RATE`` setting (a rate in percent of one of
    ``ADMINISTERED``) for the ``effective`` date, published at ``announced``; ``url`` (the
    implementation note or statement) is kept, redacted, as provenance. Raises
    AnnouncementRefused for an announcement after the effective date or a bad setting."""
    if announced.date() > effective:
        raise AnnouncementRefused("announced", f"{utc_text(announced)} is after the effective date {effective}")
    events = []
    for item in settings:
        series, _, raw = item.partition("=")
        if series not in ADMINISTERED:
            raise AnnouncementRefused("settings", f"{item!r}: series must be one of {', '.join(ADMINISTERED)}")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise AnnouncementRefused("settings", f"{item!r}: {raw!r} is not a rate in percent") from None
        if not value.is_finite() or not Decimal(-5) <= value <= Decimal(25):
            raise AnnouncementRefused("settings", f"{item!r}: {raw!r} is not a plausible rate in percent")
        # the announcement dates this value: a revision of an older copy (FRED's) is public
        # from the announcement on, not from when it was typed in (store: provenance.vintage)
        provenance = {"raw_value": raw, "raw_unit": "percent", "entered_with": "watchdog announce",
                      "announcement": utc_text(announced), "vintage": utc_text(announced),
                      **({"url": redact_url(url)} if url else {})}
        events.append(new_observation(Observation(
            series=series, date=effective.isoformat(), value=norm(value), unit=SERIES[series].unit,
            source="fomc", provenance=provenance), utc_text(announced)))
    return events
