"""The daemon's HTTP surface: health, readiness, Prometheus metrics, a JSON API and a status page.

Bound to 127.0.0.1 by default ([http] listen): the daemon has no internet-facing address, so
the page loads nothing from outside (inline CSS and server-drawn SVG; its Content-Security-Policy
forbids every other origin and every script).

- ``/healthz`` is liveness only: the event loop answers (it is serving the request) and the
  writer thread answers a no-op append. A late source or a full disk never fails it (DESIGN
  "Health"): systemd must not restart a daemon that is working as designed.
- ``/readyz`` is 503 with the reasons when the daemon is not ready by its own account (still
  folding its log, or its deadman tripped: no evaluation for ``deadman_after``), the last append
  to the log failed, a staleness rule fires or a source failed recently without a fact since, or
  a receiver failed permanently without a successful send since. A replica of a shared
  PostgreSQL log adds ``replica``: its role, the leader, the lease epoch and its lag in events;
  and a ``replica`` check: a follower is ready while its fold catches up with the log within its
  lag bound (``lease_ttl``), a deposed leader is not.
- ``/api/alerts``, ``/api/series``, ``/api/silences``: JSON; every number is a decimal string.

What the page and the API show comes from the daemon's own fold (``engine``: series values and
rule states) plus a small incremental view of the log (LogView: recent alerts, source and
receiver failures, silences), read in pages off the event loop.
"""
from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from watchdog.alerting.silences import fold_silences
from watchdog.http import page as web_page
from watchdog.engine.data import derived_values
from watchdog.market.series import SERIES
from watchdog.rules.derived import catalogue_of
from watchdog.market.staleness import DEFAULT_GRACE, cadence, judge
from watchdog.model.display import new_york_time, quantity
from watchdog.model.events import (
    ALERT_TYPES,
    DAEMON_STARTED,
    FACT_TYPES,
    NOTIFICATION_FAILED,
    NOTIFICATION_SENT,
    SILENCE_ADDED,
    SILENCE_EXPIRED,
    SOURCE_FAILED,
    AlertTransition,
    decode,
    decode_or_none,
)
from watchdog.model.numbers import norm
from watchdog.model.timefmt import utc_text

DEFAULT_LISTEN = "127.0.0.1:9464"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")
READ_PAGE = 5000
RECENT_ALERTS = 200
# Spreads users watch (DOMAIN.md), computed exactly as the rules join them: the market series on
# its own dates, the administered rate as in force on each date.
SPREADS = (("sofr-iorb", "SOFR − IORB", "sofr", "iorb"),
           ("tgcr-iorb", "TGCR − IORB", "tgcr", "iorb"),
           ("effr-iorb", "EFFR − IORB", "effr", "iorb"),
           ("sofr-srf_rate", "SOFR − SRF rate", "sofr", "srf_rate"))

# A poller whose facts name another source: failures name the poller (source-failed), facts the
# primary source they stand for (watchdog.sources.nyfed.operations NAME/SOURCE, speeches SPEECH_SOURCE).
FACT_SOURCE = {"nyfed-operations": "nyfed", "speeches": "fed-speeches"}

STATE = web.AppKey("state", object)


@dataclass
class HttpSettings:
    """How long before a failure stops counting against readiness, and before a writer that
    does not answer counts as hung (a busy SQLite lock waits up to 30 s: longer is a hang)."""
    failure_window: timedelta = timedelta(hours=2)
    writer_stall_after: float = 90.0
    history_points: int = 90


# ---- the log, as the page needs it ----

