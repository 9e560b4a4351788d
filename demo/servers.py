"""Local stand-ins for the NY Fed Markets API, FRED and Treasury Fiscal Data, serving the real
Oct-Dec 2025 history (from events.db.example) in the real APIs' formats, so that `watchdog run`
fetches, parses, records, evaluates and notifies through its production code.

The servers publish the quarter progressively: each *polling round* (a burst of requests after a
quiet gap, i.e. one daemon cycle) moves the publication clock forward by ``step``, and a fact is
served only once its nominal publication instant (its ``published_at`` in the example log) has
passed on that clock. A daemon polling in a loop therefore meets the quarter week by week, as it
would have live, and `--exit-when-idle` ends the run once everything is out.

One aiohttp app on 127.0.0.1 and a random free port; every path is the real one, so a config
only swaps each source's ``base_url``.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from watchdog.model.timefmt import NEW_YORK, end_of_day_new_york, parse_utc, utc_text

# canonical series -> (NY Fed path group, API type) for the reference rates served
NYFED_RATES = {"sofr": ("secured", "SOFR"), "tgcr": ("secured", "TGCR"), "bgcr": ("secured", "BGCR"),
               "effr": ("unsecured", "EFFR")}
NYFED_FIELDS = {"p1": "percentPercentile1", "p25": "percentPercentile25", "p75": "percentPercentile75",
                "p99": "percentPercentile99", "volume": "volumeInBillions"}
# FRED id -> canonical series; the raw values (percent, $ mn, $ bn) come from the log's provenance
FRED_SERIES = {"WRESBAL": "reserves", "RRPONTSYD": "onrrp"}
FISCALDATA_PATH = "/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance"
SERVED = tuple(NYFED_RATES) + tuple(FRED_SERIES.values()) + ("tga",)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Fact:
    series: str
    date: str
    published_at: str
    raw: str                          # the value as the source printed it
    attributes: dict                  # raw attribute texts (NY Fed percentiles, volume)


def load_history(example_db: Path, first: str, last: str) -> dict[str, list[Fact]]:
    """The served series' observations dated first..last from the example log, by series."""
    conn = sqlite3.connect(f"file:{example_db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT published_at, payload FROM events WHERE type = 'observation-recorded' "
        "AND json_extract(payload, '$.date') BETWEEN ? AND ? ORDER BY seq", (first, last)).fetchall()
    conn.close()
    out: dict[str, list[Fact]] = {s: [] for s in SERVED}
    for published_at, text in rows:
        p = json.loads(text)
        if p["series"] not in out:
            continue
        prov = p.get("provenance", {})
        attributes = {name: prov.get(f"raw_{name}", value) for name, value in p.get("attributes", {}).items()}
        out[p["series"]].append(Fact(p["series"], p["date"], published_at,
                                     prov.get("raw_value", p["value"]), attributes))
    for facts in out.values():
        facts.sort(key=lambda f: f.date)
    return out


@dataclass
class PublicationClock:
    """What has been published: every fact whose ``published_at`` is at most ``until``. A request
    after a quiet gap of ``round_gap`` seconds opens a new polling round, which publishes the
    next ``days_per_round`` New York days on which anything was published (weekends and
    holidays publish nothing, so they are skipped rather than served as empty rounds)."""
    days: list[str]                   # end of each publication day, UTC text, ascending
    days_per_round: int = 2
    round_gap: float = 0.5
    rounds: int = 0
    until: str = ""
    _last_request: float = field(default=-1e9)

    @classmethod
    def over(cls, history: dict[str, list[Fact]], days_per_round: int) -> "PublicationClock":
        ends = sorted({_end_of_new_york_day(f.published_at) for facts in history.values() for f in facts})
        return cls(days=ends, days_per_round=days_per_round)

    def on_request(self) -> None:
        now = time.monotonic()
        if now - self._last_request > self.round_gap:
            self.rounds += 1
            index = min(self.rounds * self.days_per_round, len(self.days)) - 1
            self.until = self.days[index] if index >= 0 else ""
        self._last_request = now

    def published(self, fact: Fact) -> bool:
        return fact.published_at <= self.until

    @property
    def finished(self) -> bool:
        return bool(self.days) and self.until >= self.days[-1]


def _end_of_new_york_day(utc: str) -> str:
    return utc_text(end_of_day_new_york(parse_utc(utc).astimezone(NEW_YORK).date()))


