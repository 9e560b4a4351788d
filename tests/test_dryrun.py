"""`replay --notify-dry-run`: the daemon's outbox on replay time, timers at their own instants."""
from __future__ import annotations

from test_outbox import utc

from watchdog.alerting.dryrun import dry_run
from watchdog.model.config import parse_config
from watchdog.model.events import AlertTransition
from watchdog.model.timefmt import utc_text

CONFIG = parse_config('''
[receivers.desk]
type = "console"
[receivers.oncall]
type = "console"
[[routes]]
match = { severity = "critical" }
receivers = ["desk", "oncall"]
group_by = ["area"]
repeat_interval = "1d"
[[routes]]
receivers = ["desk"]
group_wait = "1m"
mute = ["weekends"]
[mute.weekends]
timezone = "America/New_York"
weekdays = ["saturday", "sunday"]
''', "watchdog.toml")


def t(rule: str, state: str, at: str, severity: str = "warning", date: str = "") -> AlertTransition:
    return AlertTransition(rule=rule, rule_hash="0" * 64, state=state, date=date or at[:10], value="9",
                           severity=severity, evaluated_at=utc_text(utc(at)), reason="threshold",
                           labels={"area": "repo"})


def test_each_receiver_gets_what_the_daemon_would_have_sent_when_it_would_have_sent_it():
    transitions = [
        t("sofr-over-iorb", "pending", "2025-10-30T12:00:00Z"),
        t("funding-stress", "firing", "2025-10-31T12:00:00Z", "critical"),
        t("effr-above-target", "firing", "2025-10-31T12:00:00Z", "critical"),
        t("sofr-over-iorb", "firing", "2025-10-31T12:00:00Z"),
        t("funding-stress", "resolved", "2025-11-03T12:00:00Z", "critical"),
        t("effr-above-target", "resolved", "2025-11-03T12:00:00Z", "critical"),
    ]
    sent = [(utc_text(at)[:19], n.receiver, n.reason, [(a.rule, a.state) for a in n.alerts])
            for at, n in dry_run(transitions, CONFIG, until="2025-11-04T00:00:00.000000Z")]
    both = [("effr-above-target", "firing"), ("funding-stress", "firing")]
    resolved = [("effr-above-target", "resolved"), ("funding-stress", "resolved")]
    sofr = [("sofr-over-iorb", "firing")]
    assert sent == [
        # critical: one group (area) to both receivers after the default 30s group_wait
        ("2025-10-31T12:00:30", "desk", "first-notification", both),
        ("2025-10-31T12:00:30", "oncall", "first-notification", both),
        # the warning goes to desk alone, after its route's 1m group_wait, then every 4h
        ("2025-10-31T12:01:00", "desk", "first-notification", sofr),
        ("2025-10-31T16:01:00", "desk", "repeat-interval", sofr),
        ("2025-10-31T20:01:00", "desk", "repeat-interval", sofr),
        ("2025-11-01T00:01:00", "desk", "repeat-interval", sofr),      # Friday 20:01 New York
        # the weekend mute (every route honours it unless it names its own) holds both groups
        # until Monday 00:00 New York, after the DST change: 05:00Z
        ("2025-11-03T05:00:00", "desk", "repeat-interval", both),
        ("2025-11-03T05:00:00", "desk", "repeat-interval", sofr),
        ("2025-11-03T05:00:00", "oncall", "repeat-interval", both),
        ("2025-11-03T09:00:00", "desk", "repeat-interval", sofr),
        ("2025-11-03T12:00:00", "desk", "resolved", resolved),
        ("2025-11-03T12:00:00", "oncall", "resolved", resolved),
        ("2025-11-03T13:00:00", "desk", "repeat-interval", sofr),
        ("2025-11-03T17:00:00", "desk", "repeat-interval", sofr),
        ("2025-11-03T21:00:00", "desk", "repeat-interval", sofr),
    ]


def test_cli_dry_run_on_the_example_history_shows_the_september_2019_spike_notifications(tmp_path):
    import json

    from click.testing import CliRunner

    from watchdog.cli import cli
    config = tmp_path / "watchdog.toml"
    config.write_text('[receivers.desk]\ntype = "console"\n[[routes]]\nreceivers = ["desk"]\n'
                      'group_by = ["area"]\nrepeat_interval = "1d"\n')
    result = CliRunner().invoke(cli, ["replay", "--db", "events.db.example", "--rules", "rules",
                                      "--notify-dry-run", "--config", str(config), "--json",
                                      "--since", "2019-09-18", "--until", "2019-09-18"])
    assert result.exit_code == 0, result.output
    sent = [json.loads(line) for line in result.output.splitlines()]
    assert {n["receiver"] for n in sent} == {"desk"}
    first = [n for n in sent if any(a["rule"] == "sofr-over-iorb" for a in n["alerts"])][0]
    assert first["at"].startswith("2019-09-18T12:00")             # 08:00 ET: SOFR's publication
    # the area's group: the news, with the repo alerts still firing since 2019-09-05 (reminded
    # per repeat_interval for as long as they fire, whatever their start date)
    assert {(a["rule"], a["state"], a["date"]) for a in first["alerts"]} == {
        ("sofr-over-iorb", "firing", "2019-09-17"), ("tgcr-over-iorb", "firing", "2019-09-05"),
        ("sofr-p99-over-iorb", "firing", "2019-09-05")}
    later = [n for n in sent if n["at"] > first["at"]]
    assert any(("effr-above-target", "firing") in {(a["rule"], a["state"]) for a in n["alerts"]}
               for n in later)                                      # 09:00 ET: EFFR's


def test_without_an_end_the_dry_run_still_sends_the_first_notification_of_the_last_firing():
    transitions = [t("sofr-over-iorb", "firing", "2025-10-31T12:00:00Z")]
    assert [n for _, n in dry_run(transitions, CONFIG)] == []          # stops at the last transition
    sent = [(utc_text(at)[:19], n.reason) for at, n in dry_run(transitions, CONFIG, settle=True)]
    assert sent == [("2025-10-31T12:01:00", "first-notification")]     # its route's 1m group_wait


def test_the_text_dry_run_ends_with_what_each_receiver_would_have_been_sent(capsys):
    from watchdog.cli.tuning_output import print_dry_run
    transitions = [t("sofr-over-iorb", "firing", "2025-10-31T12:00:00Z"),
                   t("sofr-over-iorb", "resolved", "2025-11-04T13:00:00Z")]
    print_dry_run(transitions, CONFIG, None, None, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    sent = [line for line in lines if " flush " in line]
    receivers = sorted({line.split()[3] for line in sent})
    summary = lines[len(lines) - len(receivers) - 1:]
    assert summary[0] == f"summary: {len(receivers)} receiver{'s' if len(receivers) != 1 else ''}"
    for receiver, line in zip(receivers, summary[1:]):
        mine = [x for x in sent if x.split()[3] == receiver]
        assert line.split()[0] == receiver
        assert f" {len(mine)} message{'s' if len(mine) != 1 else ''}, " in line
        assert f"first {mine[0][:16]} E" in line and f"last {mine[-1][:16]} E" in line
    print_dry_run([], CONFIG, None, None, as_json=False)
    assert capsys.readouterr().out == "summary: no receiver would have been sent anything\n"
    print_dry_run(transitions, CONFIG, None, None, as_json=True)
    assert "summary" not in capsys.readouterr().out           # JSON: one object per message, as before