@dataclass
class LogView:
    """An incremental fold of the log for the page: recent alerts, the last alert per rule, the
    last failure and last fact per source, permanent failures and sends per receiver, silences."""
    head: tuple[int, str] = (0, "")
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))
    last_alert: dict[str, dict] = field(default_factory=dict)
    source_failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    source_fact: dict[str, str] = field(default_factory=dict)
    receiver_failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    receiver_sent: dict[str, str] = field(default_factory=dict)
    silences: dict = field(default_factory=dict)
    started_at: str = ""

    def apply(self, event: Any) -> None:
        t = event.type
        self.head = (event.seq, event.hash)
        if t in ALERT_TYPES:
            row = alert_row(event)
            self.recent.append(row)
            self.last_alert[row["rule"]] = row
        elif t in FACT_TYPES:
            # facts are most of the log: one plain read of a field every fact model has
            self.source_fact[event.payload["source"]] = event.recorded_at
        elif t == SOURCE_FAILED:
            failure = decode(event)
            self.source_failed[failure.source] = (event.recorded_at, failure.reason)
        elif t == NOTIFICATION_FAILED:
            step = decode_or_none(event)
            if step is not None and step.permanent:
                self.receiver_failed[step.receiver] = (event.recorded_at, step.detail or "")
        elif t == NOTIFICATION_SENT:
            step = decode_or_none(event)
            if step is not None:
                self.receiver_sent[step.receiver] = event.recorded_at
        elif t in (SILENCE_ADDED, SILENCE_EXPIRED):
            self.silences = fold_silences([event], self.silences)
        elif t == DAEMON_STARTED:
            self.started_at = event.recorded_at

    @property
    def cursor(self) -> int:
        return self.head[0]


def alert_row(event: Any) -> dict:
    t: AlertTransition = decode(event)
    return {"seq": event.seq, "rule": t.rule, "state": t.state, "date": t.date, "value": t.value,
            "threshold": t.threshold, "severity": t.severity, "summary": t.summary, "reason": t.reason,
            "known_at": t.evaluated_at or event.recorded_at, "recorded_at": event.recorded_at,
            "link": t.link}


class WriterProbe:
    """Liveness of the writer thread: a no-op append goes through its queue and thread (no disk
    write, so a full disk answers as fast as a healthy one). One probe is in flight at a time;
    the writer is hung when a probe has waited longer than ``stall_after`` seconds."""

    def __init__(self, writer: Any, stall_after: float):
        self.writer, self.stall_after = writer, stall_after
        self._probe: asyncio.Future | None = None
        self._sent = 0.0

    async def check(self) -> str | None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self.writer.append([]))
            self._probe.add_done_callback(_consume)
            self._sent = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), timeout=min(0.5, self.stall_after))
        except (asyncio.TimeoutError, Exception):
            pass                    # an exception is an answer too: the thread is alive
        waited = time.monotonic() - self._sent
        if not self._probe.done() and waited > self.stall_after:
            return f"writer: a no-op append has waited {waited:.0f} s (limit {self.stall_after:g} s)"
        return None


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()          # retrieved: an error answer is logged by the writer's caller


class WebState:
    """Per-app state: the log view (refreshed under a lock, rows read in a thread), the writer
    probe and the settings."""

    def __init__(self, daemon: Any, settings: HttpSettings):
        self.daemon, self.settings = daemon, settings
        self.view = LogView()
        self.probe = WriterProbe(daemon.writer, settings.writer_stall_after)
        self._lock = asyncio.Lock()

    async def refresh(self) -> LogView:
        async with self._lock:
            while True:
                rows = await asyncio.to_thread(self.daemon.store.read, self.view.cursor, READ_PAGE)
                for event in rows:
                    self.view.apply(event)
                if len(rows) < READ_PAGE:
                    return self.view


# ---- snapshots (plain data; numbers as decimal strings) ----

def _now(daemon: Any) -> datetime:
    return daemon.now()


def _ruleset(daemon: Any):
    engine_rules = getattr(daemon.engine, "ruleset", None)
    return engine_rules if engine_rules is not None and engine_rules.all_rules else daemon.ruleset


KINDS = {"Rule": "threshold", "CompositeRule": "composite", "StalenessRule": "staleness",
         "KeywordRule": "keyword", "RevisionRule": "revision"}
