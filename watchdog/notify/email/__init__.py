"""The email receiver: an alert as a ``multipart/alternative`` email (``format.py``: subject,
plain-text and HTML bodies, headers with a Message-ID derived from the delivery key; pure,
golden-file tested) handed to an SMTP server (``send.py``: ``EmailNotifier``, with STARTTLS or
implicit TLS, AUTH from a secret, and failures classified; ``EmailReceiver`` is its config).

May import: watchdog.model and watchdog.notify (the contract and shared text); ``send.py`` also
aiosmtplib and asyncio. Never another receiver, and ``format.py`` no network or async library
(import contracts).

To change the message, open format.py; to change how it is sent, open send.py.
"""
