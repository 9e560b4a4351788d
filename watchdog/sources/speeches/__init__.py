"""The Fed speeches family: feeds and index pages of Board and Reserve Bank speeches (``live.py``,
polled from ``[sources.speeches]``), the Reserve Banks' own speech sources (``banks.py``: the New
York Fed's, ``nyfed.py``, and the Dallas Fed's, ``dallas.py``, each switched on in the same table)
and the shipped speech archives (``history.py``). Speeches are ``speech-recorded`` events with
their full text and the speaker's name (``model.speakers``), read by keyword rules; they feed no
series.

May import ``sources.base``, ``sources.parsing``, ``sources.files``, ``model`` and ``market``;
never another family (import contract "Source families are independent").

To add a series from this source -- here, another institution's speeches -- open ``live.py``
(``INSTITUTIONS``: its web site and name; its feed or index page goes into
``[sources.speeches]``); a bank whose index and pages need their own reading is a ``Bank`` in a
module like ``nyfed.py``, its settings in ``SpeechesConfig`` and a line in ``_build``; an archive
of its past speeches is a kind in ``history.py`` and a line in ``watchdog/sources/history.py``.
"""
from __future__ import annotations

from collections.abc import Mapping

from watchdog.model.config import SpeechesConfig
from watchdog.sources.base import Family, Source
from watchdog.sources.speeches.banks import ReserveBankSource
from watchdog.sources.speeches.dallas import DALLAS
from watchdog.sources.speeches.live import SpeechesSource
from watchdog.sources.speeches.nyfed import NEW_YORK

BANKS = (NEW_YORK, DALLAS)


def _build(table: SpeechesConfig, env: Mapping[str, str]) -> list[Source]:
    """The feeds-and-pages poller, and each Reserve Bank's source the table switches on."""
    sources: list[Source] = [SpeechesSource(table)]
    sources += [ReserveBankSource(bank, table) for bank in BANKS if getattr(table, bank.key)]
    return sources


FAMILY = Family("speeches", (SpeechesSource.name, *(bank.source for bank in BANKS)), _build)
