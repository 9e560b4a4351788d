"""The output side of the tuning commands (`replay`, `replay --diff/--report/--notify-dry-run`,
`backtest --set`): streaming lines to stdout, the progress bar on a terminal, tables. Kept out of
watchdog/cli/tuning.py so the command definitions stay thin; nothing here decides anything (replay,
rulediff, backtest, sweep and dryrun do)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click


def print_dry_run(transitions, config, lo: str | None, hi: str | None, as_json: bool,
                  until: str | None = None) -> None:
    """--notify-dry-run: every notification the daemon's outbox would have sent, by instant
    (--since/--until select by the New York date of the send; grouping state uses all). Timers
    run to --as-of, else to the last transition plus the longest group_wait."""
    from watchdog.alerting.dryrun import dry_run
    from watchdog.model.config import Config
    from watchdog.model.timefmt import NEW_YORK, utc_text
    from watchdog.notify.console import format_line
    tally: dict[str, ReceiverTally] = {}
    for at, n in dry_run(transitions, config or Config(), until=until, settle=True):
        day = at.astimezone(NEW_YORK).date().isoformat()
        if (lo and day < lo) or (hi and day > hi):
            continue
        tally.setdefault(n.receiver, ReceiverTally()).add(at, len(n.alerts))
        if as_json:
            click.echo(json.dumps({"at": utc_text(at), "receiver": n.receiver, "group": n.group,
                                   "flush": n.flush, "reason": n.reason, "key": n.key,
                                   "alerts": [{"rule": a.rule, "state": a.state, "date": a.date,
                                               "severity": a.severity} for a in n.alerts]}, sort_keys=True))
            continue
        when = at.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S ET")
        head = f"{when}  {n.receiver:<10} flush {n.flush} ({n.reason})"
        lines = [format_line(a) for a in n.alerts]
        click.echo(f"{head}  {lines[0]}" if len(lines) == 1 else "\n    ".join([f"{head}  {n.group}", *lines]))
    if not as_json:
        for line in dry_run_summary(tally):
            click.echo(line)


class ReceiverTally:
    """What one receiver was sent in a dry run: messages (flushes), alerts, first and last send."""

    def __init__(self):
        self.messages, self.alerts, self.first, self.last = 0, 0, None, None

    def add(self, at, alerts: int) -> None:
        self.messages += 1
        self.alerts += alerts
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)


def dry_run_summary(tally: dict[str, ReceiverTally]) -> list[str]:
    """The dry run's closing lines: per receiver, messages, alerts, first and last send (New
    York time); one line saying nothing would have been sent when nothing would."""
    from watchdog.model.display import new_york_time
    if not tally:
        return ["summary: no receiver would have been sent anything"]
    width = max(len(name) for name in tally)
    out = [f"summary: {len(tally)} receiver{'s' if len(tally) != 1 else ''}"]
    for name, t in sorted(tally.items()):
        out.append(f"  {name:<{width}}  {t.messages:,} message{'s' if t.messages != 1 else ''}, "
                   f"{t.alerts:,} alert{'s' if t.alerts != 1 else ''}, "
                   f"first {new_york_time(t.first)}, last {new_york_time(t.last)}")
    return out


class ReplayRun:
    """One ``watchdog replay`` invocation: options resolved, output streamed to stdout."""

    def __init__(self, ruleset, as_json: bool, cutoff: str | None, lo: str | None, hi: str | None):
        self.ruleset, self.as_json, self.cutoff, self.lo, self.hi = ruleset, as_json, cutoff, lo, hi
        self.collector = None
        self.bar: _Progress | None = None
        self.recorded_by: str | None = None
        self.rules: frozenset[str] = frozenset()
        self.states: frozenset[str] = frozenset()
        self.severities: frozenset[str] = frozenset()
        self.pending, self.fmt, self.db = False, "text", ""

    def select(self, *, rules=(), states=(), severities=(), pending: bool = False, fmt: str = "text",
               db: str = "") -> None:
        """What the timeline prints: only these rules, states and severities (empty: all);
        pending transitions only when asked (never in JSON); as text, csv or JSON."""
        known = {r.id for r in self.ruleset.all_rules}
        unknown = sorted(set(rules) - known)
        if unknown:
            raise click.UsageError(f"--rule {', '.join(unknown)}: no such rule in --rules "
                                   f"(known: {', '.join(sorted(known))})")
        self.rules, self.states, self.severities = frozenset(rules), frozenset(states), frozenset(severities)
        self.pending, self.fmt, self.db = pending, fmt, db

    def wanted(self, t) -> bool:
        return not ((self.lo and t.date < self.lo) or (self.hi and t.date > self.hi))

    def selected(self, t) -> bool:
        """Whether the timeline prints ``t`` (the window is ``wanted``)."""
        if t.state == "pending" and (self.as_json or not self.pending):
            return False                      # DESIGN: pending is not printed in JSON
        return not ((self.rules and t.rule not in self.rules) or (self.states and t.state not in self.states)
                    or (self.severities and t.severity not in self.severities))

    def transitions(self, store, ruleset, label: str, collect: bool = False):
        """The replay's transitions, streamed, with the progress bar (and the report's series)
        fed from the same pass over the log."""
        from watchdog.tuning.replay import replay as run_replay
        self.bar = bar = _Progress.for_terminal(label, store.head()[0])
        taps = [tap for tap in (bar, self._collector(ruleset) if collect else None) if tap]
        on_fact = (lambda event: [tap(event) for tap in taps]) if taps else None
        try:
            yield from run_replay(store, ruleset, as_of=self.cutoff, on_fact=on_fact,
                                  recorded_by=self.recorded_by)
        finally:
            if bar:
                bar.finish()
            self.bar = None

    def _collector(self, ruleset):
        from watchdog.tuning.report import SeriesCollector, series_names
        self.collector = SeriesCollector(series_names(ruleset))
        return self.collector

    def timeline(self, store, keep: bool) -> list:
        from watchdog.tuning.replay import transition_json
        shown, to_terminal = [], sys.stdout.isatty()
        counts: dict[str, int] = {}
        hidden_pending = 0
        text = not self.as_json and self.fmt == "text"
        if text:
            click.echo(self.header())
        rows = csv.writer(sys.stdout, lineterminator="\n") if self.fmt == "csv" else None
        if rows is not None:
            rows.writerow(CSV_COLUMNS)
        for t in self.transitions(store, self.ruleset, "replay", collect=keep):
            if not self.wanted(t):
                continue
            if not self.selected(t):
                hidden_pending += t.state == "pending" and not self.as_json and self._passes_filters(t)
                continue
            counts[t.state] = counts.get(t.state, 0) + 1
            if keep:
                shown.append(t)
            if to_terminal and self.bar:
                self.bar.clear()               # the bar and the lines share the screen
            if rows is not None:
                rows.writerow(csv_row(t))
                sys.stdout.flush()
            else:
                click.echo(transition_json(t) if self.as_json else timeline_line(t))
        if text:
            click.echo(counts_line(counts, hidden_pending))
        return shown

    def _passes_filters(self, t) -> bool:
        return not ((self.rules and t.rule not in self.rules)
                    or (self.severities and t.severity not in self.severities))

    def header(self) -> str:
        """The timeline's one header line: the log, the rule set, the window, what is selected."""
        window = f"{self.lo or 'start'} .. {self.hi or 'end'}"
        parts = [f"replay of {Path(self.db).name or 'the log'}",
                 f"rule set {self.ruleset.hash[:12]} ({len(self.ruleset.all_rules)} rules)",
                 f"dates {window}"]
        if self.cutoff:
            parts.append(f"as of {new_york_text(self.cutoff)}" + (" (as recorded)" if self.recorded_by else ""))
        picked = [f"{name} {', '.join(sorted(values))}" for name, values in
                  (("rule", self.rules), ("state", self.states), ("severity", self.severities)) if values]
        if picked:
            parts.append("only " + "; ".join(picked))
        return " · ".join(parts)

    def diff(self, store, other, max_shift: int, keep: bool) -> list:
        from watchdog.tuning.rulediff import (
            diff_rulesets,
            difference_json,
            difference_line,
            summary_json,
            summary_line,
        )
        mine = list(self.transitions(store, self.ruleset, "replay --rules", collect=keep))
        theirs = list(self.transitions(store, other, "replay --diff"))
        result = diff_rulesets(mine, theirs, base_rules=self.ruleset, other_rules=other,
                               max_shift=max_shift, since=self.lo, until=self.hi)
        for d in result.differences:
            click.echo(difference_json(d) if self.as_json else difference_line(d))
        for s in result.summaries:
            click.echo(summary_json(s) if self.as_json else summary_line(s))
        return [t for t in mine if self.wanted(t)]


