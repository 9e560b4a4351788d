"""The Slack receiver: an alert as a Block Kit message (``format.py``: headline, colour bar,
value against threshold, sparkline, catch-up note, inputs, quotes, link; pure, golden-file
tested) posted through an incoming webhook or a bot token (``send.py``: ``SlackNotifier``, with
retries, rate limits, resolve-in-place and message-metadata lookups; ``SlackReceiver`` is its
config).

May import: watchdog.model, watchdog.market (series units) and watchdog.notify (the contract and
shared text); ``send.py`` also slack_sdk and aiohttp. Never another receiver, and ``format.py``
no network or async library (import contracts).

To change the message, open format.py; to change how it is sent, open send.py.
"""
