"""Speech archives: what ``speeches.live`` records from feeds and pages, from the shipped copies
(``speeches/bog_speeches_<YEAR>.json``, ``newyork_speeches_<YEAR>.json``: JSON arrays, newest
first, dates like "December 18, 2019"; each loaded whole).

One ``speech-recorded`` event per speech with text (``events.Speech``; ``text`` is ``content`` as
given, ``content_hash`` its SHA-256). ``speaker`` and ``position`` are recorded as the file has
them (the Board files' "For Supervision Randal K. Quarles"): a re-import of the same files must
give the same facts (logs built before stay a prefix, nothing is recorded twice), so the name is
normalised where it is read (``model.speakers``: keyword rules, summaries), not here.

The archive has dates but no time of day, so ``published_at``
is the **end** of the speech date in New York (23:59:59.999999 ET): the latest instant it can
have become public, so replay never shows a speech early (it may show it up to a day late). A
record with no ``content`` (one 2024 Board entry, an interview page) has nothing to record and
is skipped. Duplicates (same ``events.speech_key``) are the store's business: the first is kept.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent, Speech, content_hash, new_speech
from watchdog.model.redact import redact_url
from watchdog.model.timefmt import end_of_day_new_york, utc_text
from watchdog.sources.files import FileRowError, HistoryParser, read_json, record_lines
from watchdog.sources.speeches.live import INSTITUTIONS

SOURCE = "fed-speeches-archive"     # the ``source`` of every speech imported from an archive

_MONTHS = {name: number for number, name in enumerate(
    ("January", "February", "March", "April", "May", "June", "July", "August", "September",
     "October", "November", "December"), start=1)}
_SPEECH_DATE = re.compile(r"([A-Z][a-z]+) (\d{1,2}), (\d{4})")


def _speech_date(text: Any) -> date:
    match = _SPEECH_DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or match.group(1) not in _MONTHS:
        raise FileRowError(f"date: not a date like 'December 18, 2019': {text!r}")
    try:
        return date(int(match.group(3)), _MONTHS[match.group(1)], int(match.group(2)))
    except ValueError:
        raise FileRowError(f"date: not a valid date: {text!r}") from None


def _text_field(record: dict[str, Any], name: str, required: bool) -> str:
    value = record.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise FileRowError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _speech_events(path: Path, rel: str, display: str, *, institution: str,
                   today: date | None = None) -> Iterator[NewEvent]:
    """One ``speech-recorded`` per record with text, ascending by date (records of one date in
    the reverse of the file's newest-first order). ``published_at``: end of the speech date in
    New York (the archive gives no time of day). A record without ``content`` is skipped."""
    text, document = read_json(path, display)
    if not isinstance(document, list):
        raise ImportFailed(f"{display}:1: expected a JSON array of speeches")
    parsed: list[tuple[date, Speech]] = []
    for line, record in zip(record_lines(text, len(document), r"\s*\["), document):
        try:
            if not isinstance(record, dict):
                raise FileRowError("speech is not an object")
            day = _speech_date(record.get("date"))
            speaker = _text_field(record, "speaker", True)
            title = _text_field(record, "title", True)
            position = _text_field(record, "position", False)
            href = _text_field(record, "href", False)
            content = record.get("content")
            if content is None or (isinstance(content, str) and not content.strip()):
                continue
            if not isinstance(content, str):
                raise FileRowError(f"content: expected a string, got {type(content).__name__}")
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        speech = Speech(speaker=speaker, institution=institution, date=day.isoformat(),
                        title=title, url=redact_url(href.strip()) if href.strip() else "",
                        text=content, content_hash=content_hash(content), source=SOURCE,
                        position=position,
                        provenance={"file": rel, "raw_date": record["date"]})
        parsed.append((day, speech))
    parsed.reverse()                          # the files are newest first
    parsed.sort(key=lambda item: item[0])     # stable: ties keep the reversed file order
    for day, speech in parsed:
        yield new_speech(speech, utc_text(end_of_day_new_york(day)))


def _archive(kind: str, site: str, pattern: str, description: str) -> HistoryParser:
    """The archive of one institution, named as the live source names it (by its web site)."""
    institution = INSTITUTIONS[site]

    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _speech_events(path, rel, display, institution=institution, today=today)
    return HistoryParser(kind, "", SOURCE, (pattern,), parse, description)


BOARD = _archive("speeches-board", "federalreserve.gov", "bog_speeches_*.json",
                 "Board of Governors speeches with full text (federalreserve.gov)")
NEW_YORK = _archive("speeches-new-york", "newyorkfed.org", "newyork_speeches_*.json",
                    "New York Fed speeches with full text (newyorkfed.org)")
