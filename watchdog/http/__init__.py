"""The HTTP edge: ``/healthz``, ``/readyz``, ``/metrics``, the alert API and the status page.

Owns: ``server`` (aiohttp handlers over a ``LogView`` folded from the log; readiness that tells
the truth: stale feeds, failing sources and receivers, an unwritable log, the deadman),
``page`` (the status page's HTML and sparklines, pure: it takes values, returns text).

May import: watchdog.engine, watchdog.alerting, watchdog.rules, watchdog.market, watchdog.model.
Not the other edges (sources, notify, store): it reads the daemon it is given.

To change what readiness checks: ``server`` (``_source_reasons`` and its siblings). To change the
page: ``page``.
"""
