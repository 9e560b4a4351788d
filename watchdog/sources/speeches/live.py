"""Federal Reserve speeches: the Board's RSS feed (RSS 2.0 today, RSS 1.0/RDF in archives) and
index pages of Reserve Bank speeches, each speech recorded once with its full text.

The parsers are pure (bytes in, items or text out, never raising): ``parse_feed``,
``parse_speech_page`` / ``read_speech_page`` (the Board's layouts, and the New York and Dallas
Fed's: ``nyfed.py``, ``dallas.py``) and ``parse_index_page``. A speech is recorded under the
speaker's name, the job title apart (``model.speakers.normalise_speaker``; the line as written
stays in the provenance when it said more).

``SpeechesSource`` is the edge: it fetches the feeds and index pages, then every speech page
(concurrently, bounded), and turns every failure into a ``source-failed`` event naming the URL.
The Reserve Banks' own sources (``banks.py``) are this edge with their banks' index parsers.

Feed bytes are parsed by feedparser from a stream: its own fetcher blocks the event loop, and
given raw bytes it first tries ``open(bytes)`` as a *file name* — a body such as ``/etc/passwd``
would make it read a local file.
"""
from __future__ import annotations

import asyncio
import html as html_lib
import io
import logging
import re
import xml.sax
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import feedparser
from selectolax.lexbor import LexborHTMLParser, LexborNode

from watchdog.model.config import SpeechesConfig
from watchdog.model.events import SOURCE_FAILED, NewEvent, PayloadTooLarge, Speech, content_hash, new_speech
from watchdog.model.redact import redact_url
from watchdog.model.speakers import normalise_speaker
from watchdog.sources.base import BodyLimit, cap_published, cut, failure_event, fetch
from watchdog.model.timefmt import NEW_YORK, end_of_day_new_york

log = logging.getLogger(__name__)

SOURCE = "speeches"             # the poller: config table, failure events, `backfill --source`
SPEECH_SOURCE = "fed-speeches"  # the ``source`` of every speech the Board feeds and `pages` record
PAGE_FETCHES = 4                # speech pages fetched at once per poll: polite to the Fed's servers
MIN_TEXT_CHARS = 200            # shorter "speech" text is a shell page or an unknown layout
# Longer text is no speech: a layout change or a hostile page. Refused, never cut: the recorded
# text (and its content_hash) is what keyword rules read, so it is the whole speech or nothing.
# The longest speech of the shipped history is about 53 kB; this is ten times that, and keeps a
# speech-recorded event below the 1 MB payload limit with its metadata.
MAX_TEXT_BYTES = 500_000
MAX_URL_CHARS = 2000            # a longer link is no speech page's address
MAX_META_CHARS = 1000           # title, speaker, position: a longer one is no such thing
MAX_DESCRIPTION_CHARS = 4000    # a feed item's description, kept as provenance, is cut here
MAX_NAME_WORDS = 4              # "Surname, Topic": longer text before the comma is no name

INSTITUTIONS = {"federalreserve.gov": "Board of Governors", "newyorkfed.org": "New York Fed",
                "dallasfed.org": "Dallas Fed"}
CB_NAMESPACE = "cbwiki.net/wiki/index.php/Specification"   # the RDF feeds' central-bank vocabulary

