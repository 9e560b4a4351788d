"""The FRED unit table: which canonical series each FRED id feeds, in which unit FRED gives it and
the exact factor to the catalogue's. The live source (``fred.live``) and the history importer
(``fred.history``) both convert through it, so a unit is checked once.

Only ids whose units were checked (data-sources.md, DOMAIN.md, the shipped data) are here: a
wrong factor would record millions as billions without any error, so an unknown id is refused
rather than guessed. WTREGEN is a week average and only ever feeds ``tga_weekly_avg``: the daily
``tga`` comes from the DTS, and splicing the two would mix different quantities.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from watchdog.model.numbers import scale


@dataclass(frozen=True)
class FredUnit:
    """A unit FRED publishes in. Provenance records it as ``raw_unit``: live in FRED's own words
    (``fred_name``), from the history files in the shorthand the shipped log has always carried
    (``short``); both are part of recorded facts, so neither spelling may change."""
    factor: Decimal         # to the catalogue unit, exactly
    fred_name: str
    short: str

    def to_catalogue(self, value: Decimal) -> Decimal:
        """``value`` in the catalogue unit; a factor of 1 leaves it exactly as written."""
        return value if self.factor == 1 else scale(value, self.factor)


PERCENT = FredUnit(Decimal(1), "percent", "percent")
BILLIONS = FredUnit(Decimal(1), "billions of dollars", "USD bn")
BILLIONS_SAAR = FredUnit(Decimal(1), "billions of dollars", "USD bn SAAR")   # GDP
MILLIONS = FredUnit(Decimal("0.001"), "millions of dollars", "USD mn")

# FRED series id -> (canonical series, its unit on FRED).
FRED_SERIES: dict[str, tuple[str, FredUnit]] = {
    "IORB": ("iorb", PERCENT),
    "DFEDTARU": ("fftarget_upper", PERCENT),
    "DFEDTARL": ("fftarget_lower", PERCENT),
    "EFFR": ("effr", PERCENT),
    "SOFR": ("sofr", PERCENT),
    "RRPONTSYD": ("onrrp", BILLIONS),
    "WRESBAL": ("reserves", MILLIONS),
    "WALCL": ("fed_assets", MILLIONS),
    "WLCFLPCL": ("primary_credit", MILLIONS),
    "WTREGEN": ("tga_weekly_avg", MILLIONS),
    "M2SL": ("m2", BILLIONS),
    "GDP": ("gdp", BILLIONS_SAAR),
}

# Canonical series -> its FRED id, for building a `[sources.fred] series` table.
FRED_IDS: dict[str, str] = {series: fred_id for fred_id, (series, _) in FRED_SERIES.items()}


def conversion(series: str, fred_id: str) -> FredUnit:
    """The unit of a FRED id feeding ``series``; ValueError when not a known pair."""
    known = FRED_SERIES.get(fred_id)
    if known is None:
        raise ValueError(f"FRED series {fred_id!r} has no checked unit conversion "
                         f"(known: {', '.join(sorted(FRED_SERIES))})")
    if known[0] != series:
        raise ValueError(f"FRED series {fred_id!r} is {known[0]!r}, not {series!r}")
    return known[1]
