"""The market: facts about the funding markets that no rule states. Business-day calendars (Fed,
SIFMA), calendar terms (month end, turns, tax dates, coupon settlements, GSE cycle), the series
catalogue (units, joins, primary sources, plausibility bands, nominal publication times), when a
value falls due, and FOMC announcements of administered rates.

Owns: ``calendar`` (holidays, business days), ``calterms`` (the calendar terms rules may name:
``TERMS`` and ``NUMBER_TERMS``, defined here once), ``series`` (``SERIES``: the catalogue),
``staleness`` (when a series' value is due), ``announce`` (what an FOMC announcement records).

May import: watchdog.model. Pure: no I/O, no clock (``now`` comes in).

To add a series: a ``SeriesSpec`` in ``series`` (unit, join, calendar, publication time, band),
then the source that fetches it (watchdog.sources). To add a calendar term: ``calterms`` (rules and
expressions pick it up from ``TERMS``). To change a holiday calendar: ``calendar``.
"""
