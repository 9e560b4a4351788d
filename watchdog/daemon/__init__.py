"""The daemon: the long-running process that polls, records, evaluates and delivers.

Owns: ``loop`` (``Daemon``: cycles, catch-up, the engine and outbox kept folded, reloads, the
deadman, clock steps), ``lifecycle`` (the event loop, stop signals and the modes of ``watchdog
run``), ``delivery`` (sends what the outbox owes, each receiver in its own lane, deadlines),
``schedule`` (when each source next has something: publication calendars), ``metrics``
(Prometheus), ``logs`` (JSON/text logs with secrets scrubbed), ``sdnotify`` (systemd readiness
and watchdog pings).

May import: the edges (watchdog.sources, .notify, .store, .http) and everything below them. Never
watchdog.tuning or watchdog.cli. ``schedule`` stays pure (an import contract says so).

To change when sources are polled: ``schedule``. To change how a cycle runs or what it records:
``loop``. To change sending, lanes or send deadlines: ``delivery``. To add a metric: ``metrics``.
"""
