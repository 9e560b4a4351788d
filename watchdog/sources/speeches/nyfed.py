"""New York Fed speeches (source ``speeches-new-york``): the bank's speech index, and the speeches
of the configured speakers (``new_york_speakers``, default President John C. Williams and SOMA
manager Roberto Perli) read from their pages. ``parse_index`` is pure (bytes in, never raises).

Index page (``https://www.newyorkfed.org/newsevents/speeches/index``; no real copy was found, so
this follows what independent scrapers document): one table of every speech by every NY Fed
speaker, newest first, a row per speech -- ``td.dirColL`` holds the date ("Jul 15, 2026"),
``td.dirColR`` a link (``a.paraHeader``) reading "Surname: Title" to
``/newsevents/speeches/<yyyy>/<3 letters of the speaker><yymmdd>`` ("wil260715", "per251112");
year rows (``tr.yrHead``) separate the years. A row dated but without a link is named as a bad
row. If the table is gone, every link shaped like a speech page's address is read instead.

Speech pages (a real page fragment is in tests/fixtures/reserve_banks): ``h1.ts-article-title``,
then two ``div.ts-contact-info`` lines -- the date ("March 03, 2026"), then the speaker ("John C.
Williams, President and Chief Executive Officer") -- and the text in ``div.ts-article-text``;
``live.read_speech_page`` reads them.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborNode

from watchdog.sources.speeches.banks import Bank, IndexEntry, IndexPage
from watchdog.sources.speeches.live import (INSTITUTIONS, MAX_NAME_WORDS, looks_like_speech,
                                            one_line, parse_html, read_date, same_site,
                                            without_fragment)

SOURCE = "speeches-new-york"
INSTITUTION = INSTITUTIONS["newyorkfed.org"]
# A speech page's address: /newsevents/speeches/2026/wil260715 (the speaker's letters, the date).
_SPEECH_PATH = re.compile(r"/newsevents/speeches/\d{4}/([a-z]+)\d{6}[a-z]?(?:\.html?)?/?$",
                          re.IGNORECASE)


def parse_index(html: bytes, url: str) -> IndexPage:
    """The speeches the index page at ``url`` lists, in page order, once each, and its
    unreadable rows. Never raises."""
    tree = parse_html(html, url)
    if tree is None:
        return IndexPage([], [])
    entries: list[IndexEntry] = []
    bad: list[str] = []
    seen = {without_fragment(url)}
    rows = [row for row in tree.css("tr")
            if row.css_first("td.dirColL, td.dirColR") is not None
            and "yrHead" not in (row.attributes.get("class") or "").split()]
    for number, row in enumerate(rows, start=1):
        cell = row.css_first("td.dirColL")
        stated = one_line(cell.text(deep=True)) if cell is not None else ""
        anchor = row.css_first("td.dirColR a[href]")
        if anchor is None:
            if read_date(stated) is not None:      # a dated row: a speech with no page
                bad.append(f"row {number} ({stated}): no link to a speech page")
            continue
        entry = _entry(anchor, url, stated, seen)
        if entry is not None:
            entries.append(entry)
    if not rows:
        # Not the documented table: every link shaped like a speech page's address.
        for anchor in tree.css("a[href]"):
            entry = _entry(anchor, url, "", seen, need_slug=True)
            if entry is not None:
                entries.append(entry)
    return IndexPage(entries, bad)


def _entry(anchor: LexborNode, index_url: str, stated: str, seen: set[str], *,
           need_slug: bool = False) -> IndexEntry | None:
    """The speech ``anchor`` links to; None for a link to anything else (another site, a PDF,
    a video) or to a page already listed."""
    href = (anchor.attributes.get("href") or "").strip()
    try:
        target = without_fragment(urljoin(index_url, href))
        if target in seen or not same_site(target, index_url) or not looks_like_speech(target):
            return None
        slug = _SPEECH_PATH.search(urlsplit(target).path)
    except ValueError:          # a malformed host or port: not a link to follow
        return None
    if need_slug and slug is None:
        return None
    seen.add(target)
    surname, title = _split_link_text(one_line(anchor.text(deep=True)))
    found = read_date(stated) if stated else None
    return IndexEntry(url=target, title=title, date=found[0] if found else None,
                      surname=surname, code=slug.group(1).lower() if slug else "")


def _split_link_text(text: str) -> tuple[str, str]:
    """("Williams", "Stability of Thy Times") from "Williams: Stability of Thy Times"; a prefix
    of more than a name's few words is part of the title ("Opening Remarks at the ...: ...")."""
    head, colon, rest = text.partition(":")
    if colon and rest.strip() and 0 < len(head.split()) <= MAX_NAME_WORDS:
        return head.strip(), rest.strip()
    return "", text


NEW_YORK = Bank(key="new_york", source=SOURCE, institution=INSTITUTION, parse_index=parse_index)
