"""History importer: turn the shipped history files (``data/history``) into fact events.

This module is the file registry and the entry points; each family parses its own files beside
its live source (``nyfed/history.py``, ``fred/history.py``, ``fiscaldata/history.py``,
``speeches/history.py``, ``ofr/history.py``, and ``fomc/history.py`` for the FOMC
implementation-note tables and the QT runoff caps, which have no live source), on what
``sources/files.py`` shares.

Pure-ish: the parsers read files and yield ``NewEvent``s (``observation-recorded`` and
``speech-recorded``); they never touch the store, the network, asyncio or the clock. Appending
them (and deduplicating by key, keeping each series' primary source) is the store's job
(``import_paths``).

Every observation carries:

- ``value``: the file's number parsed **as text** into a ``Decimal`` (never through a float),
  converted exactly to the catalogue unit (``$ millions`` -> ``USD bn``: ``1394122`` ->
  ``"1394.122"``) and normalised with ``numbers.norm`` (``"2.30"``, ``"2.3"`` and ``"2.300"`` are
  all ``"2.3"``);
- ``unit`` from the series catalogue, ``source`` naming where the number came from (``nyfed``,
  ``fomc``, ``fred``, ``fiscaldata``, ``ofr``);
- ``provenance``: ``file`` (the name relative to the history folder, e.g. ``rates/SOFR.csv``, so
  events do not depend on where the folder lives), ``raw_value`` (the text exactly as in the
  file), ``raw_unit`` and a few source-specific fields (URLs, FRED series id, raw percentiles,
  the DTS row a TGA balance was read from, the ``vintage`` of a revised series);
- ``published_at``: the real publication instant. Where the file gives one (FOMC
  implementation-note tables and QT caps: announcement date, time and zone; ALFRED: the vintage
  date) it is that instant; otherwise it is the series' nominal publication time
  (``series.nominal_publication``: SOFR for T at T+1 SIFMA business day 08:00 New York time, EFFR
  T+1 Fed business day 09:00, ON RRP T 13:15, H.4.1 the next Fed business day after the Wednesday
  at 16:30, DTS T+1 Fed business day 16:00, OFR FSI T+2 SIFMA business days 11:00, ...). Current
  vintages of revised series (``fred/history.py``) and speeches (``speeches/history.py``) are the
  two exceptions.

Files shipped but not imported are listed in ``REFERENCE_FILES`` with the reason.

Order (``iter_history_events``): files in the fixed order of ``HISTORY_FILES``. For every series,
its primary source's files come before any fill (NY Fed JSON before FRED's SOFR/EFFR copies, the
FOMC tables before FRED IORB, ALFRED first prints before the current GDP vintage), so the fact
the store keeps for a ``(series, date)`` is the primary's. Files added later are appended, so a
log built from the earlier registry is a prefix of the one built from this one. Within a file,
ascending observation date (a file of two series, the QT caps, gives both for each date).

Malformed input raises ``ImportFailed("FILE:LINE: reason")``; a missing value is skipped; a row
that breaks its series' plausibility contract is refused (``sources/files.py``).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path

from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent
from watchdog.sources.files import HistoryParser
from watchdog.sources.fiscaldata import history as fiscaldata
from watchdog.sources.fomc import history as fomc
from watchdog.sources.fred import history as fred
from watchdog.sources.nyfed import history as nyfed
from watchdog.sources.ofr import history as ofr
from watchdog.sources.speeches import history as speeches

__all__ = [
    "COMPANION_FILES", "HISTORY_FILES", "KINDS", "REFERENCE_FILES", "import_paths", "infer_kind",
    "iter_file_events", "iter_history_events",
]

KINDS: dict[str, HistoryParser] = {p.kind: p for p in (
    nyfed.SOFR, nyfed.TGCR, nyfed.BGCR, fomc.IORB, fomc.ONRRP_RATE, fomc.SRF_RATE,
    fred.SOFR, fred.EFFR, fred.IORB, fred.TARGET_UPPER, fred.TARGET_LOWER, nyfed.SOFR_VOLUME,
    fiscaldata.TGA, fred.RESERVES, fred.FED_ASSETS, fred.TGA_WEEKLY_AVG, fred.GDP_FIRST_RELEASE,
    fred.GDP_CURRENT, fred.M2_CURRENT, fred.ONRRP, speeches.BOARD, speeches.NEW_YORK,
    nyfed.CSV_OBFR, fomc.QT_CAPS, ofr.FSI)}

_SPEECH_YEARS = range(2019, 2025)

# The shipped history, in import order. For each series its primary source comes first (NY Fed
# with percentiles and the FOMC announcement tables before FRED's copies; ALFRED first prints
# before the current GDP vintage); a later file only fills dates the earlier ones lack. Files
# added later are appended, so the log built from the earlier registry stays a prefix.
HISTORY_FILES: dict[str, HistoryParser] = {
    "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json": nyfed.SOFR,
    "nyfed/tgcr_rate_percentiles_2018-04-03_2026-09-04.json": nyfed.TGCR,
    "nyfed/bgcr_rate_percentiles_2018-04-03_2026-09-04.json": nyfed.BGCR,
    "rates/iorb_ioer_changes.csv": fomc.IORB,
    "rates/on_rrp_rate_changes.csv": fomc.ONRRP_RATE,
    "rates/srf_min_bid_rate_changes.csv": fomc.SRF_RATE,
    "rates/SOFR.csv": fred.SOFR,
    "rates/EFFR.csv": fred.EFFR,
    "rates/IORB.csv": fred.IORB,
    "rates/DFEDTARU.csv": fred.TARGET_UPPER,
    "rates/DFEDTARL.csv": fred.TARGET_LOWER,
    "treasury/DTS_OpCashBal_20210624_20260623.csv": fiscaldata.TGA,
    "balance_sheet/WRESBAL.csv": fred.RESERVES,
    "balance_sheet/WALCL.csv": fred.FED_ASSETS,
    "treasury/WTREGEN.csv": fred.TGA_WEEKLY_AVG,
    f"fred/{fred.GDP_FIRST_RELEASE_FILE}": fred.GDP_FIRST_RELEASE,
    "macro/GDP.csv": fred.GDP_CURRENT,
    "macro/M2SL.csv": fred.M2_CURRENT,
    "facilities/RRPONTSYD.csv": fred.ONRRP,
    **{f"speeches/bog_speeches_{year}.json": speeches.BOARD for year in _SPEECH_YEARS},
    **{f"speeches/newyork_speeches_{year}.json": speeches.NEW_YORK for year in _SPEECH_YEARS},
    # Appended, in the order they were added (OBFR CSV, QT caps, OFR FSI): a log built from an
    # earlier registry stays a prefix of the one built from this one.
    "rates/nyfed_reference_rates_2026-01-02_2026-08-03.csv": nyfed.CSV_OBFR,
    "balance_sheet/qt_runoff_caps.csv": fomc.QT_CAPS,
    "ofr/fsi_2000-01-03_2025-09-11.csv": ofr.FSI,
}

# Files that produce no events of their own but are joined into another file's events.
COMPANION_FILES: dict[str, str] = {
    "nyfed/sofr_volume_2018-04-03_2026-09-03.json":
        "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json",
}

# Files shipped in data/history but not imported, and why.
REFERENCE_FILES: dict[str, str] = {
    "speeches/bog_speech_infos.json":
        "metadata only (no text): for 2019-2024 it equals the speech files' speaker, position, "
        "date, title and URL exactly (checked by the tests), and 2006-2018 have no text to record",
}


def _relative_name(path: Path) -> str:
    """The provenance name of a file: its ``HISTORY_FILES``/``COMPANION_FILES`` name when it is
    one of the known files (``rates/SOFR.csv``), else its bare file name. Never an absolute path:
    the same file must give the same events wherever the folder lives."""
    candidate = f"{path.parent.name}/{path.name}"
    if candidate in HISTORY_FILES or candidate in COMPANION_FILES:
        return candidate
    return path.name


def infer_kind(path: Path) -> str:
    """The kind of a history file, from its name (``SOFR.csv`` -> ``fred-sofr``)."""
    name = Path(path).name
    for kind, parser in KINDS.items():
        if any(fnmatchcase(name, pattern) for pattern in parser.patterns):
            return kind
    for rel, reason in REFERENCE_FILES.items():
        if name == Path(rel).name:
            raise ImportFailed(f"{path}: not imported: {reason}")
    raise ImportFailed(f"{path}: unknown history file name; known kinds: {', '.join(KINDS)} "
                       "(pass kind= to choose one)")


def iter_file_events(path: Path, kind: str | None = None, *,
                     today: date | None = None) -> Iterator[NewEvent]:
    """The events of one history file, in ascending observation date.

    ``kind`` is one of ``KINDS`` (inferred from the file name when ``None``). Raises
    ``ImportFailed("FILE:LINE: reason")`` on the first malformed or implausible row (``today``:
    the import's New York date, if given); missing values are skipped.
    """
    path = Path(path)
    if kind is None:
        kind = infer_kind(path)
    parser = KINDS.get(kind)
    if parser is None:
        raise ImportFailed(f"{path}: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    return parser(path, _relative_name(path), today=today)


def iter_history_events(data_dir: Path, *, today: date | None = None) -> Iterator[NewEvent]:
    """The events of every ``HISTORY_FILES`` file present under ``data_dir``, file by file in the
    registry's fixed order (primary sources first), each file in date order. Deterministic: the
    same files give the same events in the same order. Raises ``ImportFailed`` when ``data_dir``
    holds none of the known files (most likely a wrong folder)."""
    data_dir = Path(data_dir)
    present = [(rel, parser) for rel, parser in HISTORY_FILES.items() if (data_dir / rel).is_file()]
    if not present:
        raise ImportFailed(f"{data_dir}: none of the known history files is there "
                           f"(expected e.g. {next(iter(HISTORY_FILES))})")
    for rel, parser in present:
        yield from parser(data_dir / rel, rel, today=today)


def import_paths(store, paths: list[Path], chunk: int = 5000, *,
                 today: date | None = None) -> dict[str, tuple[int, int]]:
    """Append the facts of every path (a history folder or single files) to ``store``.

    Returns ``{name: (facts read, events appended)}``. Idempotent: the store deduplicates, so a
    second import of the same files appends nothing; a changed value becomes a revision.
    ``today`` is the New York date the import runs on: no row may be dated after it (beyond its
    series' ``lead_days``). The CLI passes the wall clock's, not ``--recorded-at``'s.
    """
    counts: dict[str, tuple[int, int]] = {}
    for path in paths:
        events = (iter_history_events(path, today=today) if path.is_dir()
                  else iter_file_events(path, today=today))
        seen = added = 0
        batch: list[NewEvent] = []
        for event in events:
            batch.append(event)
            seen += 1
            if len(batch) >= chunk:
                added += len(store.append(batch))
                batch = []
        added += len(store.append(batch))
        counts[str(path)] = (seen, added)
    return counts
