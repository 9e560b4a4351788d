"""What the Reserve Bank speech tests serve (tests/test_source_reserve_banks.py and the source
contract): the real speech page samples of tests/fixtures/reserve_banks/, and index pages.

**The index pages are built by hand.** No real copy of either bank's speech index was found
(tests/fixtures/reserve_banks/PROVENANCE.md), so these follow the structure independent scrapers
document -- the New York Fed's table (``td.dirColL`` date, ``td.dirColR a.paraHeader`` "Surname:
Title" link, ``tr.yrHead`` year rows), the Dallas Fed's year tabs (``div.dal-tab__pane`` with a
paragraph per speech: link and date in words). Only the structure is theirs; the rows are
invented, and nothing here may be called a real page.
"""
from __future__ import annotations

from fakes import fixture

NY_PAGE = fixture("reserve_banks/newyorkfed_wil260303_page_sample.html")
DALLAS_PAGE = fixture("reserve_banks/dallasfed_lkl260210_page_sample.html")

NY_INDEX_PATH = "/newsevents/speeches/index"
DALLAS_INDEX_PATH = "/news/speeches/logan"

_NY_ROW = """<tr>
<td class="dirColL"><div>{date}</div></td>
<td class="dirColR"><div class="tablTitle"><a class="paraHeader" href="{href}">{text}</a></div></td>
</tr>
"""
_NY_ROW_WITHOUT_LINK = """<tr>
<td class="dirColL"><div>{date}</div></td>
<td class="dirColR"><div class="tablTitle">{text}</div></td>
</tr>
"""


def ny_index(*rows: tuple[str, str, str], year: str = "2026") -> str:
    """A hand-built New York Fed index: ``rows`` of (date, href, link text); an href of "" is a
    row without a link."""
    body = "".join((_NY_ROW if href else _NY_ROW_WITHOUT_LINK).format(date=day, href=href,
                                                                      text=text)
                   for day, href, text in rows)
    return ("<!DOCTYPE html>\n<html><head><title>Speeches - FEDERAL RESERVE BANK of NEW YORK"
            "</title></head><body>\n<nav><a href=\"/newsevents/speeches/index\">Speeches</a>"
            "<a href=\"/aboutthefed/orgchart/williams\">John C. Williams</a></nav>\n"
            "<table class=\"newsTable\">\n"
            f"<tr class=\"yrHead\"><td colspan=\"2\">{year}</td></tr>\n"
            + body + "</table>\n</body></html>\n")


NY_ROWS = (
    ("Mar 03, 2026", "/newsevents/speeches/2026/wil260303", "Williams: Two Sides of a Coin"),
    ("Feb 19, 2026", "/newsevents/speeches/2026/per260219", "Perli: Money Markets Today"),
    ("Feb 12, 2026", "/newsevents/speeches/2026/log260212", "Logan: A Talk Not Configured"),
)


def ny_site(rows=NY_ROWS) -> dict:
    """The index, and the real Williams sample at every linked speech page."""
    return {NY_INDEX_PATH: ny_index(*rows), **{href: NY_PAGE for _, href, _ in rows if href}}


def dallas_index(*items: tuple[str, str, str]) -> str:
    """A hand-built Dallas Fed speaker index: ``items`` of (year, href, date) in one tab per
    year, with the links to other speakers' pages a real page has around them."""
    tabs: dict[str, list[str]] = {}
    for year, href, day in items:
        tabs.setdefault(year, []).append(
            f"<p><a href=\"{href}\">A speech of {day}</a><br>Remarks &middot; {day}</p>")
    panes = "".join(f"<div class=\"tab-pane dal-tab__pane\" id=\"{year}\">{''.join(ps)}</div>\n"
                    for year, ps in tabs.items())
    return ("<!DOCTYPE html>\n<html><head><title>Speeches by Lorie K. Logan - Dallasfed.org"
            "</title></head><body>\n<ul class=\"dal-nav\"><li><a href=\"/news/speeches\">"
            "Speeches</a></li><li><a href=\"/news/speeches/speeches-leaders\">Speeches by other "
            "leaders</a></li><li><a href=\"/news/speeches/logan\">Logan</a></li></ul>\n"
            "<div id=\"dal-tabs\">\n" + panes + "</div>\n</body></html>\n")


DALLAS_ITEMS = (
    ("2026", "/news/speeches/logan/2026/lkl260210", "February 10, 2026"),
    ("2025", "/news/speeches/logan/2025/lkl251031", "October 31, 2025"),
)


def dallas_site(items=DALLAS_ITEMS) -> dict:
    """The index, and the real Logan sample at every linked speech page."""
    return {DALLAS_INDEX_PATH: dallas_index(*items), **{href: DALLAS_PAGE for _, href, _ in items}}
