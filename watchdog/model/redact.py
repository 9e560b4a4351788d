"""Secrets never reach the log: URLs are redacted *before* hashing (nothing can be scrubbed from
a hash-chained log later). A Slack webhook URL is a secret as a whole."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = {"api_key", "apikey", "key", "token", "access_token", "$$app_token", "password",
                 "secret", "signature", "sig"}
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """Drop credentials and secret query parameters; hide Slack webhook paths entirely."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if parts.hostname and parts.hostname.endswith("hooks.slack.com"):
        return f"{parts.scheme}://{parts.hostname}/{REDACTED}"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = [(k, REDACTED if k.lower() in SECRET_PARAMS else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=":,/()"), ""))


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every known secret value in free text (error messages, exception strings)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return re.sub(r"(api_key=)[^&\s]+", r"\1" + REDACTED, text)
