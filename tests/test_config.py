"""Daemon config: DESIGN's example parses; every problem is one FILE:LINE: field: message line,
and a secret pasted into the file is never echoed back."""
from __future__ import annotations

from datetime import timedelta

from pathlib import Path

import pytest

from watchdog.model.config import Config, load_config, parse_config
from watchdog.model.errors import ConfigError

DESIGN_EXAMPLE = '''\
[store]
path = "/var/lib/watchdog/events.db"
[rules]
paths = ["/etc/watchdog/rules"]
[sources.nyfed]                      # a missing table disables the source
base_url = "https://markets.newyorkfed.org"   # every source's endpoints are overridable
# poll_every = "2s"                  # optional: replaces the publication schedule (tests, demo)
[sources.fred]
base_url = "https://api.stlouisfed.org"       # JSON API, used when the key is present
csv_base_url = "https://fred.stlouisfed.org"  # keyless CSV otherwise
api_key_env = "FRED_API_KEY"
[sources.fiscaldata]
base_url = "https://api.fiscaldata.treasury.gov"
[sources.speeches]
feeds = ["https://www.federalreserve.gov/feeds/speeches.xml"]
pages = []                                    # index pages of Reserve Bank speeches
[receivers.desk]
type = "slack"
webhook_url_env = "SLACK_WEBHOOK_URL"         # or token_env + channel (+ api_base_url)
[receivers.oncall]
type = "email"
smtp_host = "smtp.example.org"
smtp_port = 587
tls = "starttls"                              # starttls | tls | none
username = "watchdog"
password_env = "SMTP_PASSWORD"
from = "watchdog@example.org"
to = ["desk@example.org"]
[receivers.screen]
type = "console"
[[routes]]
match = { severity = "critical" }
receivers = ["desk", "oncall"]
continue = false
group_by = ["rule"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "1d"
send_resolved = true
fallback = "screen"                           # when a receiver fails permanently
[[inhibit]]
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["area"]
[mute.weekends]
timezone = "America/New_York"
weekdays = ["saturday", "sunday"]
[daemon]
catchup_horizon = "3d"        # transitions about older observation dates are recorded, not sent
[http]
listen = "127.0.0.1:9464"
'''


