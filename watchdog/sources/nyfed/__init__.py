"""The New York Fed family: the Markets Data API's reference rates (``rates.py``: SOFR, TGCR,
BGCR, EFFR, OBFR with percentiles and volume) and repo/reverse-repo operation results
(``operations.py``: SRF and ON RRP take-up), both polled from ``[sources.nyfed]``; the shipped
history of the rates (``history.py``); and the NY Fed's names for a rate's attributes that the
live parser and the history importer share (``fields.py``).

May import ``sources.base``, ``sources.parsing``, ``sources.files``, ``model`` and ``market``;
never another family (import contract "Source families are independent").

To add a series from this source, open ``fields.py`` (a rate: its API ``type``; an attribute: its
API field and CSV column) and ``rates.py`` (``RATE_GROUP``: the path of the rate's URL); the
series itself is declared in ``watchdog/market/series.py``, its history file as a kind in
``history.py`` and a line in ``watchdog/sources/history.py``.
"""
from __future__ import annotations

from collections.abc import Mapping

from watchdog.model.config import NyFedConfig
from watchdog.sources.base import Family, Source
from watchdog.sources.nyfed.operations import NyFedOperationsSource
from watchdog.sources.nyfed.rates import NyFedSource


def _build(table: NyFedConfig, env: Mapping[str, str]) -> list[Source]:
    """The rates poller, and the operations poller when the table says ``operations = true``."""
    sources: list[Source] = [NyFedSource(table)]
    if table.operations:
        sources.append(NyFedOperationsSource(table))
    return sources


FAMILY = Family("nyfed", (NyFedSource.name, NyFedOperationsSource.name), _build)
