"""Reserve Bank speech sources: one source per bank (``nyfed.py``, ``dallas.py``), each polling
the bank's speech index pages and recording the speeches they link, the way ``live.py`` records
the pages of ``[sources.speeches] pages`` -- the same fetching, page reading (``read_speech_page``
knows each bank's layout), dating, text checks and failure events -- with three differences:

- the index is read with the bank's own parser (``Bank.parse_index``): its rows give each speech's
  date and speaker as the index states them, and a row the parser cannot read is named in a
  ``source-failed`` while the good rows are recorded;
- only speeches by the bank's configured speakers are kept (``[sources.speeches] <bank>_speakers``,
  matched as keyword rules match ``speakers``): rows whose index says another speaker are not
  fetched, and a page whose own speaker line names another speaker is skipped; a page with no
  speaker line is a failure (a layout change), never a speech of nobody;
- a page recorded (or skipped) by an earlier poll of this process is not fetched again: the log
  keeps the first text of a speech anyway, so a second fetch could change nothing.

Every event names the bank's source (``speeches-new-york``, ``speeches-dallas``): the recorded
speeches' ``source``, and the failures'. The speech's ``institution`` is the bank.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import aiohttp

from watchdog.model.config import SpeechesConfig
from watchdog.model.events import SOURCE_FAILED, NewEvent
from watchdog.model.speakers import name_tokens, speaker_matches
from watchdog.sources.speeches.live import PAGE_FETCHES, SpeechesSource, SpeechPage

# How far from the end of an index page its closing tag may be (scripts and comments follow it
# on some sites): a page without one within this many bytes was cut short.
_END_WINDOW = 65536


@dataclass(frozen=True)
class IndexEntry:
    """One speech an index page links: its page, the title the link gives, and what the index
    (or the page's address) says of its date and speaker, when it says anything."""
    url: str
    title: str = ""
    date: date | None = None      # the date the index states; used when the page states none
    surname: str = ""             # the speaker's surname ("Williams: Title"; a speaker's folder)
    code: str = ""                # the speaker's letters in the address ("wil" of wil260303)


@dataclass
class IndexPage:
    """What a bank's index parser read: the speeches, in page order, once each, and one reason
    per row it could not read."""
    entries: list[IndexEntry]
    bad_rows: list[str]


@dataclass(frozen=True)
class Bank:
    """A Reserve Bank whose speeches a source records. ``key`` names its settings in
    ``[sources.speeches]`` (``<key> = true``, ``<key>_pages``, ``<key>_speakers``); ``source`` is
    the source's name; ``parse_index(body, url)`` reads one of its index pages (never raises)."""
    key: str
    source: str
    institution: str
    parse_index: Callable[[bytes, str], IndexPage]


def index_body_problem(body: bytes) -> str | None:
    """Why an index page's body cannot be trusted whole, or None. A page cut short would list
    only its newest speeches and look like a quiet day."""
    if not body.strip():
        return "empty body where an index page was expected"
    if b"</html>" not in body[-_END_WINDOW:].lower():
        return "the page ends before its closing </html> tag (cut short)"
    return None


class ReserveBankSource(SpeechesSource):
    """Polls one bank's index pages; never raises out of ``poll``."""

    def __init__(self, bank: Bank, config: SpeechesConfig,
                 clock_now: Callable[[], datetime] | None = None):
        super().__init__(config, clock_now)
        self.bank = bank
        self.name = bank.source
        self.speech_source = bank.source
        self._pages: list[str] = list(getattr(config, f"{bank.key}_pages"))
        speakers = (name_tokens(entry) for entry in getattr(config, f"{bank.key}_speakers"))
        self._speakers = tuple(tokens for tokens in speakers if tokens)
        self._surnames = frozenset(tokens[-1] for tokens in self._speakers)
        self._done: set[str] = set()    # pages an earlier poll recorded or skipped

    async def _run(self, session: aiohttp.ClientSession, now: datetime,
                   since: date | None) -> list[NewEvent]:
        limit = asyncio.Semaphore(PAGE_FETCHES)
        results = await asyncio.gather(*(
            self._guard(self._poll_bank_index(session, url, now, since, limit), url, now)
            for url in self._pages))
        return [event for events in results for event in events]

    async def _poll_bank_index(self, session: aiohttp.ClientSession, page_url: str,
                               now: datetime, since: date | None,
                               limit: asyncio.Semaphore) -> list[NewEvent]:
        got = await self._get(session, page_url)
        if got.error is not None:
            return [self._fail(f"index page: {got.error}", now, url=got.url)]
        problem = index_body_problem(got.body)
        if problem:
            return [self._fail(f"index page: bad response body: {problem}", now, url=got.url)]
        parsed = self.bank.parse_index(got.body, page_url)
        if not parsed.entries and not parsed.bad_rows:
            # A layout change would otherwise look exactly like "no new speeches".
            return [self._fail("index page: no speech links found", now, url=got.url)]
        chosen = self._choose([entry for entry in parsed.entries if self._may_be_ours(entry)],
                              since)
        events: list[NewEvent] = []
        for entry, found in zip(chosen, await asyncio.gather(*(
                self._record_page(session, entry.url, entry.title, now, since, limit, got.url,
                                  stated=entry.date)
                for entry in chosen))):
            events += found
            if not any(event.type == SOURCE_FAILED for event in found):
                self._done.add(entry.url)
        if parsed.bad_rows:
            events.append(self._fail(
                f"index page: {len(parsed.bad_rows)} row(s) not read; "
                f"{len(parsed.entries)} speech link(s) read", now, url=got.url,
                bad_rows=parsed.bad_rows, recorded_rows=len(parsed.entries)))
        return events

    def _choose(self, entries: list[IndexEntry], since: date | None) -> list[IndexEntry]:
        """A backfill: every entry not dated before ``since`` (an undated one is dated by its
        page). A poll: the newest ``max_items``, less those an earlier poll settled."""
        if since is not None:
            return [entry for entry in entries if entry.date is None or entry.date >= since]
        # Newest first; entries the index does not date keep their page order, after the rest.
        newest = sorted(entries, key=lambda entry: entry.date or date.min, reverse=True)
        return [entry for entry in newest[:self.config.max_items] if entry.url not in self._done]

    def _may_be_ours(self, entry: IndexEntry) -> bool:
        """Whether the index row may be a configured speaker's: what the index says of the
        speaker (its surname, or the letters of the page's address) must fit one of them; a row
        that says nothing is fetched, and its page decides."""
        if not self._surnames or not (entry.surname or entry.code):
            return True
        surname = name_tokens(entry.surname)[-1:]
        if surname and surname[0] in self._surnames:
            return True
        code = entry.code.lower()
        return bool(code) and any(name.startswith(code) for name in self._surnames)

    def _vet(self, page: SpeechPage) -> str | None:
        if not page.speaker:
            return "no speaker line found on the page (a layout change?); not recorded"
        if self._speakers and not speaker_matches(page.speaker, self._speakers):
            return ""                   # another speaker of the bank's: not this source's
        return None

    def _institution(self, url: str) -> str:
        return self.bank.institution