class FakeSources:
    def __init__(self, history: dict[str, list[Fact]], clock: PublicationClock):
        self.history, self.clock = history, clock
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/api/rates/{group}/{rate}/search.json", self.nyfed_search)
        app.router.add_get("/fred/series/observations", self.fred_observations)
        app.router.add_get(FISCALDATA_PATH, self.fiscaldata)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler):
        self.clock.on_request()
        self.requests += 1
        return await handler(request)

    def _visible(self, series: str, start: str, end: str = "9999-12-31") -> list[Fact]:
        return [f for f in self.history.get(series, [])
                if start <= f.date <= end and self.clock.published(f)]

    async def nyfed_search(self, request: web.Request) -> web.Response:
        """``{"refRates": [...]}``, newest first, rates as JSON numbers as printed (4.20)."""
        series = request.match_info["rate"]
        if series not in NYFED_RATES or NYFED_RATES[series][0] != request.match_info["group"]:
            raise web.HTTPNotFound()
        kind = NYFED_RATES[series][1]
        facts = self._visible(series, request.query.get("startDate", ""), request.query.get("endDate", "9999"))
        rows = []
        for f in reversed(facts):
            fields = {"percentRate": f.raw, **{NYFED_FIELDS[k]: v for k, v in f.attributes.items() if k in NYFED_FIELDS}}
            numbers = "".join(f' ,"{name}": {_number(v)}' for name, v in fields.items())
            rows.append(f'{{ "effectiveDate": "{f.date}", "type": "{kind}"{numbers} ,"revisionIndicator": "" }}')
        return web.Response(text='{ "refRates": [ ' + ", ".join(rows) + " ] }", content_type="application/json")

    async def fred_observations(self, request: web.Request) -> web.Response:
        if not request.query.get("api_key"):
            return web.json_response({"error_code": 400, "error_message": "Bad Request.  Variable api_key is not set."},
                                     status=400)
        fred_id = request.query.get("series_id", "")
        if fred_id not in FRED_SERIES:
            return web.json_response({"error_code": 400, "error_message": "Bad Request.  The series does not exist."},
                                     status=400)
        start = request.query.get("observation_start", "1776-07-04")
        obs = [{"realtime_start": _today(), "realtime_end": _today(), "date": f.date, "value": f.raw}
               for f in self._visible(FRED_SERIES[fred_id], start)]
        return web.json_response({"realtime_start": _today(), "realtime_end": _today(),
                                  "observation_start": start, "observation_end": "9999-12-31",
                                  "units": "lin", "output_type": 1, "file_type": "json",
                                  "order_by": "observation_date", "sort_order": "asc",
                                  "count": len(obs), "offset": 0, "limit": 100000, "observations": obs})

    async def fiscaldata(self, request: web.Request) -> web.Response:
        """The DTS operating cash balance since the 2022 layout: the closing balance is the
        opening-balance column of the "Closing Balance" row; paged by page[number]/page[size]."""
        start = request.query.get("filter", "record_date:gte:1776-07-04").rsplit(":", 1)[-1]
        rows = [row for f in self._visible("tga", start) for row in _dts_rows(f)]
        size = int(request.query.get("page[size]", "100"))
        number = int(request.query.get("page[number]", "1"))
        pages = max(1, -(-len(rows) // size))
        page = rows[(number - 1) * size:number * size]
        meta = {"count": len(page), "total-count": len(rows), "total-pages": pages,
                "dataFormats": {"record_date": "YYYY-MM-DD", "account_type": "String",
                                "close_today_bal": "$1,000,000", "open_today_bal": "$1,000,000"}}
        return web.json_response({"data": page, "meta": meta, "links": {}})


def _dts_rows(f: Fact) -> list[dict]:
    base = {"record_date": f.date, "close_today_bal": "null", "table_nbr": "I",
            "table_nm": "Operating Cash Balance", "sub_table_name": "Cash Balance Details"}
    return [{**base, "account_type": "Treasury General Account (TGA) Closing Balance",
             "open_today_bal": f.raw, "src_line_nbr": "4"}]


def _number(text: str) -> str:
    """A raw numeric text inlined as a JSON number (the NY Fed prints 4.20, not "4.20")."""
    if not _NUMBER.match(text):
        raise ValueError(f"not a plain number: {text!r}")
    return text


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


async def start(history: dict[str, list[Fact]], clock: PublicationClock) -> tuple[web.AppRunner, str, FakeSources]:
    """Serve on 127.0.0.1 and a free port; (runner, base URL, the app's state)."""
    sources = FakeSources(history, clock)
    runner = web.AppRunner(sources.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}", sources
