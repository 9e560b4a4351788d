"""The FOMC family: the implementation-note tables of administered-rate changes (``history.py``:
IORB/IOER, the ON RRP offering rate, the SRF minimum bid rate) and the table of QT runoff caps
(Treasury and MBS), the primary history of those series. History only: no source polls them, so
the family has no ``FAMILY`` to build; live, a rate decision is recorded by ``watchdog announce``
and FRED's IORB fills in (a new QT cap has no live path yet: import an updated table).

May import ``sources.files``, ``model`` and ``market``; never another family (import contract
"Source families are independent").

To add a series from this source, open ``history.py`` (a table kind: its file, series and extra
columns) and add the file to ``watchdog/sources/history.py``; the series itself is declared in
``watchdog/market/series.py``.
"""