_STATE_ORDER = {"firing": 0, "pending": 1, "inactive": 2}
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def rule_states(daemon: Any, view: LogView) -> list[dict]:
    """Every rule's current state from the engine's fold, with its latest alert event."""
    engine, out = daemon.engine, []
    for rule in _ruleset(daemon).all_rules:
        kind = KINDS.get(type(rule).__name__, "other")
        if kind == "threshold":
            state = getattr(engine.states.get(rule.id), "status", "inactive")
        else:
            state = "firing" if engine.emitted.get(rule.id) == "firing" else "inactive"
        last = view.last_alert.get(rule.id) or {}
        out.append({"id": rule.id, "kind": kind, "severity": rule.severity, "state": state,
                    "labels": dict(getattr(rule, "labels", {}) or {}),
                    "last": last or None})
    return sorted(out, key=lambda r: (_STATE_ORDER.get(r["state"], 3),
                                      _SEVERITY_ORDER.get(r["severity"], 3), r["id"]))


def series_snapshot(data: Any, points: int) -> dict:
    """Latest value and the last ``points`` values of every series the daemon knows."""
    out = {}
    for name in sorted(data.dates, key=_catalogue_order):
        dates = data.dates[name][-points:]
        if not dates:
            continue
        by_date = data.points[name]
        last = by_date[dates[-1]]
        spec = SERIES.get(name)
        out[name] = {"unit": spec.unit if spec else "", "description": spec.description if spec else "",
                     "join": spec.join if spec else "market",
                     "latest": {"date": dates[-1], "value": norm(last.value),
                                "published_at": last.published_at, "attributes": dict(last.attributes)},
                     "history": [{"date": d, "value": norm(by_date[d].value)} for d in dates]}
    return out


_CATALOGUE = {name: i for i, name in enumerate(SERIES)}


def _catalogue_order(name: str) -> tuple[int, str]:
    return (_CATALOGUE.get(name, len(_CATALOGUE)), name)


def spreads_snapshot(data: Any, points: int) -> dict:
    """SPREADS in exact basis points on the market series' dates (step rate as of each date)."""
    out = {}
    for key, label, market, step in SPREADS:
        history = []
        for d in data.dates.get(market, [])[-points:]:
            found = data.at(step, d, "step")
            if found is not None:
                value = (data.points[market][d].value - found[1].value) * 100
                history.append({"date": d, "value": norm(value)})
        if history:
            out[key] = {"label": label, "unit": "bp", "latest": history[-1], "history": history}
    return out


# ---- the status page's indicator cards ----

# How much history a card shows, by how often its series is published (a fixed window ending
# now, so a series that stopped shows the gap): a year of daily series, ten of quarterly ones.
WINDOWS = {"daily": (timedelta(days=365), "1 year"), "weekly": (timedelta(days=3 * 365), "3 years"),
           "monthly": (timedelta(days=10 * 365), "10 years"), "quarterly": (timedelta(days=10 * 365), "10 years")}


def frequency(data: Any, name: str) -> str:
    """``daily`` for market series and administered rates (a value on every business day or in
    force every day); for as-of series their cadence (watchdog.market.staleness.cadence, the
    one reading of it that ``watchdog status`` shares), as the window a card shows."""
    spec = SERIES.get(name)
    if spec is None or spec.join != "asof":
        return "daily"
    every, _ = cadence(data.dates.get(name, []), spec.cadence)
    if every in WINDOWS:
        return every
    gap = int(every.split()[1]) if every else 92        # "every N days"; unknown: the longest
    return "weekly" if gap <= 10 else "monthly" if gap <= 45 else "quarterly"