class _Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal (never on stdout, never in
    a pipe or a log file). Progress is events consumed of the log's events (its head seq): the
    replay reads facts in publication order, so seq itself does not grow monotonically."""
    EVERY = 500                                # events between redraws

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done, self.drawn = label, max(total, 1), 0, False

    @classmethod
    def for_terminal(cls, label: str, total: int) -> "_Progress | None":
        return cls(label, total) if sys.stderr.isatty() else None

    def __call__(self, event) -> None:
        self.done += 1
        if self.done % self.EVERY == 0:
            self.draw()

    def draw(self) -> None:
        share = min(self.done, self.total) / self.total
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:4.0%} {self.done:,}/{self.total:,} events")
        sys.stderr.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\033[K")
            self.drawn = False

    def finish(self) -> None:
        self.done = max(self.done, self.total)   # the log's other events are not facts
        self.draw()
        sys.stderr.write("\n")
        sys.stderr.flush()


def timeline_line(t) -> str:
    """``2019-09-17  firing   sofr-over-iorb  warning  known 2019-09-18 08:00 ET     315 bp  SOFR is …``:
    the value in its unit (the rule's summary shows which; watchdog.notify.text.value_unit)."""
    from watchdog.notify.text import composite_line, shown_value, value_unit
    from watchdog.tuning.rulediff import known_text
    value = shown_value(t.value, value_unit(t)) if composite_line(t) == "" else f"{t.value} rules"
    head = f"{t.date}  {t.state:<8} {t.rule:<28} {t.severity:<8}"
    return f"{head} known {known_text(t)}  {value or '-':>10}  {t.summary or t.reason}"


def counts_line(counts: dict[str, int], hidden_pending: int) -> str:
    """The timeline's closing line: how many transitions of each state it printed, and how many
    pending ones it hid."""
    total = sum(counts.values())
    by_state = ", ".join(f"{counts[s]} {s}" for s in ("firing", "resolved", "flagged", "pending") if counts.get(s))
    line = f"{total} transition{'s' if total != 1 else ''}" + (f" ({by_state})" if by_state else "")
    if hidden_pending:
        line += f"; {hidden_pending} pending not shown (--pending shows them)"
    return line


CSV_COLUMNS = ("date", "rule", "state", "severity", "value", "threshold", "known_at", "summary")


def csv_row(t) -> tuple:
    """One ``replay --format csv`` row: the exact decimal strings of the log, known_at in UTC."""
    return (t.date, t.rule, t.state, t.severity, "" if t.value is None else t.value,
            "" if t.threshold is None else t.threshold, t.evaluated_at, t.summary or t.reason)


def new_york_text(utc: str) -> str:
    from watchdog.model.display import new_york_time
    return new_york_time(utc)


def dumps(data) -> str:
    """JSON with the result's Decimals as JSON numbers: they are rounded to 4 places first, so
    the number printed is exactly the decimal (as ``replay --json`` does with values)."""
    from decimal import Decimal

    def plain(value):
        if isinstance(value, Decimal):
            return json.loads(f"{value:f}")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, list) else value
    return json.dumps(plain(data), sort_keys=True, ensure_ascii=False)


