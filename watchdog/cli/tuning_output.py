"""The output side of the tuning commands (`replay`, `replay --diff/--report/--notify-dry-run`,
`backtest --set`): streaming lines to stdout, the progress bar on a terminal, tables. Kept out of
watchdog/cli/tuning.py so the command definitions stay thin; nothing here decides anything (replay,
rulediff, backtest, sweep and dryrun do)."""
from __future__ import annotations

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
    for at, n in dry_run(transitions, config or Config(), until=until, settle=True):
        day = at.astimezone(NEW_YORK).date().isoformat()
        if (lo and day < lo) or (hi and day > hi):
            continue
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


class ReplayRun:
    """One ``watchdog replay`` invocation: options resolved, output streamed to stdout."""

    def __init__(self, ruleset, as_json: bool, cutoff: str | None, lo: str | None, hi: str | None):
        self.ruleset, self.as_json, self.cutoff, self.lo, self.hi = ruleset, as_json, cutoff, lo, hi
        self.collector = None
        self.bar: _Progress | None = None
        self.recorded_by: str | None = None

    def wanted(self, t) -> bool:
        return not ((self.lo and t.date < self.lo) or (self.hi and t.date > self.hi))

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
        for t in self.transitions(store, self.ruleset, "replay", collect=keep):
            if not self.wanted(t) or (self.as_json and t.state == "pending"):
                continue                      # DESIGN: pending is not printed in JSON
            if keep:
                shown.append(t)
            if to_terminal and self.bar:
                self.bar.clear()               # the bar and the lines share the screen
            click.echo(transition_json(t) if self.as_json else timeline_line(t))
        return shown

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

    def write_report(self, path: str, shown: list, db: str) -> None:
        from datetime import date

        from watchdog.tuning.report import build_report
        period = " ".join(x for x in (f"from {self.lo}" if self.lo else "", f"to {self.hi}" if self.hi else "",
                                      f"as of {self.cutoff}" if self.cutoff else "") if x)
        page = build_report(series=self.collector.series(), ruleset=self.ruleset, transitions=shown,
                            title=f"watchdog replay of {Path(db).name} {period}".strip(),
                            since=date.fromisoformat(self.lo) if self.lo else None,
                            until=date.fromisoformat(self.hi) if self.hi else None)
        Path(path).write_text(page, encoding="utf-8")
        click.echo(f"report: {path}", err=True)


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
    from watchdog.tuning.rulediff import known_text
    value = "" if t.value is None else f" value={t.value}"
    head = f"{t.date}  {t.state:<8} {t.rule:<24} {t.severity:<8}"
    return f"{head} known {known_text(t)}{value}  {t.summary or t.reason}"


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


def sweep_output(results: list, ruleset, variants, as_json: bool) -> str:
    """One row (or JSON line) per variant of ``results`` (``app.sweep_results``): the swept
    rules (with the composites over them) and the whole set."""
    from watchdog.tuning.backtest import (
        fmt_lead,
        fmt_ratio,
        score_json,
        scored_rules,
        table,
    )
    from watchdog.tuning.sweep import affected_ids, swept_ids
    group = sorted(r for r in affected_ids(ruleset, swept_ids(variants)) if r in scored_rules(ruleset))
    rows, lines = [], []
    for variant, result in results:
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
    title = (f"sweep: {len(variants)} variants, one pass; swept rules and the composites over them: "
             f"{', '.join(group) or 'none scored'}; then all rules")
    return f"{title}\n\n{table(header, rows)}\n"