def staleness(data: Any, name: str, now: datetime, graces: dict[str, timedelta]) -> dict | None:
    """None when ``name``'s latest value is what its calendar says is due at ``now``; else the
    date that was due and when, judged as ``watchdog status`` judges it
    (watchdog.market.staleness.judge, with the grace of the series' staleness rules)."""
    spec, dates = SERIES.get(name), data.dates.get(name)
    if spec is None or not dates:
        return None
    judgement = judge(name, dates, now, graces.get(name, DEFAULT_GRACE))
    if not judgement.stale:
        return None
    due, by = judgement.due.isoformat(), judgement.by
    return {"latest": dates[-1], "due": due, "by": utc_text(by),
            "text": f"STALE: latest {dates[-1]}; the value for {due} was due by {new_york_time(by)}"}


def _window(data: Any, name: str, start: str, step: bool) -> list[str]:
    """The dates of ``name`` from ``start`` on; for a step series also the change in force at
    ``start`` (the rate then)."""
    dates = data.dates.get(name, [])
    i = bisect.bisect_left(dates, start)
    return dates[max(0, i - 1) if step else i:]


def _levels(rules: list, unit: str) -> list[dict]:
    out = []
    for rule in rules:
        above = rule.above is not None
        op = "above" if above else "below"
        only = f" on {', '.join(t.replace('_', ' ') for t in rule.only_on)} only" if rule.only_on else ""
        out.append({"value": norm(rule.threshold), "style": "fire", "rule": rule.id,
                    "label": f"{rule.id} fires {op} {quantity(rule.threshold, unit)}{only}"})
        recover = rule.recover_below if above else rule.recover_above
        if recover is not None:
            out.append({"value": norm(recover), "style": "recover", "rule": rule.id,
                        "label": f"{rule.id} resolves {'below' if above else 'above'} {quantity(recover, unit)}"})
    return out


def _card_state(rule_ids: list[str], states: dict[str, str]) -> str:
    found = {states.get(rule_id, "inactive") for rule_id in rule_ids}
    if not rule_ids:
        return "none"
    return "firing" if "firing" in found else "pending" if "pending" in found else "ok"


def indicator_cards(daemon: Any, rules: list[dict], now: datetime) -> list[dict]:
    """The status page's cards: the SPREADS, then every series the daemon knows (catalogue
    order), each over a window suited to its frequency ending now, with the levels of the
    threshold rules that evaluate exactly that spread or series, the state of those rules
    (firing, pending, ok; ``none`` without a rule) and a STALE mark. Numbers stay decimal
    strings; ``shown`` texts come from watchdog.model.display."""
    data, ruleset = daemon.engine.data, _ruleset(daemon)
    states = {r["id"]: r["state"] for r in rules}
    by_expr: dict[str, list] = {}
    for rule in ruleset.rules:
        by_expr.setdefault("".join(rule.expr.split()), []).append(rule)
    graces = ruleset.staleness_graces()
    cards = []
    for key, label, market, step in SPREADS:
        freq = "daily"
        start = (now - WINDOWS[freq][0]).date().isoformat()
        history = []
        for d in _window(data, market, start, False):
            found = data.at(step, d, "step")
            if found is not None:
                history.append({"date": d, "value": norm((data.points[market][d].value - found[1].value) * 100)})
        if history:
            cards.append(_card(key, label, "exact basis points, administered rate as in force", "bp", False,
                               freq, start, now, history, by_expr.get(f"bp({market}-{step})", []), states,
                               staleness(data, market, now, graces)))
    for name in sorted(data.dates, key=_catalogue_order):
        if not data.dates[name]:
            continue
        spec = SERIES.get(name)
        freq = frequency(data, name)
        start = (now - WINDOWS[freq][0]).date().isoformat()
        step = bool(spec and spec.join == "step")
        history = [{"date": d, "value": norm(data.points[name][d].value)} for d in _window(data, name, start, step)]
        today = now.date().isoformat()
        # an administered rate announced ahead (effective after today) is told, not drawn
        scheduled = [p for p in history if step and p["date"] > today]
        history = [p for p in history if not step or p["date"] <= today]
        if not history:                     # nothing in the window: the latest value still shows
            last = data.dates[name][-1]
            history = [{"date": last, "value": norm(data.points[name][last].value)}]
        unit = spec.unit if spec else ""
        card = _card(name, name, spec.description if spec else "", unit, step, freq, start, now, history,
                     by_expr.get(name, []), states, staleness(data, name, now, graces))
        if scheduled:
            card["scheduled"] = {**scheduled[0], "shown": quantity(scheduled[0]["value"], unit)}
        cards.append(card)
    # The engine's rule set comes from the log's rules-loaded event, which records the rules
    # (each with the definitions it reads), not the [[series]] tables: those come from the
    # files this daemon loaded.
    series = getattr(getattr(daemon, "ruleset", None), "series", ()) or ruleset.series
    cards.extend(derived_cards(data, series, by_expr, states, now))
    return cards


