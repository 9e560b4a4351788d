"""Exact numbers: every rate and amount is a ``Decimal`` parsed at the edge.

In payloads a number is its *normalised* decimal string (``"2.3"``, never ``"2.30"`` or a float)
so the same value from two sources is the same fact, byte for byte.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_MISSING = {"", ".", "null", "none", "nan", "n/a", "na"}


def to_decimal(raw: object) -> Decimal:
    """Parse a number from a payload exactly. Floats are refused: they are already inexact.

    Raises ``ValueError`` with the offending text for anything that is not a finite number.
    """
    if isinstance(raw, bool) or isinstance(raw, float):
        raise ValueError(f"refusing float {raw!r}: parse the payload with Decimal")
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, str):
        text = raw.strip().replace(",", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a number: {raw!r}") from None
    else:
        raise ValueError(f"not a number: {raw!r}")
    if not value.is_finite():
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def is_missing(raw: object) -> bool:
    """True for the many spellings of 'no value' (FRED '.', Fiscal Data 'null', empty)."""
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in _MISSING)


def norm(value: Decimal) -> str:
    """The canonical text of a decimal: no exponent, no trailing zeros, ``-0`` is ``0``."""
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    if value == 0:
        return "0"
    text = format(value, "f")     # exact: normalize() would round past 28 significant digits
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def scale(value: Decimal, factor: Decimal | int) -> Decimal:
    """Exact unit conversion, e.g. millions to billions with ``factor=Decimal('0.001')``."""
    return value * Decimal(factor)


_SIZE = re.compile(r"\s*(\d+)\s*(b|kb|mb|gb|kib|mib|gib)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(text: str) -> int:
    """Bytes of a size written ``20MB``, ``512kB``, ``1GiB`` or ``20000000`` (plain bytes).
    kB, MB and GB are powers of 1000, KiB, MiB and GiB powers of 1024; case is ignored."""
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"bad size {text!r}: use a whole number of bytes or one with a unit "
                         "(kB, MB, GB, KiB, MiB, GiB), e.g. '20MB'")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
