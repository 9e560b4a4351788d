"""Alerting: from alert transitions to what each receiver is owed, and why -- Alertmanager's split,
as pure decisions over the event log.

Owns: ``dispatch`` (routes: which receivers, grouped how), ``grouping`` (a group's state and its
timers: group_wait, group_interval, repeat_interval), ``inhibit`` (firing alerts that suppress
others), ``mutes`` (time intervals), ``silences`` (operators' silences, stored as events),
``suppression`` (which of those wins), ``outbox`` (the notification log: what is owed, sent,
failed, retried; catch-up after downtime), ``decisions`` (``audit``: every recorded decision
re-derived), ``dryrun`` (the outbox on replay time: ``replay --notify-dry-run``).

May import: watchdog.rules, watchdog.market, watchdog.model. Never watchdog.engine. Pure: no
I/O, no clock, no asyncio; every decision takes ``now`` and says why.

To change grouping or its timers: ``grouping``. To change route matching: ``dispatch``. To add a
suppression: its module here and its place in ``suppression``. To change retries and backoff:
``outbox``.
"""