def derived_cards(data: Any, series: Any, by_expr: dict[str, list], states: dict[str, str],
                  now: datetime) -> list[dict]:
    """A card per derived series ([[series]]): a year of its values, computed from the engine's
    facts as the rules reading it are judged (engine.data.derived_values)."""
    catalogue = catalogue_of(series)
    start = (now - WINDOWS["daily"][0]).date().isoformat()
    cards = []
    for item in series:
        history = [{"date": d, "value": norm(v)}
                   for d, v in derived_values(item, catalogue, data, since=start)]
        if history:
            cards.append(_card(item.name, f"{item.name} (derived)", item.description,
                               item.display_unit, False, "daily", start, now, history,
                               by_expr.get(item.name, []), states, None))
    return cards


def _card(key: str, label: str, desc: str, unit: str, step: bool, freq: str, start: str, now: datetime,
          history: list[dict], rules: list, states: dict[str, str], stale: dict | None) -> dict:
    latest = history[-1]
    return {"key": key, "label": label, "description": desc, "unit": unit, "steps": step,
            "frequency": freq, "window": {"start": start, "end": now.date().isoformat(),
                                          "text": WINDOWS[freq][1]},
            "latest": {**latest, "shown": quantity(latest["value"], unit)},
            "history": history, "levels": _levels(rules, unit), "rules": [r.id for r in rules],
            "state": _card_state([r.id for r in rules], states), "stale": stale, "scheduled": None}


def silences_snapshot(view: LogView, now: datetime) -> list[dict]:
    out = []
    for s in sorted(view.silences.values(), key=lambda s: (s.starts_at, s.id)):
        out.append({"id": s.id, "matchers": dict(s.matchers), "matchers_re": dict(s.matchers_re),
                    "starts_at": utc_text(s.starts_at), "ends_at": utc_text(s.ends_at),
                    "comment": s.comment, "created_by": s.created_by,
                    "expired_at": utc_text(s.expired_at) if s.expired_at else None,
                    "active": s.active(now)})
    return sorted(out, key=lambda s: not s["active"])


# ---- readiness ----

def readiness(daemon: Any, view: LogView, now: datetime, window: timedelta) -> dict:
    """Each check with its reasons (empty: ok); ready when every check is ok."""
    cutoff = utc_text(now - window)
    checks = {"daemon": _daemon_reasons(daemon), "store": _store_reasons(daemon),
              "sources": _source_reasons(daemon, view, cutoff),
              "receivers": _receiver_reasons(view, cutoff)}
    replica = getattr(daemon, "replica", None)
    if replica is not None:       # leads, or follows within its lag bound (DESIGN)
        checks["replica"] = replica.lag_reasons(getattr(daemon, "cursor", 0), view.head[0])
    result = {"ready": not any(checks.values()),
              "checks": {name: {"ok": not reasons, "reasons": reasons} for name, reasons in checks.items()}}
    if replica is not None:       # who leads, the epoch, how far this replica's fold is behind
        result["replica"] = replica.describe(getattr(daemon, "cursor", 0), view.head[0])
    return result