def sweep_output(results, ruleset, variants, as_json: bool) -> str:
    """One row (or JSON line) per variant of ``results`` (``app.sweep_results``, run here: a
    progress bar on stderr when it is a terminal, never with --json): the swept rules (with the
    composites over them) and the whole set. A skipped variant (one the rule loader refuses)
    shows its reason in its row (``"skipped"`` in JSON)."""
    from watchdog.tuning.backtest import (
        fmt_lead,
        fmt_ratio,
        score_json,
        scored_rules,
        table,
    )
    from watchdog.tuning.sweep import affected_ids, swept_ids
    group = sorted(r for r in affected_ids(ruleset, swept_ids(variants)) if r in scored_rules(ruleset))
    bar = None if as_json else _Progress.for_terminal("backtest --set", results.events)
    try:
        scored = results.run(on_fact=bar)
    finally:
        if bar:
            bar.finish()
    rows, lines, skipped = [], [], {}
    for variant, result in scored:
        if result is None:
            lines.append(dumps({"variant": dict(variant.settings), "skipped": variant.problem}))
            skipped[len(rows)] = variant.problem
            rows.append((variant.label, *[""] * 9))
            continue
        mine, every = result.combined(group, "swept"), result.overall
        lines.append(dumps({"variant": dict(variant.settings), "swept": score_json(mine),
                             "all": score_json(every)}))
        rows.append((variant.label,
                     f"{mine.caught}/{mine.episodes}", fmt_lead(mine), str(len(mine.false_alarms)),
                     fmt_ratio(mine.precision),
                     f"{every.caught}/{every.episodes}", fmt_lead(every), str(len(every.false_alarms)),
                     fmt_ratio(every.precision), str(every.alert_days)))
    if as_json:
        return "".join(line + "\n" for line in lines)
    header = ("variant", "caught", "lead bd", "false alarms", "precision",
              "all: caught", "lead bd", "false alarms", "precision", "alert-days")
    refused = f" ({len(skipped)} skipped: the rule loader refuses them)" if skipped else ""
    title = (f"sweep: {len(variants)} variants{refused}, one pass; swept rules and the composites over "
             f"them: {', '.join(group) or 'none scored'}; then all rules")
    text = table(header, rows).split("\n")
    width = max(len(row[0]) for row in [header, *rows])
    for i, problem in skipped.items():             # the reason spans the score columns
        text[i + 1] = f"{rows[i][0].ljust(width)}  skipped: {problem}"
    return title + "\n\n" + "\n".join(text) + "\n"
