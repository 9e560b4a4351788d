"""Data sources: each polls a real public API and returns events; none ever raises out of poll.
The shipped history files are read by the same families, into the same facts.

The room, one folder per source family (each family imports only the shared modules below,
``model`` and ``market``, never another family):

- ``nyfed/``, ``fred/``, ``fiscaldata/``, ``speeches/``: a live source (``live.py``; NY Fed:
  ``rates.py`` and ``operations.py``), its history importer (``history.py``) and what the two
  share (``fred/units.py``, ``nyfed/fields.py``); ``__init__.py`` declares ``FAMILY``, how the
  family is built from its config table. ``fomc/``: history only (implementation-note tables).
- ``base.py``: the poll contract, ``Family``, HTTP fetching under a body cap, failure events.
- ``parsing.py``: what live parsers share (exact JSON, row errors, the plausibility vetting).
- ``files.py``: what history importers share (reading a file's text exactly, ``HistoryParser``).
- ``registry.py``: the live families, walked by ``app.build_sources``, listed by ``backfill``.
- ``history.py``: the history file registry and the import entry points.

To add a data source:

1. Make its family folder ``watchdog/sources/<family>/``: ``live.py`` with a pure parser (on
   ``parsing.py``) and a source (``name``, ``poll(session, now)`` that never raises,
   ``backfill(session, since, now)``); ``__init__.py`` saying what the family owns, what it may
   import and where to add a series, and declaring ``FAMILY = Family(table, source names,
   build)``.
2. Add its config table (``max_body`` included) to ``SourcesConfig`` in
   ``watchdog/model/config.py``.
3. List its ``FAMILY`` in ``registry.py``: the daemon builds it, ``backfill --source`` offers it.
4. Declare its series in ``watchdog/market/series.py`` (unit, join, calendar, primary source,
   plausibility band).
5. Add the folder to the contract "Source families are independent" in ``pyproject.toml``.
6. For shipped history: ``history.py`` in the folder (its kinds, on ``files.py``), its files
   appended to ``HISTORY_FILES`` in ``watchdog/sources/history.py`` (appended, so an earlier log
   stays a prefix), and their origin in ``data/history/PROVENANCE.md``.
"""