def _daemon_reasons(daemon: Any) -> list[str]:
    """The daemon's own verdict (``health``: starting, deadman tripped) where it keeps one; else
    whether ``start`` has folded the log (it sets the outbox then)."""
    health = getattr(daemon, "health", None)
    if health is not None:
        return [] if health.ready else [str(health.reason)]
    return [] if getattr(daemon, "outbox", None) is not None else ["starting: the log is not folded yet"]


def _store_reasons(daemon: Any) -> list[str]:
    error = getattr(daemon.writer, "last_error", None)
    return [f"the last append failed: {_short(str(error))}"] if error is not None else []


def _source_reasons(daemon: Any, view: LogView, cutoff: str) -> list[str]:
    """Staleness rules firing, and configured sources whose latest failure is recent and has had
    neither a fact from that source nor a clean poll after it (the daemon remembers its last
    clean poll per source: a poll with nothing new records nothing in the log)."""
    reasons = []
    for rule in _ruleset(daemon).staleness_rules:
        if daemon.engine.emitted.get(rule.id) == "firing":
            last = view.last_alert.get(rule.id) or {}
            source = SERIES[rule.series].primary_source     # a staleness rule's series is catalogued
            reasons.append(f"stale: {rule.series} from {source} ({rule.id}): "
                           f"{_short(last.get('reason') or rule.series + ' is late')}")
    names = {getattr(s, "name", "") for s in daemon.sources}
    polled_ok = getattr(getattr(daemon, "health", None), "last_ok_poll", {})
    for source, (at, reason) in sorted(view.source_failed.items()):
        recorded = view.source_fact.get(FACT_SOURCE.get(source, source), "")
        if source in names and at >= cutoff and recorded < at and polled_ok.get(source, "") < at:
            reasons.append(f"failing: {source} at {at}: {_short(reason)}")
    return reasons


def _receiver_reasons(view: LogView, cutoff: str) -> list[str]:
    return [f"failing: {receiver} at {at}: {_short(detail)}"
            for receiver, (at, detail) in sorted(view.receiver_failed.items())
            if at >= cutoff and view.receiver_sent.get(receiver, "") < at]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# ---- handlers ----

