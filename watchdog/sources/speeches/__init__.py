"""The Fed speeches family: feeds and index pages of Board and Reserve Bank speeches (``live.py``,
polled from ``[sources.speeches]``) and the shipped speech archives (``history.py``). Speeches are
``speech-recorded`` events with their full text, read by keyword rules; they feed no series.

May import ``sources.base``, ``sources.parsing``, ``sources.files``, ``model`` and ``market``;
never another family (import contract "Source families are independent").

To add a series from this source -- here, another institution's speeches -- open ``live.py``
(``INSTITUTIONS``: its web site and name; its feed or index page goes into
``[sources.speeches]``); an archive of its past speeches is a kind in ``history.py`` and a line
in ``watchdog/sources/history.py``.
"""
from __future__ import annotations

from collections.abc import Mapping

from watchdog.model.config import SpeechesConfig
from watchdog.sources.base import Family, Source
from watchdog.sources.speeches.live import SpeechesSource


def _build(table: SpeechesConfig, env: Mapping[str, str]) -> list[Source]:
    return [SpeechesSource(table)]


FAMILY = Family("speeches", (SpeechesSource.name,), _build)
