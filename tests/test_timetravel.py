"""Live equals replay, on the real daemon: December 2025 served on a simulated clock by local
stand-ins of the NY Fed, FRED and Fiscal Data APIs, with the default rules, a console receiver
and a four-day downtime in the middle (tests/timetravel.py). What the daemon recorded and sent
must be what `watchdog replay` and `watchdog replay --notify-dry-run` say on the same log, but for
the catch-up after the downtime, each difference of which is named.

About 30 s on two cores (the simulated month ~22 s, the two replays ~5 s side by side); `make
soak` runs longer windows (soak/timetravel.py)."""
from __future__ import annotations

import pytest

from timetravel import EXPLAINED_REASONS, Window, time_travel

# down from 12-26 12:00 to 12-30 12:00 New York: across the year-end episode (SOFR over IORB
# from 12-29, published 12-30 08:00 while the daemon was down)
WINDOW = Window("2025-12-01", "2025-12-31", down_days=4, down_at="2025-12-26")


@pytest.mark.timeout(240)
async def test_the_live_daemon_records_and_sends_what_replay_says(tmp_path):
    lines: list[str] = []
    report = await time_travel(WINDOW, tmp_path, log=lines.append)
    text = "\n".join(lines)

    assert lines[-1] == report.figure and report.figure.startswith("LIVE-REPLAY 2025-12-01..2025-12-31: ")
    # not vacuous: the window has transitions and notifications on both sides, and the restarted
    # daemon caught up on facts published while it was down
    assert len(report.replay) >= 10 and len(report.live_compared) >= 10, text
    assert report.notes.pairs >= 10, text
    assert report.caught_up >= 10, text
    # each explained difference carries one of the named catch-up reasons, and says it
    for d in report.explained:
        assert d.explained in EXPLAINED_REASONS, d.line()
        assert d.line().lstrip().startswith(f"[{d.explained}] "), d.line()
    unexplained = len(report.unexplained)
    assert unexplained == 0, text
