"""The Treasury Fiscal Data family: the Daily Treasury Statement's TGA closing balance (series
``tga``), from the API (``live.py``, polled from ``[sources.fiscaldata]``) and from the shipped
website export of DTS Table I (``history.py``).

May import ``sources.base``, ``sources.parsing``, ``sources.files``, ``model`` and ``market``;
never another family (import contract "Source families are independent").

To add a series from this source, open ``live.py`` (one endpoint and one series today: another
DTS table is another endpoint and parser beside ``parse_operating_cash_balance``); the series
itself is declared in ``watchdog/market/series.py``, its history file as a kind in
``history.py`` and a line in ``watchdog/sources/history.py``.
"""
from __future__ import annotations

from collections.abc import Mapping

from watchdog.model.config import FiscalDataConfig
from watchdog.sources.base import Family, Source
from watchdog.sources.fiscaldata.live import FiscalDataSource


def _build(table: FiscalDataConfig, env: Mapping[str, str]) -> list[Source]:
    return [FiscalDataSource(table)]


FAMILY = Family("fiscaldata", (FiscalDataSource.name,), _build)
