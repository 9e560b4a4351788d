"""The OFR family: the Office of Financial Research's Financial Stress Index (series
``ofr_fsi``, its eight components as attributes), from the CSV the OFR publishes (``live.py``,
polled from ``[sources.ofr]``) and from the shipped copy of that CSV (``history.py``).

May import ``sources.base``, ``sources.parsing``, ``sources.files``, ``model`` and ``market``;
never another family (import contract "Source families are independent").

To add a series from this source (another OFR file, such as the Short-term Funding Monitor API),
open ``live.py`` (one file and one series today: another file is another endpoint and parser
beside ``parse_fsi``); the series itself is declared in ``watchdog/market/series.py``, its history
file as a kind in ``history.py`` and a line in ``watchdog/sources/history.py``.
"""
from __future__ import annotations

from collections.abc import Mapping

from watchdog.model.config import OfrConfig
from watchdog.sources.base import Family, Source
from watchdog.sources.ofr.live import OfrSource


def _build(table: OfrConfig, env: Mapping[str, str]) -> list[Source]:
    return [OfrSource(table)]


FAMILY = Family("ofr", (OfrSource.name,), _build)
