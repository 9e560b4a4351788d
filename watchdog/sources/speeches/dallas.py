"""Dallas Fed speeches (source ``speeches-dallas``): a speaker's speech index page (default
President Lorie K. Logan's, ``https://www.dallasfed.org/news/speeches/logan``) and the speeches
it links. ``parse_index`` is pure (bytes in, never raises).

Index page (no real copy was found, so this follows what independent scrapers document): one
tab per year (``div.dal-tab__pane`` with the year as its id), a paragraph per speech holding a
link to ``/news/speeches/<speaker>/<yyyy>/<slug>`` (``lkl250225``: the speaker's initials and the
date) and its date in words ("February 25, 2025"). Only links below the index page's own folder
are speeches of its speaker; navigation to other speakers' pages is not. A date is taken from the
link's own paragraph or list item, never from a neighbour's.

Speech pages (a real page fragment is in tests/fixtures/reserve_banks): inside
``div.dal-main-content``, ``div.dal-crouton`` ("Speech by President Lorie K. Logan"),
``h1.dal-headline`` (the title), ``div.dal-author``, ``p.dal-content-date`` ("February 10, 2026"),
``div.dal-abstract`` (where the remarks were given), then the speech's paragraphs;
``live.read_speech_page`` reads them.
"""
from __future__ import annotations

import re
from datetime import date
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborNode

from watchdog.sources.speeches.banks import Bank, IndexEntry, IndexPage
from watchdog.sources.speeches.live import (INSTITUTIONS, MONTHS, looks_like_speech, one_line,
                                            parse_html, read_date, same_site, without_fragment)

SOURCE = "speeches-dallas"
INSTITUTION = INSTITUTIONS["dallasfed.org"]
_DATE_IN_TEXT = re.compile(r"\b([A-Z][a-z]+)\.?\s+\d{1,2},\s*\d{4}\b")
_BELOW = re.compile(r"/(\d{4})/[^/]+/?$")       # <index folder>/<yyyy>/<slug>


def parse_index(html: bytes, url: str) -> IndexPage:
    """The speeches the speaker's index page at ``url`` links, in page order, once each.
    Never raises; the format has no rows to call bad."""
    tree = parse_html(html, url)
    if tree is None:
        return IndexPage([], [])
    try:
        folder = urlsplit(url).path.rstrip("/")
    except ValueError:
        return IndexPage([], [])
    speaker = folder.rsplit("/", 1)[-1]
    entries: list[IndexEntry] = []
    seen = {without_fragment(url)}
    for anchor in tree.css("a[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        try:
            target = without_fragment(urljoin(url, href))
            path = urlsplit(target).path
            if (target in seen or not same_site(target, url) or not looks_like_speech(target)
                    or not path.startswith(folder + "/")
                    or not _BELOW.fullmatch(path[len(folder):])):
                continue
        except ValueError:      # a malformed host or port: not a link to follow
            continue
        seen.add(target)
        block = _enclosing_block(anchor)
        entries.append(IndexEntry(url=target, title=one_line(anchor.text(deep=True)),
                                  date=_first_date(one_line(block.text(deep=True)))
                                  if block is not None else None,
                                  surname=speaker if speaker.isalpha() else ""))
    return IndexPage(entries, [])


def _enclosing_block(anchor: LexborNode) -> LexborNode | None:
    """The paragraph or list item holding the link, if any (not a whole tab of speeches)."""
    node = anchor.parent
    while node is not None and node.tag not in ("p", "li"):
        if node.tag in ("div", "section", "article", "body", "table", "ul", "ol"):
            return None
        node = node.parent
    return node


def _first_date(text: str) -> date | None:
    for match in _DATE_IN_TEXT.finditer(text):
        if match.group(1).lower() in MONTHS:
            found = read_date(match.group(0))
            if found is not None:
                return found[0]
    return None


DALLAS = Bank(key="dallas", source=SOURCE, institution=INSTITUTION, parse_index=parse_index)
