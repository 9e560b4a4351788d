"""Numbers and times for people: the one place that decides how a value is shown.

Console, Slack, email, the status page, the report and the CLI all show values through these
functions, so a spread reads ``315 bp`` everywhere and never ``314.99999999999999999999999997``.
JSON never goes through here: it keeps the exact decimal strings of the log.

- spreads in whole basis points, or one decimal where the data has one (``2.5 bp``); a negative
  spread reads ``3 bp under`` where a sentence needs a direction (``spread``);
- amounts in billions of dollars as ``$1,234.5bn`` (``-$8.2bn``);
- rates as ``4.33%`` (two decimals at least, more only when the data has them);
- ratios as a percentage with two decimals (``9.70%``);
- instants in New York time with the zone (``2025-10-31 09:15 EDT``);
- a series as a line of block glyphs (``sparkline``), for Slack, the terminal and ``render``.

Rounding is half up, on ``Decimal``: what is shown is decided exactly, never through a float.
Pure: no I/O, no clock.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from watchdog.model.timefmt import NEW_YORK, parse_utc

_ONE = Decimal(1)
_TENTH = Decimal("0.1")
_CENT = Decimal("0.01")


def as_decimal(value: Any) -> Decimal | None:
    """``value`` (a Decimal, an int or decimal text) as a finite Decimal; None for anything else
    (None, a bool, a float, text that is not a number)."""
    if value is None or isinstance(value, (bool, float)):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _as_given(value: Any) -> str:
    """What is shown for a value that is not a number: ``n/a`` for none, else its text."""
    return "n/a" if value is None else str(value)


def _round(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def _grouped(value: Decimal, places: int) -> str:
    """``1234.5`` -> ``1,234.5``: thousands grouped, exactly ``places`` decimals."""
    return f"{_round(value, Decimal(1).scaleb(-places)):,.{places}f}"


def basis_points(value: Any) -> str:
    """``315 bp``, ``-3 bp``, ``2.5 bp`` (one decimal only where the value has a fraction)."""
    number = as_decimal(value)
    if number is None:
        return _as_given(value)
    whole = _round(number, _ONE)
    shown = whole if whole == _round(number, _TENTH) else _round(number, _TENTH)
    return f"{shown + 0:,} bp"       # + 0 turns -0 into 0


def spread(value: Any, over: str = "over", under: str = "under") -> str:
    """A spread with its direction, for a sentence: ``315 bp over``, ``3 bp under`` (a negative
    spread is not "-3 bp over")."""
    number = as_decimal(value)
    if number is None:
        return _as_given(value)
    if number < 0:
        return f"{basis_points(-number)} {under}"
    return f"{basis_points(number)} {over}"


def usd_bn(value: Any) -> str:
    """``$1,234.5bn``, ``-$8.2bn``, ``$50bn`` (no ``.0`` on a whole amount)."""
    number = as_decimal(value)
    if number is None:
        return _as_given(value)
    sign = "-" if _round(number, _TENTH) < 0 else ""
    magnitude = _round(abs(number), _TENTH)
    text = _grouped(magnitude, 0) if magnitude == magnitude.to_integral_value() else _grouped(magnitude, 1)
    return f"{sign}${text}bn"


def rate(value: Any) -> str:
    """A rate in percent: ``4.33%``, ``4.20%``, ``4.325%`` (the data's own decimals past two)."""
    number = as_decimal(value)
    if number is None:
        return _as_given(value)
    places = max(2, -number.normalize().as_tuple().exponent)
    return f"{_round(number, Decimal(1).scaleb(-places))}%"


def percent(value: Any, places: int = 2) -> str:
    """A number already in percent, to ``places`` decimals: ``9.703674…`` -> ``9.70%``."""
    number = as_decimal(value)
    if number is None:
        return _as_given(value)
    return f"{_grouped(number, places)}%"


def plain(value: Any, places: int = 2) -> str:
    """A number with no unit: at most ``places`` decimals, thousands grouped, no trailing zeros."""
    number = as_decimal(value)
    if number is None:
        return _as_given(value)
    shown = _round(number, Decimal(1).scaleb(-places)).normalize()
    if shown == shown.to_integral_value():
        shown = shown.quantize(_ONE)
    return f"{shown + 0:,}"


SPARK_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[Any]) -> str:
    """One block glyph per value, lowest ``▁`` to highest ``█`` on a linear scale; a missing
    value (None, empty, not a number) is a space; all-equal values are a flat ``▄`` line."""
    numbers = [as_decimal(v) for v in values]
    present = [n for n in numbers if n is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    out = []
    for n in numbers:
        if n is None:
            out.append(" ")
        elif high == low:
            out.append(SPARK_BARS[3])
        else:
            step = ((n - low) * (len(SPARK_BARS) - 1) / (high - low)).to_integral_value(ROUND_HALF_UP)
            out.append(SPARK_BARS[int(step)])
    return "".join(out)


UNITS = ("bp", "%", "USD bn", "ratio", "index")


def quantity(value: Any, unit: str | None) -> str:
    """``value`` in ``unit`` (the series catalogue's units, and ``bp`` for spreads): the one
    dispatch every display uses. An unknown or empty unit shows the number plainly."""
    if unit == "bp":
        return basis_points(value)
    if unit == "%":
        return rate(value)
    if unit == "USD bn":
        return usd_bn(value)
    if unit == "ratio":
        return percent(value)
    if unit == "share":           # a share of volume (a derived series' "%"): 25%, 99.6%
        return f"{plain(value, 1)}%"
    return plain(value)


def new_york_time(moment: datetime | str) -> str:
    """An instant as New York wall time with its zone: ``2025-10-31 09:15 EDT``."""
    instant = parse_utc(moment) if isinstance(moment, str) else moment
    local = instant.astimezone(NEW_YORK)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def duration(delta: timedelta) -> str:
    """``45s``, ``12m``, ``5h 20m``, ``3d 4h``: the two largest units, for ages and lateness."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h {minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m"
    return f"{sign}{secs}s"
