"""The model: what every other room speaks. Events (the wire: one frozen payload model per event
type, canonical JSON, the hash chain), exact numbers, time formats, the error tree, redaction,
secrets, the daemon config, and TOML positions for ``FILE:LINE`` messages.

Owns: ``events`` (wire names and payload models: ``PAYLOADS``, ``decode``, ``typed_event``),
``numbers`` (Decimal text), ``timefmt`` (UTC text, New York instants, ``Duration``), ``errors``
(the ``WatchdogError`` tree), ``redact`` and ``secrets``, ``config`` (``[store]``, ``[sources.*]``,
``[receivers.*]``, routes, inhibition, mutes, ``[daemon]``), ``tomlpos`` (reading TOML once, for
every loader, with line numbers), ``patterns`` (RE2 label patterns).

May import: the standard library, pydantic, orjson, google-re2. Nothing else of watchdog: every
other room imports this one. Pure: no I/O but reading a named file (``tomlpos.read_text``,
``secrets``), no clock, no asyncio.

To add an event type: its wire name and payload model in ``events`` (and in ``PAYLOADS``), then
the fold that reads it. To add a config key: its model in ``config`` (``extra="forbid"`` makes
a typo a ``FILE:LINE`` error). To change how a number or an instant is written: ``numbers`` or
``timefmt``.
"""
