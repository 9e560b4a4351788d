"""The FRED family: the FRED/ALFRED JSON API and the keyless fredgraph CSV (``live.py``, polled
from ``[sources.fred]``); the shipped FRED CSVs, ALFRED first releases and current vintages of
revised series (``history.py``); and the unit table both convert through (``units.py``).

May import ``sources.base``, ``sources.parsing``, ``sources.files``, ``model`` and ``market``;
never another family (import contract "Source families are independent").

To add a series from this source, open ``units.py`` (its FRED id, canonical series and unit;
``[sources.fred] series`` then polls it, and ``live.MIN_LOOKBACK_DAYS`` if it is published long
after its date); the series itself is declared in ``watchdog/market/series.py``, its history file
as a kind in ``history.py`` and a line in ``watchdog/sources/history.py``.
"""
from __future__ import annotations

from collections.abc import Mapping

from watchdog.model.config import FredConfig
from watchdog.sources.base import Family, Source
from watchdog.sources.fred.live import FredSource


def _build(table: FredConfig, env: Mapping[str, str]) -> list[Source]:
    """The FRED poller; ``env`` holds its API key (or names its systemd credential)."""
    return [FredSource(table, env)]


FAMILY = Family("fred", (FredSource.name,), _build)