def problems_of(text: str, name: str = "watchdog.toml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, name)
    return str(caught.value).split("\n")


def test_design_example_config_parses(tmp_path):
    path = tmp_path / "watchdog.toml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    config = load_config(str(path))
    assert isinstance(config, Config)
    assert config.store.path == "/var/lib/watchdog/events.db"
    assert config.rules.paths == ["/etc/watchdog/rules"]
    assert config.sources.nyfed.base_url == "https://markets.newyorkfed.org"
    assert config.sources.fred.api_key_env == "FRED_API_KEY"
    assert config.receivers["oncall"].from_ == "watchdog@example.org"
    assert config.receivers["oncall"].smtp_port == 587
    assert config.routes[0]["match"] == {"severity": "critical"}
    assert config.daemon.catchup_horizon == timedelta(days=3)        # parsed once, at load
    assert str(config.daemon.catchup_horizon) == "3d"                  # and still said as written


def test_empty_config_takes_the_defaults():
    config = parse_config("", "empty.toml")
    assert config.store.path == "events.db"
    assert config.sources.nyfed is None  # a missing table disables the source


def test_unknown_key_gives_file_line_and_dotted_field():
    text = DESIGN_EXAMPLE.replace('base_url = "https://markets.newyorkfed.org"',
                                  'base_url = "https://markets.newyorkfed.org"\nbogus = 1')
    from watchdog.model.config import NyFedConfig
    known = ", ".join(sorted(NyFedConfig.model_fields))
    assert problems_of(text) == [f"watchdog.toml:7: sources.nyfed.bogus: unknown key; known keys: {known}"]


def test_bad_values_are_each_reported_on_their_line():
    text = ('[daemon]\ncatchup_horizon = "soon"\n'
            '[receivers.oncall]\ntype = "email"\nsmtp_port = "x"\ntls = "ssl"\n'
            'smtp_host = "smtp.example.org"\nfrom = "w@example.org"\nto = ["d@example.org"]\n'
            '[receivers.pager]\ntype = "pagerduty"\n')
    assert problems_of(text) == [
        "watchdog.toml:2: daemon.catchup_horizon: bad duration 'soon': use a number and one of "
        "s, m, h, d, w (e.g. '6h')",
        "watchdog.toml:5: receivers.oncall.smtp_port: Input should be a valid integer, "
        "unable to parse string as an integer",
        "watchdog.toml:6: receivers.oncall.tls: unknown tls mode 'ssl' (starttls, tls or none)",
        "watchdog.toml:11: receivers.pager.type: unknown receiver type 'pagerduty' "
        "(slack, email or console)",
    ]


def test_missing_required_key_points_at_its_table():
    assert problems_of('\n[receivers.desk]\nwebhook_url_env = "HOOK"\n') == [
        "watchdog.toml:2: receivers.desk.type: required key is missing"]


def test_list_items_are_named_with_their_index():
    assert problems_of('[rules]\npaths = [\n  "a",\n  3,\n]\n') == [
        "watchdog.toml:4: rules.paths[1]: Input should be a valid string"]


def test_secret_pasted_into_the_config_is_refused_and_not_echoed():
    secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    text = f'[receivers.desk]\ntype = "slack"\nwebhook_url = "{secret}"\n'
    problems = problems_of(text)
    assert problems == [
        "watchdog.toml:3: receivers.desk.webhook_url: secrets do not belong in the config file: "
        "name an environment variable with webhook_url_env instead"]
    assert "SECRET" not in "\n".join(problems)


def test_env_name_holding_a_secret_is_refused_without_echoing_it():
    text = ('[receivers.desk]\ntype = "slack"\nwebhook_url_env = "https://hooks.slack.com/X/SECRET"\n'
            '[sources.fred]\napi_key_env = "abcdef0123456789 SECRET"\n')
    problems = problems_of(text)
    assert [p.split(": ")[1] for p in problems] == ["receivers.desk.webhook_url_env",
                                                     "sources.fred.api_key_env"]
    assert "SECRET" not in "\n".join(problems)


def test_a_pasted_secret_that_looks_like_a_name_is_refused_too():
    # DESIGN: *_env values are upper-case environment-variable names; a hex key or a password
    # pasted into the key would otherwise be recorded verbatim, forever, in config-loaded
    text = ('[sources.fred]\napi_key_env = "abcdef0123456789abcdef0123456789"\n'
            '[receivers.mail]\ntype = "email"\nsmtp_host = "smtp.example.org"\nfrom = "w@example.org"\n'
            'to = ["d@example.org"]\nusername = "w"\npassword_env = "CorrectHorseBatteryStaple"\n')
    problems = problems_of(text)
    assert [p.split(": ")[0:2] for p in problems] == [["watchdog.toml:2", "sources.fred.api_key_env"],
                                                       ["watchdog.toml:9", "receivers.mail.password_env"]]
    assert "abcdef0123" not in "\n".join(problems) and "CorrectHorse" not in "\n".join(problems)
    assert parse_config('[sources.fred]\napi_key_env = "FRED_API_KEY_2"\n', "ok.toml").sources.fred


def test_syntax_error_gives_file_and_line():
    assert problems_of('[store]\npath = "x"\n[http\n') == [
        "watchdog.toml:3: TOML syntax error: Expected ']' at the end of a table declaration "
        "(column 6)"]


def test_missing_file_and_bad_encoding_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml:1: cannot read: No such file"):
        load_config(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[store]\npath = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:1: not UTF-8 text: "):
        load_config(str(bad))


def test_lines_are_right_after_multiline_strings_and_arrays():
    text = '''\
[sources.speeches]
feeds = [
  "https://a.example/feed", # [sources.nyfed]
  "https://b.example/feed",
]
pages = []
[store]
path = """
[sources.nyfed]
bogus = 2
"""
[sources.nyfed]
base_url = "https://markets.newyorkfed.org"
rates = ["sofr"]
lookback_days = 0
'''
    assert problems_of(text) == [
        "watchdog.toml:15: sources.nyfed.lookback_days: Input should be greater than or equal to 1"]


def test_config_file_path_is_accepted_as_path_object(tmp_path):
    path = Path(tmp_path) / "c.toml"
    path.write_text('[http]\nlisten = "127.0.0.1:1"\n', encoding="utf-8")
    assert load_config(path).http.listen == "127.0.0.1:1"


# ---- routes, inhibit rules and mute intervals: typed, strict, cross-checked ----

def test_design_example_routes_inhibit_and_mute_are_typed_models():
    from watchdog.model.config import InhibitRule, MuteInterval, Route
    config = parse_config(DESIGN_EXAMPLE, "watchdog.toml")
    (route,) = config.routes
    assert isinstance(route, Route)
    assert (route.match, route.receivers, route.continue_, route.group_by) == (
        {"severity": "critical"}, ["desk", "oncall"], False, ["rule"])
    assert (route.group_wait, route.group_interval, route.repeat_interval) == (
        timedelta(seconds=30), timedelta(minutes=5), timedelta(days=1))
    assert (route.send_resolved, route.fallback, route.mute) == (True, "screen", None)
    assert route["continue"] is False and route.get("match_re") == {}   # the old dict access
    (rule,) = config.inhibit
    assert isinstance(rule, InhibitRule)
    assert (rule.source, rule.target, rule.equal) == (
        {"severity": "critical"}, {"severity": "warning"}, ["area"])
    weekends = config.mute["weekends"]
    assert isinstance(weekends, MuteInterval)
    assert (weekends.timezone, weekends.weekdays, weekends.weekday_numbers()) == (
        "America/New_York", ["saturday", "sunday"], frozenset({5, 6}))
    # the config-loaded dump keeps the TOML key names
    assert config.model_dump(mode="json", by_alias=True)["routes"][0]["continue"] is False


def test_route_defaults_follow_alertmanager():
    config = parse_config('[receivers.screen]\ntype = "console"\n'
                          '[[routes]]\nreceivers = ["screen"]\n')
    route = config.routes[0]
    assert (route.match, route.group_by, route.group_wait, route.group_interval,
            route.repeat_interval, route.send_resolved) == (
        {}, ["rule"], timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=4), True)


def test_bad_route_duration_is_reported_on_its_line():
    text = DESIGN_EXAMPLE.replace('group_interval = "5m"', 'group_interval = "5 minutes"')
    assert problems_of(text) == [
        "watchdog.toml:37: routes[0].group_interval: bad duration '5 minutes': use a number and "
        "one of s, m, h, d, w (e.g. '6h')"]
    text = DESIGN_EXAMPLE.replace('repeat_interval = "1d"', 'repeat_interval = "0s"')
    assert problems_of(text) == [
        "watchdog.toml:38: routes[0].repeat_interval: must be longer than zero"]


def test_unknown_receiver_names_in_a_route_are_each_reported_on_their_line():
    text = DESIGN_EXAMPLE.replace('receivers = ["desk", "oncall"]',
                                  'receivers = [\n  "desk",\n  "pager",\n]').replace(
        'fallback = "screen"', 'fallback = "sms"')
    assert problems_of(text) == [
        "watchdog.toml:35: routes[0].receivers[1]: unknown receiver 'pager'; configured "
        "receivers: desk, oncall, screen",
        "watchdog.toml:43: routes[0].fallback: unknown receiver 'sms'; configured receivers: "
        "desk, oncall, screen",
    ]


def test_route_references_to_mutes_and_resolved_receivers_are_checked():
    text = ('[receivers.desk]\ntype = "console"\n[receivers.oncall]\ntype = "console"\n'
            '[[routes]]\nreceivers = ["desk"]\nsend_resolved = ["oncall"]\nmute = ["nights"]\n'
            'fallback = "desk"\n'
            '[mute.weekends]\nweekdays = ["saturday", "sunday"]\n')
    assert problems_of(text) == [
        "watchdog.toml:7: routes[0].send_resolved[0]: 'oncall' is not one of this route's "
        "receivers (desk)",
        "watchdog.toml:8: routes[0].mute[0]: unknown mute interval 'nights'; configured: weekends",
        "watchdog.toml:9: routes[0].fallback: 'desk' is already a receiver of this route",
    ]


def test_routes_without_receivers_configured_name_the_fix():
    assert problems_of('[[routes]]\nreceivers = ["desk"]\n') == [
        "watchdog.toml:2: routes[0].receivers[0]: unknown receiver 'desk'; configured "
        "receivers: none: add a [receivers.NAME] table"]


def test_route_match_values_keys_and_regexes_are_validated():
    text = ('[receivers.desk]\ntype = "console"\n'
            '[[routes]]\nmatch = { severity = "crit" }\nmatch_re = { rule = "sofr-(" }\n'
            'receivers = ["desk"]\ncontinu = true\nsend_resolved = "yes"\n')
    problems = problems_of(text)
    assert problems[0] == ("watchdog.toml:4: routes[0].match: unknown severity 'crit' "
                           "(info, warning, critical)")
    assert problems[1].startswith("watchdog.toml:5: routes[0].match_re: rule: bad regular "
                                  "expression: missing ): sofr-( (RE2 syntax")
    assert problems[2].startswith("watchdog.toml:7: routes[0].continu: unknown key; known keys: "
                                  "continue, fallback, group_by, group_interval")
    assert problems[3] == ("watchdog.toml:8: routes[0].send_resolved: must be true, false or a "
                           "list of this route's receivers")


def test_inhibit_rules_need_both_sides():
    assert problems_of('[[inhibit]]\nsource = { severity = "critical" }\nequal = ["area"]\n') == [
        "watchdog.toml:1: inhibit[0]: needs target (or target_re) matchers"]


def test_mute_intervals_are_validated():
    text = ('[mute.nights]\ntimezone = "America/NewYork"\nweekdays = ["Sat"]\n'
            'times = [{ start = "17:00", end = "25:00" }]\ncalendar = "nyse"\n'
            '[mute.always]\ntimezone = "UTC"\n')
    assert problems_of(text) == [
        "watchdog.toml:2: mute.nights.timezone: unknown IANA time zone 'America/NewYork' "
        "(e.g. America/New_York)",
        "watchdog.toml:3: mute.nights.weekdays: bad weekday 'Sat': use lowercase English names "
        "(monday … sunday) or a range such as 'monday:friday'",
        "watchdog.toml:4: mute.nights.times[0].end: bad time '25:00': use HH:MM, 00:00 to 23:59 "
        "(end may be 24:00)",
        "watchdog.toml:5: mute.nights.calendar: Input should be 'sifma', 'fed' or 'daily'",
        "watchdog.toml:6: mute.always: needs weekdays, times or calendar (an interval without "
        "them would mute every notification)",
    ]


def test_the_commented_receivers_and_routes_of_the_shipped_config_are_valid_when_uncommented():
    from pathlib import Path

    from watchdog.model.config import parse_config
    text = (Path(__file__).resolve().parent.parent / "deploy" / "watchdog.toml").read_text()
    start = text.index("# [receivers.desk]")
    end = text.index('# weekdays = ["saturday", "sunday"]') + len('# weekdays = ["saturday", "sunday"]')
    block = "\n".join(line[2:] if line.startswith("# ") else ("" if line == "#" else line)
                      for line in text[start:end].splitlines())
    config = parse_config(text[:start] + block + text[end:], "deploy/watchdog.toml")
    assert [r.name for r in config.routes] == ["critical", "warnings", "speeches"]
    assert sorted(config.receivers) == ["desk", "oncall", "screen"] and "weekends" in config.mute


# ---- receivers: one model per type, each checked at load (FILE:LINE), not at send ----

def test_design_example_receivers_are_typed_models():
    from watchdog.model.config import ConsoleReceiver, EmailReceiver, SlackReceiver
    receivers = parse_config(DESIGN_EXAMPLE, "watchdog.toml").receivers
    desk, oncall, screen = receivers["desk"], receivers["oncall"], receivers["screen"]
    assert isinstance(desk, SlackReceiver) and (desk.mode, desk.webhook_url_env) == ("webhook", "SLACK_WEBHOOK_URL")
    assert isinstance(oncall, EmailReceiver) and (oncall.tls, oncall.to) == ("starttls", ["desk@example.org"])
    assert isinstance(screen, ConsoleReceiver)
    assert [r.secret_envs for r in (desk, oncall, screen)] == [("SLACK_WEBHOOK_URL",), ("SMTP_PASSWORD",), ()]


def test_a_slack_receiver_with_both_a_webhook_and_a_token_is_refused_at_load(tmp_path):
    path = tmp_path / "watchdog.toml"
    path.write_text('[receivers.screen]\ntype = "console"\n'
                    '[receivers.desk]\ntype = "slack"\nwebhook_url_env = "SLACK_WEBHOOK_URL"\n'
                    'token_env = "SLACK_BOT_TOKEN"\nchannel = "C0123ABCD"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"{path}:3: receivers.desk: set webhook_url_env or token_env + channel, "
                                 "not both")


def test_an_email_key_on_a_slack_receiver_is_refused_at_load():
    text = '[receivers.desk]\ntype = "slack"\nwebhook_url_env = "SLACK_WEBHOOK_URL"\nsmtp_port = 587\n'
    assert problems_of(text) == [
        "watchdog.toml:4: receivers.desk.smtp_port: a key of email receivers, not of slack receivers; "
        "known keys: api_base_url, channel, token_env, type, webhook_url_env"]


def test_a_slack_key_on_an_email_receiver_is_refused_at_load():
    text = ('[receivers.oncall]\ntype = "email"\nsmtp_host = "smtp.example.org"\nfrom = "w@example.org"\n'
            'to = ["desk@example.org"]\nchannel = "C0123ABCD"\n')
    assert problems_of(text) == [
        "watchdog.toml:6: receivers.oncall.channel: a key of slack receivers, not of email receivers; "
        "known keys: from, password_env, smtp_host, smtp_port, tls, to, type, username"]


def test_incomplete_receivers_are_refused_at_load():
    text = ('[receivers.desk]\ntype = "slack"\n'
            '[receivers.bot]\ntype = "slack"\ntoken_env = "SLACK_BOT_TOKEN"\n'
            '[receivers.oncall]\ntype = "email"\nsmtp_host = ""\nto = []\n'
            '[receivers.mail]\ntype = "email"\nsmtp_host = "smtp.example.org"\nfrom = "w@example.org"\n'
            'to = ["desk@example.org"]\nusername = "watchdog"\n')
    assert problems_of(text) == [
        "watchdog.toml:1: receivers.desk: a slack receiver needs webhook_url_env, or token_env + channel",
        "watchdog.toml:3: receivers.bot: token_env needs a channel (its ID, e.g. C0123456789)",
        "watchdog.toml:6: receivers.oncall.from: required key is missing",
        "watchdog.toml:8: receivers.oncall.smtp_host: must not be empty",
        "watchdog.toml:9: receivers.oncall.to: needs at least one address",
        "watchdog.toml:10: receivers.mail: username needs password_env (the variable holding the SMTP "
        "password)",
    ]


def test_check_reports_a_receiver_problem_as_file_line(tmp_path):
    from click.testing import CliRunner

    from watchdog.cli import cli
    path = tmp_path / "watchdog.toml"
    path.write_text('[receivers.desk]\ntype = "slack"\nwebhook_url_env = "SLACK_WEBHOOK_URL"\n'
                    'token_env = "SLACK_BOT_TOKEN"\nchannel = "C0123ABCD"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert result.exit_code == 1
    assert f"{path}:1: receivers.desk: set webhook_url_env or token_env + channel, not both" in result.output


def test_a_config_recorded_before_receivers_were_typed_reads_back_the_same():
    """config-loaded events of older daemons hold every receiver field, unset ones as null."""
    config = parse_config(DESIGN_EXAMPLE, "watchdog.toml")
    unset = {"webhook_url_env": None, "token_env": None, "channel": None, "api_base_url": None,
             "smtp_host": None, "smtp_port": None, "tls": None, "username": None,
             "password_env": None, "from": None, "to": []}
    recorded = config.model_dump(mode="json", by_alias=True)
    recorded["receivers"] = {name: {**unset, **receiver}
                             for name, receiver in recorded["receivers"].items()}
    assert Config.model_validate(recorded) == config
