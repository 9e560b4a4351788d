"""Tuning: replaying history with rules, to test and calibrate them before they go live.

Owns: ``replay`` (the log in publication order through the engine; ``audit`` of alert
transitions), ``ruletest`` (promtool-style rule unit tests), ``backtest`` (scores against
labelled episodes: caught, lead time, false alarms), ``episodes`` (the labelled episode files),
``sweep`` (many variants of a rule in one pass), ``rulediff`` (``replay --diff``), ``report``
(the HTML replay report, charted through the engine's own joined data).

May import: watchdog.store (to read the log), watchdog.engine, watchdog.alerting and everything
below. Never watchdog.daemon or watchdog.cli. backtest, episodes, sweep, rulediff and report stay
pure (an import contract says so).

To add a backtest metric: ``backtest``. To change the report: ``report``. To change what
``replay --diff`` calls a move: ``rulediff``.
"""
