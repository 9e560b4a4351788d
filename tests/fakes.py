"""The fakes every test shares, one of each: a settable ``Clock``, a local web ``Site`` (the
stand-in for any source's server), the fake NY Fed (``FakeFed``: reference rates and FRED from
mutable state, publishing another day on demand) and the fake Slack (``FakeSlack``: the incoming
webhook and the Web API a bot token uses). Every server is a real aiohttp application on
127.0.0.1; each records what it received and can be told to misbehave for the next calls.

Serve one with pytest-aiohttp's fixture: ``site = await Site({...}).serve(aiohttp_server)``
(``site.base`` is then its URL; ``base, requests = await serve(aiohttp_server, {...})`` for
short), ``aiohttp_server(fake.app())``, or mount ``fake.app()`` on a runner of your own
(soak/soak.py).
"""
from __future__ import annotations

import asyncio
import json
import mimetypes
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(path: str) -> bytes:
    """A real payload from tests/fixtures/ (``"nyfed/sofr_search_2024-06-01_2024-06-06.json"``)."""
    return (FIXTURES / path).read_bytes()


# ---- the clock ----

class Clock:
    """A settable clock: ``now()`` (or calling the clock itself, as stores and daemons do) gives
    an aware UTC datetime; ``set`` moves it anywhere (backwards too), ``advance`` by a delta."""
    __slots__ = ("_moment",)        # ``clock.at = ...`` is a mistake, not a new attribute

    def __init__(self, start: datetime):
        self._moment = _utc(start)

    def now(self) -> datetime:
        return self._moment

    __call__ = now

    def set(self, moment: datetime) -> None:
        self._moment = _utc(moment)

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move by ``delta`` or by ``timedelta(**units)`` (``advance(hours=-1)`` steps back)."""
        self._moment += (delta or timedelta()) + timedelta(**units)
        return self._moment

    def __repr__(self) -> str:
        return f"Clock({self._moment.isoformat()})"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"Clock needs an aware datetime, got naive {moment!r}")
    return moment.astimezone(UTC)


# ---- a local web site ----

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# bytes or str: 200 with that body (``{base}`` in a str becomes the site's URL);
# (status, body): that status; a coroutine function: it answers.
Answer = bytes | str | tuple[int, bytes | str] | Handler

MISBEHAVIOURS = ("status", "malformed", "oversized", "slow")


@dataclass
class Trouble:
    """How the next matching request is answered instead of the real answer."""
    how: str                                 # one of MISBEHAVIOURS
    path: str | None = None                  # None: any path
    times: int | None = 1                    # None: until ``behave()``
    status: int = 500
    body: bytes | str | None = None          # status: the error body; malformed: the body
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 0                            # oversized: bytes sent (more than the cap)
    seconds: float | None = None             # slow: how long; None: until ``release()``


class Site:
    """A local site on 127.0.0.1: ``routes`` maps a path to an ``Answer``; any other path is a
    404 (the content type follows the path's suffix, or is ``content_type``). Every request is
    kept in ``requests``. ``misbehave`` changes the next answers:

    - ``"status"``: ``status`` (500) with ``body`` and ``headers`` (a 429 with Retry-After);
    - ``"malformed"``: 200 with ``body``, by default the real answer cut in half (truncated);
    - ``"oversized"``: 200 with the real answer padded with spaces to ``size`` bytes (still a
      valid document, only too large), streamed without a Content-Length;
    - ``"slow"``: 200 at once, then the body trickles (a space every 0.2 s) for ``seconds``,
      or until ``release()``, before the real answer.
    """

    def __init__(self, routes: Mapping[str, Answer] | None = None, *,
                 content_type: str | None = None, headers: Mapping[str, str] | None = None):
        self.routes: dict[str, Answer] = dict(routes or {})
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.requests: list[web.Request] = []
        self.base = ""
        self._trouble: list[Trouble] = []
        self._released = asyncio.Event()

    # -- serving --

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def serve(self, aiohttp_server) -> Site:
        """Start on pytest-aiohttp's ``aiohttp_server`` (no access log: it would print query
        strings, which may hold a test's canary key); ``base`` is then the site's URL."""
        server = await aiohttp_server(self.app(), access_log=None)
        self.base = str(server.make_url("")).rstrip("/")
        return self

    def url(self, path: str = "") -> str:
        return self.base + path

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    # -- misbehaving --

    def misbehave(self, how: str, *, path: str | None = None, times: int | None = 1,
                  **details: Any) -> Site:
        """Answer the next ``times`` requests (of ``path``, or any) ``how``: see the class."""
        if how not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {how!r} (known: {', '.join(MISBEHAVIOURS)})")
        if how == "oversized" and not details.get("size"):
            raise ValueError("oversized needs size= (bytes, more than the cap under test)")
        self._trouble.append(Trouble(how, path, times, **details))
        return self

    def behave(self) -> None:
        """Forget every misbehaviour still queued; answer for real again."""
        self._trouble.clear()

    def release(self) -> None:
        """End every slow answer waiting for it (now and later)."""
        self._released.set()

    def _next_trouble(self, path: str) -> Trouble | None:
        for trouble in self._trouble:
            if trouble.path in (None, path):
                if trouble.times is not None:
                    trouble.times -= 1
                    if trouble.times <= 0:
                        self._trouble.remove(trouble)
                return trouble
        return None

    # -- answering --

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        trouble = self._next_trouble(request.path)
        if trouble is None:
            return await self.answer(request)
        if trouble.how == "status":
            body = trouble.body if trouble.body is not None else "Internal Server Error"
            return web.Response(status=trouble.status, body=_bytes(body, self.base),
                                headers=trouble.headers)
        if trouble.how == "slow":
            return await self._slow(request, trouble)
        real = await self.answer(request)
        body = getattr(real, "body", None)
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"{trouble.how} needs a plain answer for {request.path}")
        if trouble.how == "malformed":
            cut = trouble.body if trouble.body is not None else bytes(body[:len(body) // 2])
            return web.Response(body=_bytes(cut, self.base), content_type=real.content_type)
        return await self._stream(request, real, bytes(body) + b" " * max(0, trouble.size - len(body)))

    async def answer(self, request: web.Request) -> web.StreamResponse:
        """The real answer to ``request`` (subclasses answer from their state)."""
        answer = self.routes.get(request.path)
        if answer is None:
            return web.Response(status=404, text="Not Found")
        if callable(answer):
            return await answer(request)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        response = web.Response(status=status, body=_bytes(body, self.base), headers=self.headers)
        content_type = self.content_type or mimetypes.guess_type(request.path)[0]
        if content_type:
            response.content_type = content_type
        return response

    async def _stream(self, request: web.Request, real: web.StreamResponse,
                      body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(status=real.status)
        response.content_type = real.content_type
        await response.prepare(request)
        for start in range(0, len(body), 64 * 1024):
            try:
                await response.write(body[start:start + 64 * 1024])
            except ConnectionError:      # the client stopped reading at its cap: as it should
                return response
        await response.write_eof()
        return response

    async def _slow(self, request: web.Request, trouble: Trouble) -> web.StreamResponse:
        real = await self.answer(request)
        body = getattr(real, "body", b"") or b""
        response = web.StreamResponse(status=real.status)
        response.content_type = real.content_type
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        until = None if trouble.seconds is None else loop.time() + trouble.seconds
        try:
            while not self._released.is_set() and (until is None or loop.time() < until):
                await response.write(b" ")
                try:
                    await asyncio.wait_for(self._released.wait(), 0.2)
                except TimeoutError:
                    pass
            await response.write(bytes(body))
            await response.write_eof()
        except ConnectionError:          # the client gave up (its timeout): as it should
            pass
        return response


async def serve(aiohttp_server, routes: Mapping[str, Answer],
                **options: Any) -> tuple[str, list[web.Request]]:
    """A new ``Site(routes, **options)`` started on ``aiohttp_server``: (its URL, the requests
    it receives)."""
    site = await Site(routes, **options).serve(aiohttp_server)
    return site.base, site.requests


def _bytes(body: bytes | str, base: str) -> bytes:
    return body.replace("{base}", base).encode("utf-8") if isinstance(body, str) else body


# ---- the NY Fed (and FRED) ----

SOFR_PATH = "/api/rates/secured/sofr/search.json"
FRED_PATH = "/fred/series/observations"
FRED_CSV_PATH = "/graph/fredgraph.csv"
FIRST_DAY = date(2024, 1, 2)


def sofr_rows(sofr: Mapping[str, str]) -> list[dict]:
    """NY Fed SOFR search rows for ``sofr`` (date -> percent), newest first, with every field a
    real row has (percentiles and volume); values are numeric text (``refrates_body`` writes
    them as JSON numbers, as the API does)."""
    return [{"effectiveDate": d, "type": "SOFR", "percentRate": v, "percentPercentile1": v,
             "percentPercentile25": v, "percentPercentile75": v, "percentPercentile99": v,
             "volumeInBillions": "2000", "revisionIndicator": ""}
            for d, v in sorted(sofr.items(), reverse=True)]


def refrates_body(rows: list[dict]) -> bytes:
    """A ``{"refRates": [...]}`` answer as the API writes it: numeric text is a JSON number
    (trailing zeros kept, no quotes)."""
    text = json.dumps({"refRates": rows})
    return re.sub(r'"(-?\d+(?:\.\d+)?(?:E[+-]?\d+)?)"', r"\1", text).encode()


class FakeFed(Site):
    """The NY Fed's SOFR search and FRED's IORB (JSON API and keyless CSV), answered from
    mutable state: ``sofr`` and ``iorb`` map a date to a value. ``publish_days(n)`` publishes
    the next n business days of SOFR (from ``first``), alternating across a 10 bp rule's
    thresholds over IORB 3.90, so every new day is an alert transition. ``bad_row`` adds a
    malformed row to every SOFR answer; ``fred_keys`` keeps the API key of each FRED request.
    Misbehaves like any ``Site`` (500, malformed JSON, oversized, slow); other paths can be
    served from ``routes`` (real fixtures)."""

    def __init__(self, *, sofr: Mapping[str, str] | None = None,
                 iorb: Mapping[str, str] | None = None, first: date = FIRST_DAY,
                 routes: Mapping[str, Answer] | None = None):
        super().__init__(routes)
        self.sofr: dict[str, str] = dict(sofr or {})
        self.iorb: dict[str, str] = dict(iorb or {})
        self.bad_row = False
        self.fred_keys: list[str] = []
        self._next = first

    def publish_days(self, n: int) -> None:
        for _ in range(n):
            while self._next.weekday() >= 5:
                self._next += timedelta(days=1)
            self.sofr[self._next.isoformat()] = "4.25" if len(self.sofr) % 2 else "3.92"
            self._next += timedelta(days=1)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        if request.path == SOFR_PATH:
            return self.rates()
        if request.path == FRED_PATH:
            self.fred_keys.append(request.query.get("api_key", ""))
            return self.fred_json()
        if request.path == FRED_CSV_PATH:
            return self.fred_csv()
        return await super().answer(request)

    def rates(self) -> web.Response:
        rows = sofr_rows(self.sofr)
        if self.bad_row:
            rows.append({"effectiveDate": "2020-13-45", "type": "SOFR", "percentRate": "abc"})
        return web.Response(body=refrates_body(rows), content_type="application/json")

    def fred_json(self) -> web.Response:
        today = datetime.now(UTC).date().isoformat()
        observations = [{"realtime_start": today, "realtime_end": today, "date": d, "value": v}
                        for d, v in sorted(self.iorb.items())]
        return web.json_response({
            "realtime_start": today, "realtime_end": today,
            "observation_start": observations[0]["date"] if observations else "1600-01-01",
            "observation_end": "9999-12-31", "units": "lin", "output_type": 1,
            "file_type": "json", "order_by": "observation_date", "sort_order": "asc",
            "count": len(observations), "offset": 0, "limit": 100000,
            "observations": observations})

    def fred_csv(self) -> web.Response:
        lines = ["observation_date,IORB"] + [f"{d},{v}" for d, v in sorted(self.iorb.items())]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/csv")


# ---- Slack ----

CHANNEL = "C0WATCHDOG"


class FakeSlack:
    """Slack as a notifier sees it: the incoming webhook (POST /services/<tail>) and the Web API
    of a bot token (/api/chat.postMessage, chat.update, conversations.history, paginated, with
    message metadata).

    What it received: ``calls`` (every call, in order: ("webhook", body) or (method, args)),
    ``webhook_posts`` (webhook bodies that landed), ``history`` (the channel, oldest first),
    ``replies`` (thread replies), ``texts`` (the text of every message that landed, posts and
    edits, in order) and ``keys`` (the delivery keys, from message metadata, of the top-level
    posts and edits that landed).

    Checks, when given: ``token`` (else ``invalid_auth``), ``webhooks`` (the tails that exist;
    any other is a 404 ``no_service``), ``channel`` and its other ``names`` (else
    ``channel_not_found``).

    Misbehaving: ``script[endpoint]`` ("webhook" or an API method) queues the next answers:
    ("status", code, body, headers) answers that instead (``fail_next`` queues those),
    ("hang", s) answers nothing for s seconds (the message does not land), ("land_then_hang", s)
    lands the message and answers s seconds late (``slow_next``). ``delay`` makes every landed
    post answer that much later; ``hold()`` makes them wait for ``release()``. ``refusals``
    counts the scripted error answers given.

    ``mode`` ("webhook" or "bot") only says which of the two the test's receiver uses, for
    helpers that count what arrived (tests/killharness.py)."""

    def __init__(self, *, token: str | None = None, channel: str = CHANNEL,
                 names: tuple[str, ...] = ("#desk",), webhooks: set[str] | None = None,
                 delay: float = 0.0, mode: str = "webhook"):
        self.token, self.channel, self.names = token, channel, names
        self.webhooks = webhooks
        self.delay, self.mode = delay, mode
        self.script: dict[str, list] = defaultdict(list)
        self.calls: list[tuple[str, dict]] = []
        self.webhook_posts: list[dict] = []
        self.history: list[dict] = []
        self.replies: list[dict] = []
        self.texts: list[str] = []
        self.keys: list[str] = []
        self.refusals = 0
        self.base = ""
        self._n = 0
        self._gate: asyncio.Event | None = None

    # -- serving --

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/services/{tail:.+}", self.webhook)
        app.router.add_route("*", "/api/{method}", self.api)
        return app

    async def serve(self, aiohttp_server) -> FakeSlack:
        server = await aiohttp_server(self.app(), access_log=None)
        self.base = str(server.make_url("")).rstrip("/")
        return self

    def api_calls(self, method: str) -> list[dict]:
        return [args for name, args in self.calls if name == method]

    # -- misbehaving --

    def fail_next(self, n: int = 1, *, endpoint: str = "webhook", status: int = 500,
                  body: str | dict = "internal_error", headers: dict | None = None) -> None:
        self.script[endpoint] += [("status", status, body, dict(headers or {}))] * n

    def slow_next(self, n: int = 1, *, seconds: float, endpoint: str = "webhook") -> None:
        self.script[endpoint] += [("land_then_hang", seconds)] * n

    def hold(self) -> None:
        """From now on, landed posts answer only after ``release()``."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    async def _scripted(self, endpoint: str):
        if not self.script[endpoint]:
            return None
        action = self.script[endpoint].pop(0)
        if action[0] == "status":
            _, code, body, headers = action
            self.refusals += 1
            if isinstance(body, dict):
                return web.json_response(body, status=code, headers=headers)
            return web.Response(status=code, text=body, headers=headers, content_type="text/html")
        if action[0] == "hang":
            await asyncio.sleep(action[1])
            return None
        return action                            # land_then_hang: the caller lands, then waits

    async def _answer_late(self, scripted) -> None:
        """After a message landed: the scripted lateness, ``delay``, the gate."""
        await asyncio.sleep(scripted[1] if scripted is not None else self.delay)
        if self._gate is not None:
            await self._gate.wait()

    # -- the webhook --

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append(("webhook", body))
        if self.webhooks is not None and request.match_info["tail"] not in self.webhooks:
            return web.Response(status=404, text="no_service")
        scripted = await self._scripted("webhook")
        if isinstance(scripted, web.StreamResponse):
            return scripted
        self.webhook_posts.append(body)
        self.texts.append(body.get("text", ""))
        await self._answer_late(scripted)
        return web.Response(text="ok")

    # -- the Web API --

    async def api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = dict(request.query) if request.method == "GET" else await request.json()
        self.calls.append((method, args))
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        scripted = await self._scripted(method)
        if isinstance(scripted, web.StreamResponse):
            return scripted
        handler = {"chat.postMessage": self._post, "chat.update": self._update,
                   "conversations.history": self._history}.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        answer = handler(args)
        if method != "conversations.history" and answer.get("ok"):
            await self._answer_late(scripted)
        elif scripted is not None:
            await asyncio.sleep(scripted[1])
        return web.json_response(answer)

    def _ts(self) -> str:
        self._n += 1
        return f"{1568808000 + self._n}.{self._n:06d}"

    @staticmethod
    def _key(metadata: Any) -> str | None:
        return ((metadata or {}).get("event_payload") or {}).get("key")

    def _post(self, args: dict) -> dict:
        if args.get("channel") not in (self.channel, *self.names):
            return {"ok": False, "error": "channel_not_found"}
        message = {"type": "message", "ts": self._ts(), "text": args.get("text"),
                   "blocks": args.get("blocks"), "attachments": args.get("attachments"),
                   "metadata": args.get("metadata")}
        self.texts.append(args.get("text") or "")
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
            self.replies.append(message)
            if args.get("reply_broadcast"):
                self.history.append({**message, "subtype": "thread_broadcast"})
        else:
            self.history.append(message)
            if self._key(message["metadata"]):
                self.keys.append(self._key(message["metadata"]))
        return {"ok": True, "channel": self.channel, "ts": message["ts"], "message": message}

    def _update(self, args: dict) -> dict:
        for message in self.history:
            if message["ts"] == args.get("ts") and args.get("channel") == self.channel:
                for name in ("text", "blocks", "attachments", "metadata"):
                    if name in args:
                        message[name] = args[name]
                self.texts.append(args.get("text") or "")
                if self._key(args.get("metadata")):
                    self.keys.append(self._key(args.get("metadata")))
                return {"ok": True, "channel": self.channel, "ts": message["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _history(self, args: dict) -> dict:
        if args.get("channel") != self.channel:
            return {"ok": False, "error": "channel_not_found"}
        limit = int(args.get("limit", 100))
        start = int(args.get("cursor") or 0)
        newest_first = list(reversed(self.history))
        page = newest_first[start:start + limit]
        if args.get("include_all_metadata") != "1":
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(newest_first)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}