async def healthz(request: web.Request) -> web.Response:
    hung = await request.app[STATE].probe.check()
    if hung:
        return web.json_response({"status": "hung", "reasons": [hung]}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state: WebState = request.app[STATE]
    view = await state.refresh()
    result = readiness(state.daemon, view, _now(state.daemon), state.settings.failure_window)
    return web.json_response(result, status=200 if result["ready"] else 503)


async def metrics(request: web.Request) -> web.Response:
    """The daemon's registry (watchdog.daemon.metrics), then this module's: readiness per check and the
    chain head (DESIGN: the head is published in /metrics)."""
    state: WebState = request.app[STATE]
    view = await state.refresh()
    ready = readiness(state.daemon, view, _now(state.daemon), state.settings.failure_window)
    body = b""
    registry = getattr(getattr(state.daemon, "metrics", None), "registry", None)
    if registry is not None:
        body += generate_latest(registry)
    own = CollectorRegistry(auto_describe=False)
    own.register(_WebCollector(view.head, ready))
    body += generate_latest(own)
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


class _WebCollector:
    """Built per scrape from a snapshot, so no stale label set (an old head hash) lingers."""

    def __init__(self, head: tuple[int, str], ready: dict):
        self.head, self.ready = head, ready

    def collect(self):
        head = GaugeMetricFamily("watchdog_chain_head_info",
                                 "The chain head: seq as the value, its hash as a label", labels=["hash"])
        head.add_metric([self.head[1]], self.head[0])
        checks = GaugeMetricFamily("watchdog_readiness_check",
                                   "1 when a /readyz check passes, 0 when it fails", labels=["check"])
        for name, check in self.ready["checks"].items():
            checks.add_metric([name], 1 if check["ok"] else 0)
        yield head
        yield checks
        replica = self.ready.get("replica")
        if replica is not None:
            role = GaugeMetricFamily("watchdog_replica_leader",
                                     "1 while this replica holds the leader lease, else 0",
                                     labels=["holder", "role"])
            role.add_metric([replica["holder"], replica["role"]], 1 if replica["role"] == "leader" else 0)
            epoch = GaugeMetricFamily("watchdog_lease_epoch", "The leader lease's epoch as this replica last saw it")
            epoch.add_metric([], replica["epoch"] or 0)
            lag = GaugeMetricFamily("watchdog_replica_lag_events",
                                    "Events in the log this replica has not folded yet")
            lag.add_metric([], replica["lag_events"])
            yield role
            yield epoch
            yield lag


async def api_alerts(request: web.Request) -> web.Response:
    state: WebState = request.app[STATE]
    limit = _int_param(request, "limit", 50, RECENT_ALERTS)
    view = await state.refresh()
    recent = list(view.recent)[-limit:][::-1]
    return web.json_response({"rules": rule_states(state.daemon, view), "recent": recent})


async def api_series(request: web.Request) -> web.Response:
    state: WebState = request.app[STATE]
    points = _int_param(request, "points", state.settings.history_points, 5000)
    data = state.daemon.engine.data
    return web.json_response({"series": series_snapshot(data, points),
                              "spreads": spreads_snapshot(data, points)})


async def api_outbox(request: web.Request) -> web.Response:
    """What the daemon still owes (as ``watchdog outbox``): each undelivered notification and
    why it waits."""
    daemon = request.app[STATE].daemon
    box = getattr(daemon, "outbox", None)
    owed = box.pending(utc_text(_now(daemon))) if box is not None else []
    return web.json_response({"owed": owed})


async def api_silences(request: web.Request) -> web.Response:
    state: WebState = request.app[STATE]
    view = await state.refresh()
    return web.json_response({"silences": silences_snapshot(view, _now(state.daemon))})


async def index(request: web.Request) -> web.Response:
    state: WebState = request.app[STATE]
    view = await state.refresh()
    now, daemon = _now(state.daemon), state.daemon
    rules = rule_states(daemon, view)
    cards = indicator_cards(daemon, rules, now)
    units = {rule_id: c["unit"] for c in cards for rule_id in c["rules"]}
    alerts = [{**a, "shown": "" if a["value"] is None else quantity(a["value"], units.get(a["rule"]))}
              for a in list(view.recent)[-30:][::-1]]
    page = web_page.render({
        "now": now, "head": view.head, "started_at": view.started_at,
        "ready": readiness(daemon, view, now, state.settings.failure_window),
        "cards": cards, "rules": rules, "alerts": alerts,
        "silences": [s for s in silences_snapshot(view, now) if s["active"]]})
    return web.Response(text=page, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer"})


def _int_param(request: web.Request, name: str, default: int, most: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise web.HTTPBadRequest(text=f"{name}: a whole number from 1 to {most}")
    return int(raw)


# ---- the app ----

def build_app(daemon: Any, settings: HttpSettings | None = None) -> web.Application:
    """The HTTP app over a daemon (duck-typed: engine, store, writer, sources, ruleset, outbox,
    now, and metrics when present)."""
    app = web.Application()
    app[STATE] = WebState(daemon, settings or HttpSettings())
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/alerts", api_alerts)
    app.router.add_get("/api/series", api_series)
    app.router.add_get("/api/silences", api_silences)
    app.router.add_get("/api/outbox", api_outbox)
    return app


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6); a bare port binds 127.0.0.1, never all interfaces."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep:
        host, port = "", listen.strip()
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"[http] listen = {listen!r}: expected host:port, e.g. {DEFAULT_LISTEN!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def start_http(daemon: Any, listen: str = DEFAULT_LISTEN,
                     settings: HttpSettings | None = None) -> web.AppRunner:
    """Serve the app on ``listen`` until the caller runs ``await runner.cleanup()``. Port 0 picks
    a free port: ``runner.addresses`` says which."""
    host, port = parse_listen(listen)
    runner = web.AppRunner(build_app(daemon, settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