MONTHS = {name: number for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec")), start=1) for name in names}
_WRITTEN_DATE = re.compile(r"(?:[A-Za-z]+,\s*)?([A-Za-z]+)\.?\s+(\d{1,2}),\s*(\d{4})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ROOT_TAG = re.compile(rb"<([A-Za-z_][\w:.-]*)")   # first element; <?xml and <!DOCTYPE don't match
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)


class ItemError(ValueError):
    """One feed item is unusable; the message says which field and why."""


@dataclass(frozen=True)
class FeedItem:
    """One speech announced by a feed. ``published`` is the feed's own timestamp (UTC);
    ``date`` is that instant's New York date."""
    url: str
    title: str
    speaker: str
    date: date
    published: datetime
    institution: str
    position: str = ""
    description: str = ""
    published_text: str = ""


@dataclass(frozen=True)
class SpeechPage:
    """What a speech page yields: its text, and the metadata needed when no feed gave any.
    ``date`` is None unless the page states one that parses unambiguously."""
    text: str
    date: date | None = None
    published: datetime | None = None
    title: str = ""
    speaker: str = ""
    position: str = ""


@dataclass
class _FeedParse:
    items: list[FeedItem]
    bad_items: list[str]
    body_error: str | None = None


# ---- feeds ----

def parse_feed(body: bytes, *, source_url: str) -> tuple[list[FeedItem], list[str]]:
    """Items of an RSS 2.0, RSS 1.0/RDF (or Atom) feed, de-duplicated on the link, in feed
    order, and one reason per problem (a body that is not a feed, a bad item). Never raises."""
    parsed = _parse_feed(body, source_url=source_url)
    reasons = [parsed.body_error] if parsed.body_error else []
    return parsed.items, reasons + parsed.bad_items


def _parse_feed(body: bytes, *, source_url: str) -> _FeedParse:
    if not body.strip():
        return _FeedParse([], [], "empty body where a feed was expected")
    try:
        parsed = feedparser.parse(io.BytesIO(body))
    except Exception as exc:  # third-party parser on hostile input: a reason, never a crash
        return _FeedParse([], [], f"feed parser error: {type(exc).__name__}: {exc}")
    broken = _xml_error(parsed)
    if not parsed.get("version"):
        return _FeedParse([], [], _truncated(broken) if broken and _cut_off(body)
                          else _not_a_feed(body))
    bad: list[str] = []
    if broken:
        if _cut_off(body):
            # The last item may be cut mid-title or mid-name: trust none of them this time.
            return _FeedParse([], [], _truncated(broken))
        # Complete but not well-formed (e.g. an HTML entity outside CDATA): the lenient parser
        # read it; keep its items and say so.
        bad.append(f"feed is not well-formed XML ({broken}); items read by the lenient parser")
    items = _feed_items(parsed, bad, source_url)
    return _FeedParse(items, bad)


def _feed_items(parsed: Any, bad: list[str], source_url: str) -> list[FeedItem]:
    cb = _cb_prefix(parsed.get("namespaces") or {})
    items: list[FeedItem] = []
    seen: set[str] = set()
    for index, entry in enumerate(parsed.get("entries") or [], start=1):
        try:
            item = _feed_item(entry, cb, source_url)
        except ItemError as exc:
            bad.append(f"item {index} ({_entry_label(entry)}): {exc}")
            continue
        if item.url not in seen:     # the same speech listed twice is one speech
            seen.add(item.url)
            items.append(item)
    return items


def _feed_item(entry: Any, cb: str | None, source_url: str) -> FeedItem:
    url = _entry_url(entry, source_url)
    if len(url) > MAX_URL_CHARS:
        raise ItemError(f"link of {len(url):,} characters (more than {MAX_URL_CHARS:,}): "
                        "no speech page's address")
    title = one_line(entry.get("title") or "")
    if not title:
        raise ItemError("no title")
    if len(title) > MAX_META_CHARS:
        raise ItemError(f"title of {len(title):,} characters (more than {MAX_META_CHARS:,}): "
                        "no speech title")
    raw_date, published = _entry_instant(entry)
    surname, topic = split_title(title)
    person = _cb_person(entry, cb)
    speaker = person["name"] or surname
    if not speaker:
        raise ItemError(f"no speaker: the title {title!r} has no 'Surname, ' prefix "
                        "and the item no cb:person")
    if len(speaker) > MAX_META_CHARS or len(person["position"]) > MAX_META_CHARS:
        raise ItemError(f"speaker or position longer than {MAX_META_CHARS:,} characters")
    return FeedItem(url=url, title=person["title"] or topic or title, speaker=speaker,
                    date=published.astimezone(NEW_YORK).date(), published=published,
                    institution=institution_of(url), position=person["position"],
                    description=cut(_html_text(entry.get("summary") or ""), MAX_DESCRIPTION_CHARS),
                    published_text=cut(raw_date, MAX_META_CHARS))


def split_title(title: str) -> tuple[str, str]:
    """("Surname", "Topic") from a Board feed title "Surname, Topic". Topics contain commas and
    colons themselves, so only the first comma splits. No name before a comma: no speaker."""
    speaker, comma, topic = title.partition(",")
    speaker = speaker.strip()
    # A press-release headline ("Federal Reserve Board announces ..., ...") is not a name.
    if not comma or not speaker or len(speaker.split()) > MAX_NAME_WORDS \
            or any(ch.isdigit() for ch in speaker):
        return "", title.strip()
    return speaker, topic.strip()


def _entry_url(entry: Any, source_url: str) -> str:
    """The item's link (else a URL guid), made absolute against the feed's own URL."""
    url = (entry.get("link") or "").strip()
    if not url:
        guid = (entry.get("id") or "").strip()
        url = guid if guid.startswith(("http://", "https://")) else ""
    try:
        url = urljoin(source_url, url) if url else ""
    except ValueError:
        raise ItemError(f"link is not a URL: {url[:80]!r}") from None
    if not url.startswith(("http://", "https://")):
        raise ItemError("no http(s) link" if not url else f"link is not http(s): {url[:80]!r}")
    return url


def _entry_instant(entry: Any) -> tuple[str, datetime]:
    """The item's own publication instant: RSS 2.0 ``pubDate`` (RFC 822), else RDF
    ``dc:date`` / Atom ``updated`` (ISO 8601). A time without a zone is refused, not guessed."""
    raw = (entry.get("published") or entry.get("updated") or "").strip()
    if not raw:
        raise ItemError("no publication date (pubDate or dc:date)")
    instant = parse_instant(raw)
    if instant is None:
        raise ItemError(f"publication date is not RFC 822 or ISO 8601 with a zone: {raw[:60]!r}")
    return raw, instant


def parse_instant(text: str) -> datetime | None:
    """An aware UTC datetime from RFC 822 ("Thu, 8 Oct 2026 08:30:00 GMT") or ISO 8601 with an
    offset; None when unreadable, zone-less or implausible."""
    text = text.strip()
    moment = None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if moment is None or moment.tzinfo is None or not 1900 <= moment.year <= 9998:
        return None
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _cb_prefix(namespaces: dict) -> str | None:
    """The prefix the feed declares for the central-bank namespace (feedparser flattens its
    elements to ``<prefix>_<name>`` keys), so another prefix in a mirror still works."""
    for prefix, uri in namespaces.items():
        if isinstance(uri, str) and CB_NAMESPACE in uri and prefix:
            return prefix.lower()
    return None


def _cb_person(entry: Any, cb: str | None) -> dict[str, str]:
    """Structured speaker data of an RDF item: full name (as written, else given + surname),
    job title and the speech's own title (which keeps quotes the item title lost)."""
    if cb is None:
        return {"name": "", "position": "", "title": ""}

    def field(name: str) -> str:
        value = entry.get(f"{cb}_{name}")
        return one_line(value) if isinstance(value, str) else ""

    name = field("nameaswritten") or " ".join(
        part for part in (field("givenname"), field("surname")) if part)
    return {"name": name, "position": field("jobtitle"), "title": field("simpletitle")}


def _xml_error(parsed: Any) -> str | None:
    """The well-formedness error, if any. Other feedparser warnings (an encoding override, a
    content type) do not make the feed unreadable and are not reported."""
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    if not isinstance(exc, xml.sax.SAXParseException):
        return None
    return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"


def _cut_off(body: bytes) -> bool:
    """A complete document ends by closing its root element. Any other ending means the body
    was cut (a dropped connection), even right after some inner closing tag."""
    root = _ROOT_TAG.search(_COMMENT.sub(b"", body[:8192]))
    return root is None or not body.rstrip().endswith(b"</" + root.group(1) + b">")


def _truncated(error: str | None) -> str:
    return f"truncated feed ({error}): no item recorded"


def _not_a_feed(body: bytes) -> str:
    head = " ".join(body.lstrip()[:60].decode("utf-8", "replace").split())
    if head.lower().startswith(("<!doctype html", "<html")):
        return f"not an RSS or RDF feed: the body looks like HTML, starting {head!r}"
    return f"not an RSS or RDF feed: the body starts {head!r}"


def _entry_label(entry: Any) -> str:
    for key in ("link", "id", "title"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(value)[:100]
    return "?"


# ---- speech pages ----

# Never speech text: scripts, chrome and forms.
_JUNK = "script, style, noscript, template, nav, footer, header, aside, form, iframe, svg, button"
# The speech's own containers: the current Board layout, the 2016 ("legacy") Board layout, the
# New York Fed's and the Dallas Fed's (nyfed.py, dallas.py). Where one matches several elements,
# the one with the most paragraph text is the speech.
_CONTAINERS = ("div#article", "div#leftText", "div#speech", "div.ts-article-text",
               "div.dal-main-content")
# Speech meta -- the legacy Board layout's speaker, venue, date, title and formats, the current
# layout's date line, the Reserve Banks' title, date and speaker lines and the Dallas Fed's
# one-line abstract ("... delivered these remarks in Austin, Texas"): payload fields or venue,
# not text to search.
_META = ("h1", "h2.speeches", "h3.speechLocation", "h3.speechDate", "h2.speechTitle",
         "#stayconnectedrightSidebar", ".otherFormats", "#pubwebvideo", "#printIcon",
         "#lastUpdate", "p.article__time", "div.ts-contact-info", "div.ts-section-identifier",
         "div.dal-crouton", "div.dal-author", "div.dal-inline-list", "p.dal-content-date",
         "div.dal-abstract")
# Where pages state their date and speaker in words: the Board's date lines, the New York Fed's
# contact lines (the date, then "John C. Williams, President and Chief Executive Officer"), the
# Dallas Fed's date line and its "Speech by President Lorie K. Logan" line.
_DATE_LINES = "h3.speechDate, p.article__time, div.ts-contact-info, p.dal-content-date"
_SPEAKER_LINES = ("h2.speeches", "#article p.speaker", "div.dal-crouton", "div.dal-author",
                  "div.ts-contact-info")
# A ``meta name=author`` with these words names an institution, not the speaker.
_INSTITUTION_WORDS = re.compile(r"\b(?:federal reserve|bank|board of governors|fed)\b",
                                re.IGNORECASE)
# Titles by layout, before the generic ones (a Reserve Bank's og:title carries the bank's name).
_TITLES = ("h1.ts-article-title", "h1.dal-headline")
_BLOCKS = ("p, div, li, ul, ol, dl, dt, dd, h1, h2, h3, h4, h5, h6, blockquote, pre, table, tr, "
           "section, article, figure, figcaption, hr, caption")
_PARA, _LINE = "\ue000", "\ue001"   # private-use marks for breaks; removed from input first


def parse_speech_page(html: bytes, *, url: str) -> str:
    """Clean article text of a speech page: paragraphs separated by a blank line, line breaks
    inside a paragraph kept, no navigation, scripts, footnote markers or back-links; "" when
    the page has no text. Never raises."""
    return read_speech_page(html, url=url).text


def read_speech_page(html: bytes, *, url: str) -> SpeechPage:
    """The page's text and what it states about itself (date, title, speaker). Never raises."""
    tree = parse_html(html, url)
    if tree is None:
        return SpeechPage(text="")
    day, published = page_date(tree)
    speaker, position = _page_speaker(tree)
    title = _page_title(tree)
    return SpeechPage(text=_article_text(tree), date=day, published=published, title=title,
                      speaker=speaker, position=position)


def parse_html(html: bytes, url: str) -> LexborHTMLParser | None:
    text = _decode(html)
    try:
        return LexborHTMLParser(text)
    except Exception:  # a C parser on hostile input: no text rather than a crash
        log.exception("speeches: HTML parser failed on %s", redact_url(url))
        return None


def _decode(html: bytes) -> str:
    """UTF-8 (current pages), else Windows-1252 (old pages): every byte decodes to something."""
    if html.startswith(b"\xef\xbb\xbf"):
        html = html[3:]
    try:
        text = html.decode("utf-8")
    except UnicodeDecodeError:
        text = html.decode("cp1252", "replace")
    return text.replace(_PARA, " ").replace(_LINE, " ").replace("\x00", "")


def _article_text(tree: LexborHTMLParser) -> str:
    _remove(tree.css(_JUNK))
    container = _container(tree)
    if container is None:
        return ""
    _remove(container.css(", ".join(_META)))
    _drop_in_page_links(container)
    _drop_link_only_blocks(container)
    return _block_text(container)


def _remove(nodes: list[LexborNode]) -> None:
    """Innermost first: a node inside one already removed is freed memory (nav in a header)."""
    for node in reversed(nodes):
        node.decompose()


def _container(tree: LexborHTMLParser) -> LexborNode | None:
    """The speech container when the layout is known (even if empty: an empty shell must not
    fall back to whatever paragraphs the page chrome has), else the element holding the most
    paragraph text."""
    for selector in _CONTAINERS:
        nodes = tree.css(selector)
        if len(nodes) == 1:
            return nodes[0]
        if nodes:
            return max(nodes, key=_paragraph_chars)
    sizes: dict[int, list] = {}
    for paragraph in tree.css("p"):
        parent = paragraph.parent
        if parent is None:
            continue
        entry = sizes.setdefault(parent.mem_id, [0, parent])
        entry[0] += len(paragraph.text(deep=True).strip())
    if not sizes:
        return None
    return max(sizes.values(), key=lambda entry: entry[0])[1]


def _paragraph_chars(node: LexborNode) -> int:
    return sum(len(p.text(deep=True).strip()) for p in node.css("p"))


def _drop_in_page_links(container: LexborNode) -> None:
    """Footnote markers (a number linking to "#fnN") would glue digits to words ("ample3"
    defeats word-boundary keyword matching); "Return to text/top" links are navigation."""
    _remove([link for link in container.css('a[href^="#"]')
             if _is_marker_or_back_link(" ".join(link.text(deep=True).split()))])


def _is_marker_or_back_link(text: str) -> bool:
    return not text or text.isdigit() or text.lower().startswith("return to")


def _drop_link_only_blocks(container: LexborNode) -> None:
    """Blocks whose every word is link text ("Watch live", "2016 Speeches") are navigation.
    Innermost first, so no node is touched after an ancestor was removed."""
    for block in reversed(container.css("p, li, div")):
        text = "".join(block.text(deep=True).split())
        if not text:
            continue
        linked = "".join("".join(a.text(deep=True).split()) for a in block.css("a[href]"))
        if len(linked) >= len(text):
            block.decompose()


def _block_text(container: LexborNode) -> str:
    for block in container.css(_BLOCKS):
        block.insert_before(_PARA)
        block.insert_after(_PARA)
    for br in container.css("br"):
        br.insert_after(_LINE)
    for cell in container.css("td, th"):
        cell.insert_after(" ")
    paragraphs = []
    for chunk in container.text(deep=True).split(_PARA):
        lines = (" ".join(line.split()) for line in chunk.split(_LINE))
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


# ---- what a page says about itself (for index pages, where no feed gives metadata) ----

_DATE_META = ("article:published_time", "datepublished", "dc.date", "dc.date.issued",
              "dcterms.date", "dcterms.issued", "date")


def page_date(tree: LexborHTMLParser) -> tuple[date | None, datetime | None]:
    """(date, instant) the page states: publication meta tags first, then the layouts' date
    lines (``_DATE_LINES``), then ``<time datetime>`` only when every such element agrees (a
    sidebar listing other speeches has times too). An instant only when the page gives a time
    with a zone."""
    for text in _meta_dates(tree) + [node.text(deep=True) for node in tree.css(_DATE_LINES)]:
        found = read_date(text)
        if found is not None:
            return found
    times = [read_date(node.attributes.get("datetime") or "")
             for node in tree.css("time[datetime]")]
    stated = sorted({found for found in times if found is not None},
                    key=lambda found: found[1] is None)       # one with an instant first
    if len({day for day, _ in stated}) == 1:
        return stated[0]
    return None, None


def _meta_dates(tree: LexborHTMLParser) -> list[str]:
    candidates = []
    for meta in tree.css("meta"):
        attrs = meta.attributes
        name = (attrs.get("property") or attrs.get("name") or attrs.get("itemprop") or "").lower()
        if name in _DATE_META and attrs.get("content"):
            candidates.append((_DATE_META.index(name), attrs["content"]))
    return [text for _, text in sorted(candidates, key=lambda candidate: candidate[0])]


def read_date(text: str) -> tuple[date, datetime | None] | None:
    found = _read_any_date(" ".join(text.split()))
    # Year 1 or 9999 is a placeholder, and would not even fit the log's time format.
    return found if found is not None and 1900 <= found[0].year <= 9998 else None


def _read_any_date(text: str) -> tuple[date, datetime | None] | None:
    if _ISO_DATE.match(text):
        instant = parse_instant(text) if len(text) > 10 else None
        if instant is not None:
            return instant.astimezone(NEW_YORK).date(), instant
        try:   # a bare date, or a zone-less time: the date the publisher wrote is still theirs
            return date.fromisoformat(text[:10]), None
        except ValueError:
            return None
    match = _WRITTEN_DATE.fullmatch(text)
    month = MONTHS.get(match.group(1).lower()) if match else None
    if match is None or month is None:
        return None
    try:
        return date(int(match.group(3)), month, int(match.group(2))), None
    except ValueError:
        return None


def _page_title(tree: LexborHTMLParser) -> str:
    for selector in _TITLES:
        node = tree.css_first(selector)
        if node is not None and node.text(deep=True).strip():
            return one_line(node.text(deep=True))
    og = tree.css_first('meta[property="og:title"]')
    if og is not None and (og.attributes.get("content") or "").strip():
        return one_line(og.attributes["content"])
    for selector in ("h2.speechTitle", "#article h3.title", "h1", "title"):
        node = tree.css_first(selector)
        text = one_line(node.text(deep=True)) if node is not None else ""
        if text and text.lower() not in ("speech", "speeches"):
            return text
    return ""


def _page_speaker(tree: LexborHTMLParser) -> tuple[str, str]:
    """(name, job title) from the layouts' speaker lines (a line that reads as a date is the
    New York Fed's date line, not a speaker), else ``meta name=author`` when it names a person:
    sites put their own name there too, and a bank's name would pass for a speaker no filter
    knows."""
    for selector in _SPEAKER_LINES:
        for node in tree.css(selector):
            line = one_line(node.text(deep=True))
            if line and read_date(line) is None:
                return split_position(line)
    author = tree.css_first('meta[name="author"]')
    content = one_line(author.attributes.get("content") or "") if author is not None else ""
    if content and not _INSTITUTION_WORDS.search(content):
        return split_position(content)
    return "", ""


def split_position(line: str) -> tuple[str, str]:
    """("Jerome H. Powell", "Governor") from "Governor Jerome H. Powell" (model.speakers)."""
    # A speaker line is a few words; a hostile page's megabyte "line" is cut, not walked.
    speaker = normalise_speaker(one_line(line)[:MAX_META_CHARS + 1])
    return speaker.name, speaker.title


# ---- index pages of Reserve Bank speeches ----

_PAGE_EXTENSIONS = ("", ".htm", ".html", ".aspx", ".asp", ".php", ".cfm", ".shtml")
_LISTING = re.compile(r"\d*(?:index|default|speech|speeches)", re.IGNORECASE)


def parse_index_page(html: bytes, *, url: str) -> list[tuple[str, str]]:
    """(absolute URL, link text) of every speech linked from an index page, in page order,
    once each: same-site links whose path contains "/speech" and ends in a page (not a
    folder, a year, a listing such as "2016speech.htm", or a PDF). Never raises."""
    tree = parse_html(html, url)
    if tree is None:
        return []
    links: list[tuple[str, str]] = []
    seen = {without_fragment(url)}
    for anchor in tree.css("a[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        try:
            target = without_fragment(urljoin(url, href))
            if target in seen or not same_site(target, url) or not looks_like_speech(target):
                continue
        except ValueError:  # a malformed IPv6 host, a port out of range: not a link to follow
            continue
        seen.add(target)
        links.append((target, one_line(anchor.text(deep=True))))
    return links


def looks_like_speech(url: str) -> bool:
    if len(url) > MAX_URL_CHARS:
        return False
    parts = urlsplit(url)
    path = parts.path
    if parts.scheme not in ("http", "https") or "/speech" not in path.lower():
        return False
    last = path.rsplit("/", 1)[-1]
    stem, dot, extension = last.rpartition(".")
    stem, extension = (stem, "." + extension.lower()) if dot else (last, "")
    if not stem or extension not in _PAGE_EXTENSIONS:
        return False
    return not (stem.isdigit() or _LISTING.fullmatch(stem))


def without_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def same_site(url: str, other: str) -> bool:
    """Same host, or the same registrable name (www.newyorkfed.org links to
    resources.newyorkfed.org); an IP address only matches itself, port included. ValueError
    for a port that is no port."""
    a, b = urlsplit(url), urlsplit(other)
    host_a, host_b = (a.hostname or "").lower(), (b.hostname or "").lower()
    port_a, port_b = a.port, b.port
    if not host_a or not host_b:
        return False
    if _is_ip(host_a) or _is_ip(host_b):
        return host_a == host_b and port_a == port_b
    return host_a.split(".")[-2:] == host_b.split(".")[-2:]


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def institution_of(url: str) -> str:
    """Who gave the speech, from the page's host: the Board, a Reserve Bank, else the host."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    for domain, name in INSTITUTIONS.items():
        if host == domain or host.endswith("." + domain):
            return name
    return host


def one_line(text: str) -> str:
    return " ".join(text.split())


def _html_text(fragment: str) -> str:
    """Plain text of an HTML fragment such as a feed description ("T&uuml;rkiye" -> "Türkiye")."""
    if "<" not in fragment and "&" not in fragment:
        return one_line(fragment)
    tree = parse_html(fragment.encode("utf-8"), "feed description")
    text = tree.body.text(deep=True) if tree is not None and tree.body is not None else fragment
    return one_line(html_lib.unescape(text))


# ---- the source ----

class SpeechesSource:
    """Polls the configured feeds and index pages; never raises out of ``poll``.

    ``clock_now`` (optional) stamps the moment a feed or page arrived, which caps published_at;
    without it the poll's ``now`` is used, which is never later than the real fetch. A feed whose
    last poll recorded everything is fetched conditionally (ETag / Last-Modified): a 304 means
    nothing new and no page is fetched.
    """
    name = SOURCE
    speech_source = SPEECH_SOURCE       # the ``source`` of the speeches it records

    def __init__(self, config: SpeechesConfig, clock_now: Callable[[], datetime] | None = None):
        self.config = config
        self._clock_now = clock_now
        self._timeout_s = config.timeout.total_seconds()
        self._limit = BodyLimit.of("speeches", config.max_body)
        self._validators: dict[str, dict[str, str]] = {}

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        return await self._run(session, now, since=None)

    async def backfill(self, session: aiohttp.ClientSession, since: date,
                       now: datetime) -> list[NewEvent]:
        """Every speech the feeds and index pages still list dated on/after ``since`` (no
        ``max_items`` cap, no conditional GET)."""
        return await self._run(session, now, since=since)

    async def _run(self, session: aiohttp.ClientSession, now: datetime,
                   since: date | None) -> list[NewEvent]:
        limit = asyncio.Semaphore(PAGE_FETCHES)
        jobs = [self._guard(self._poll_feed(session, url, now, since, limit), url, now)
                for url in self.config.feeds]
        jobs += [self._guard(self._poll_index(session, url, now, since, limit), url, now)
                 for url in self.config.pages]
        results = await asyncio.gather(*jobs)
        return [event for events in results for event in events]

    async def _guard(self, job, url: str, now: datetime) -> list[NewEvent]:
        try:
            return await job
        except Exception as exc:  # a bug must not stop the daemon: record it and carry on
            log.exception("%s %s: unexpected error", self.name, redact_url(url))
            return [self._fail(f"internal error: {type(exc).__name__}: {exc}", now,
                               url=redact_url(url))]

    def _fail(self, reason: str, now: datetime, **details: Any) -> NewEvent:
        return _failure(reason, now, source=self.name, **details)

    def _fetched_at(self, now: datetime) -> datetime:
        return self._clock_now() if self._clock_now else now

    async def _get(self, session: aiohttp.ClientSession, url: str,
                   headers: dict[str, str] | None = None):
        return await fetch(session, url, timeout_s=self._timeout_s, retries=self.config.retries,
                           headers=headers, limit=self._limit)

    async def _poll_feed(self, session: aiohttp.ClientSession, feed_url: str, now: datetime,
                         since: date | None, limit: asyncio.Semaphore) -> list[NewEvent]:
        validators = self._validators.get(feed_url) if since is None else None
        got = await self._get(session, feed_url, validators)
        if got.error is not None:
            return [self._fail(f"feed: {got.error}", now, url=got.url)]
        if got.status == 304:
            return []                       # unchanged since a poll that recorded everything
        fetched_at = self._fetched_at(now)
        parsed = _parse_feed(got.body, source_url=got.url)
        if parsed.body_error:
            return [self._fail(f"feed: bad response body: {parsed.body_error}", now, url=got.url)]
        chosen = self._choose(parsed.items, since)
        events: list[NewEvent] = []
        for found in await asyncio.gather(*(
                self._record_item(session, item, fetched_at, now, limit, got.url)
                for item in chosen)):
            events += found
        if parsed.bad_items:
            events.append(self._fail(
                f"feed: {len(parsed.bad_items)} problem(s); {len(parsed.items)} item(s) read",
                now, url=got.url, bad_rows=parsed.bad_items, recorded_rows=len(parsed.items)))
        if since is None:
            self._remember(feed_url, got.headers, complete=not _has_failures(events))
        return events

    def _choose(self, items: list[FeedItem], since: date | None) -> list[FeedItem]:
        if since is not None:
            return [item for item in items if item.date >= since]
        newest = sorted(items, key=lambda item: item.published, reverse=True)
        return newest[:self.config.max_items]

    def _remember(self, feed_url: str, headers: dict[str, str], *, complete: bool) -> None:
        """Keep the validators only after a poll that recorded everything: a 304 must never
        hide a speech page that failed last time."""
        lowered = {k.lower(): v for k, v in headers.items()}
        asked = {}
        if complete and lowered.get("etag"):
            asked["If-None-Match"] = lowered["etag"]
        if complete and lowered.get("last-modified"):
            asked["If-Modified-Since"] = lowered["last-modified"]
        if asked:
            self._validators[feed_url] = asked
        else:
            self._validators.pop(feed_url, None)

    async def _record_item(self, session: aiohttp.ClientSession, item: FeedItem,
                           fetched_at: datetime, now: datetime, limit: asyncio.Semaphore,
                           feed_url: str) -> list[NewEvent]:
        async with limit:
            got = await self._get(session, item.url)
        if got.error is not None:
            return [self._fail(f"speech page: {got.error}", now, url=got.url)]
        text = parse_speech_page(got.body, url=item.url)
        problem = _text_problem(text)
        if problem:
            return [self._fail(f"speech page: {problem}", now, url=got.url)]
        provenance = {"feed": feed_url, "published": item.published_text}
        if item.description:
            provenance["description"] = item.description
        speech = _speech(item.speaker, item.institution, item.date, item.title, got.url, text,
                         item.position, provenance, self.speech_source)
        # The feed's own timestamp; live, a fact cannot have been public after we fetched it.
        return _recorded(speech, cap_published(item.published, fetched_at), now, self.name)

    async def _poll_index(self, session: aiohttp.ClientSession, page_url: str, now: datetime,
                          since: date | None, limit: asyncio.Semaphore) -> list[NewEvent]:
        got = await self._get(session, page_url)
        if got.error is not None:
            return [self._fail(f"index page: {got.error}", now, url=got.url)]
        links = parse_index_page(got.body, url=page_url)
        if not links:
            # A layout change would otherwise look exactly like "no new speeches".
            return [self._fail("index page: no speech links found", now, url=got.url)]
        if since is None:
            links = links[:self.config.max_items]   # index pages list the newest first
        events: list[NewEvent] = []
        for found in await asyncio.gather(*(
                self._record_page(session, link, hint, now, since, limit, got.url)
                for link, hint in links)):
            events += found
        return events

    async def _record_page(self, session: aiohttp.ClientSession, url: str, link_text: str,
                           now: datetime, since: date | None, limit: asyncio.Semaphore,
                           index_url: str, stated: date | None = None) -> list[NewEvent]:
        """The speech at ``url``, linked from ``index_url`` as ``link_text``; ``stated``: the
        date the index gives it, used when the page states none."""
        async with limit:
            got = await self._get(session, url)
        if got.error is not None:
            return [self._fail(f"speech page: {got.error}", now, url=got.url)]
        fetched_at = self._fetched_at(now)
        page = read_speech_page(got.body, url=url)
        if page.date is None and stated is not None:
            page = replace(page, date=stated)
        if page.date is None:
            return [self._fail("speech page: no publication date found on the page; not "
                               "recorded (a date is never guessed)", now, url=got.url)]
        if since is not None and page.date < since:
            return []
        problem = _text_problem(page.text)
        if problem:
            return [self._fail(f"speech page: {problem}", now, url=got.url)]
        verdict = self._vet(page)
        if verdict is not None:             # "": not a speech this source keeps
            return [self._fail(f"speech page: {verdict}", now, url=got.url)] if verdict else []
        speech = _speech(page.speaker, self._institution(url), page.date,
                         page.title or link_text, got.url, page.text, page.position,
                         {"index": index_url}, self.speech_source)
        # Without a stated time, the end of the stated New York day: never earlier than the
        # truth, so a replay cannot see the speech before it was public.
        nominal = page.published or end_of_day_new_york(page.date)
        return _recorded(speech, cap_published(nominal, fetched_at), now, self.name)

    def _vet(self, page: SpeechPage) -> str | None:
        """Whether a dated speech page with text is recorded: None records it, "" skips it
        quietly, any other text is the reason it is a failure (a Reserve Bank source checks
        the speaker here)."""
        return None

    def _institution(self, url: str) -> str:
        return institution_of(url)


def _recorded(speech: Speech, published_at: str, now: datetime,
              source: str = SOURCE) -> list[NewEvent]:
    """The speech's event, or a source-failed when it is over the payload limit (the URL's
    other speeches and the poll go on)."""
    try:
        return [new_speech(speech, published_at)]
    except PayloadTooLarge as exc:
        return [_failure(f"speech page: {exc}", now, source=source, url=speech.url)]


def _speech(speaker: str, institution: str, day: date, title: str, url: str, text: str,
            position: str, provenance: dict[str, str], source: str = SPEECH_SOURCE) -> Speech:
    name, title_of_speaker, provenance = speaker_fields(speaker, position, provenance)
    return Speech(speaker=name, institution=institution, date=day.isoformat(), title=title,
                  url=url, text=text, content_hash=content_hash(text), source=source,
                  position=title_of_speaker, provenance=provenance)


def speaker_fields(line: str, position: str,
                   provenance: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """(name, job title, provenance) of a speech whose speaker line and position read ``line``
    and ``position``: the person's name (model.speakers), and the line as written kept in the
    provenance when it said more than the name ("For Supervision Randal K. Quarles")."""
    speaker = normalise_speaker(line, position)
    if speaker.name != line:
        provenance = {**provenance, "speaker_as_written": line}
    return speaker.name, speaker.title, provenance


def _text_problem(text: str) -> str | None:
    if not text:
        return "no speech text found (an empty shell or an unknown layout)"
    if len(text) < MIN_TEXT_CHARS:
        return (f"only {len(text)} characters of text (fewer than {MIN_TEXT_CHARS}): "
                "an empty shell or an unknown layout, not recorded")
    if len(text) > MAX_TEXT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        return (f"{size:,} bytes of text, more than the {MAX_TEXT_BYTES:,} a speech may have "
                "(about 80,000 words; the longest recorded speech has about 53 kB): a layout "
                "change or not a speech page; not recorded, and not cut (keyword rules read "
                "the whole text)")
    return None


def _has_failures(events: list[NewEvent]) -> bool:
    return any(event.type == SOURCE_FAILED for event in events)


def _failure(reason: str, now: datetime, *, source: str = SOURCE, url: str = "",
             bad_rows: list[str] | None = None, recorded_rows: int = 0) -> NewEvent:
    log.warning("%s: %s (%s)", source, reason, url)
    return failure_event(source, reason, now, url=url, bad_rows=bad_rows,
                         recorded_rows=recorded_rows)
