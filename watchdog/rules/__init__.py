"""The rule language: what a user writes in TOML and what it means, validated strictly at load.

Owns: ``ruleset`` (the five rule kinds -- threshold, keyword, composite, revision, staleness --
as frozen models, the ``RuleSet``, loading a folder with ``FILE:LINE: rule X: field Y`` errors,
canonical text and hashes, summaries), ``expr`` (the expression language: exact decimals, a
whitelist, windows, calendar terms; it owns its own analysis: names read, terms used, the series
read at the date on every path), ``keywords`` (phrase, proximity and negation matching over
speeches), ``templates`` (the bounded summary language), ``schema`` (the JSON Schema for editors).

May import: watchdog.market, watchdog.model. Pure: no I/O but reading rule files, no clock.

To add a rule kind: its model in ``ruleset`` (and ``_KINDS``/``_TABLES``), then its state
machine in watchdog.engine. To add a window function: its reducer and one row of ``WINDOWS`` in
``expr``. To add a function: ``FUNCTIONS`` and its body in ``expr``. To change what keyword rules
match: ``keywords``.
"""
