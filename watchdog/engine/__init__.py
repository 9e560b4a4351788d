"""The engine: the pure fold from facts to alert transitions, the same live, in audit and in replay.

Owns: ``fold`` (``Engine``: events in, transitions out; rule sets switched with warm-up; facts
dated ahead held back; deadlines ticked), ``data`` (the joined data: ``SeriesData`` and
``JoinedContext``, also read by the report and the sweep), ``state`` (a threshold rule's state),
and one module per rule kind's state machine: ``threshold``, ``staleness``, ``keyword``,
``revision``, ``composite``.

May import: watchdog.rules, watchdog.market, watchdog.model. Never watchdog.alerting (what to
tell whom is decided from the transitions, not inside the fold). Pure: no I/O, no clock, no
asyncio; time comes in as ``now``.

To change when a threshold rule fires: ``threshold``. To add a rule kind: a mixin module here,
added to ``Engine``'s bases and dispatch in ``fold``. To change what a rule reads on a date (the
join): ``data``.
"""
