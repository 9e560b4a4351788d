"""Slack receiver: golden Block Kit messages, and delivery against a fake Slack on 127.0.0.1
(the webhook path and the Web API methods the notifier calls), with an injected sleep."""
from __future__ import annotations

import json
import logging
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from fakes import CHANNEL, FakeSlack

from watchdog.model.config import SlackReceiver
from watchdog.model.display import sparkline
from watchdog.model.errors import NotifyError
from watchdog.model.events import ToldAlert
from watchdog.notify import SendResult
from watchdog.notify.slack.format import format_group_message, format_slack_message
from watchdog.notify.slack.send import SlackNotifier

GOLDEN = Path(__file__).parent / "golden"

# Canary secrets: must never show up in a result, a log line, an exception or a repr.
WEBHOOK_TAIL = "T0CANARY1/B0CANARY2/canaryWebhookSecret9f3kQ"
TOKEN = "xoxb-canary-0000-token-7c1d2e9a"
CANARIES = (WEBHOOK_TAIL, "canaryWebhookSecret9f3kQ", TOKEN)

# ---- real alerts (replay of events.db.example with rules/) ----

def told(alert: ToldAlert, **changes) -> ToldAlert:
    """``alert`` with ``changes``, validated as a receiver is handed it."""
    return ToldAlert.model_validate({**alert.model_dump(), **changes})


FIRING = ToldAlert.model_validate({
    "rule": "sofr-over-iorb",
    "rule_hash": "ea2965bd75fbb5790ab02e158a8c80f8d8adfe3d8616763bcdf7cee319380996",
    "state": "firing", "date": "2019-09-17", "value": "315", "severity": "warning", "threshold": "10",
    "inputs": {
        "iorb": {"date": "2019-08-01", "value": "2.1", "published_at": "2019-07-31T18:00:00.000000Z"},
        "sofr": {"date": "2019-09-17", "value": "5.25", "published_at": "2019-09-18T12:00:00.000000Z"},
    },
    "evaluated_at": "2019-09-18T12:00:00.000000Z", "reason": "315 > 10 for 2 business days",
    "summary": "SOFR is 315 bp over IORB", "labels": {"area": "repo"}, "cause_seq": 366,
    "deadline": "", "link": "", "sentences": [],
    "description": "Secured overnight funding trades above the rate the Fed pays on reserves: "
                   "repo cash is scarce.",
})
# bp(sofr - iorb) on the business days 2019-09-03 .. 2019-09-17
FIRING_SPARK = ["7", "11", "11", "5", "2", "4", "5", "10", "10", "33", "315"]

RESOLVED = ToldAlert.model_validate({
    "rule": "sofr-over-iorb",
    "rule_hash": "ea2965bd75fbb5790ab02e158a8c80f8d8adfe3d8616763bcdf7cee319380996",
    "state": "resolved", "date": "2019-09-27", "value": "2", "severity": "warning", "threshold": "10",
    "inputs": {
        "iorb": {"date": "2019-09-19", "value": "1.8", "published_at": "2019-09-18T18:00:00.000000Z"},
        "sofr": {"date": "2019-09-27", "value": "1.82", "published_at": "2019-09-30T12:00:00.000000Z"},
    },
    "evaluated_at": "2019-09-30T12:00:00.000000Z", "reason": "recovered: 2 < 5",
    "summary": "SOFR is 2 bp over IORB", "labels": {"area": "repo"}, "cause_seq": 374,
    "deadline": "", "link": "", "sentences": [],
})
# bp(sofr - iorb) 2019-09-17 .. 2019-09-27 (IOER cut to 1.80 on 2019-09-19)
RESOLVED_SPARK = ["315", "45", "15", "6", "5", "16", "21", "5", "2"]

# The engine's flag, plus the speech's URL: the stored NY Fed speech has none (index-page source).
KEYWORD_FLAG = ToldAlert.model_validate({
    "rule": "money-market-strains",
    "rule_hash": "a9a645680ada9e6df281541f77f8237ddc05d2dfb8f5c36d6d95737b27cfa289",
    "state": "flagged", "date": "2019-10-17", "value": "5", "severity": "info", "threshold": None,
    "inputs": {}, "evaluated_at": "2019-10-18T03:59:59.999999Z",
    "reason": "5 hits: money market near strain, money market near turmoil, money market near "
              "volatility, repo market near turmoil",
    "summary": "John C. Williams (2019-10-17) on money-market strains: \"repo market near turmoil\" "
               "in Money Markets and the Federal Funds Rate: The Path Forward",
    "labels": {"area": "money-markets", "topic": "speech"}, "cause_seq": 23965, "deadline": "",
    "link": "https://www.newyorkfed.org/newsevents/speeches/2019/wil191017",
    "sentences": [
        "It’s the recent turmoil in the repo markets and the Fed’s actions to address it.",
        "I will then go over the money market turmoil from a month ago that led the New York Fed to "
        "conduct open market operations to stabilize short-term interest rates.",
        "A confluence of events contributed to the volatility in money markets a month ago.",
        "But one telling observation is that when increases in the Fed’s non-reserve liabilities "
        "caused the level of reserves to fall well below those prevailing during summer and early "
        "September, strains in money markets emerged.",
        "At the same time that we saw turmoil in the repo market, we saw a temporary spike in SOFR.",
    ],
})

FIRING_KEY = "notify/desk/alert/sofr-over-iorb/ea2965bd75fbb579/firing/2019-09-17/366"
RESOLVED_KEY = "notify/desk/alert/sofr-over-iorb/ea2965bd75fbb579/resolved/2019-09-27/374"


def texts(message: dict) -> list[str]:
    """Every mrkdwn text of a message, top-level blocks then attachment blocks."""
    blocks = message["blocks"] + [b for a in message["attachments"] for b in a["blocks"]]
    out = []
    for block in blocks:
        if block["type"] == "section":
            out.append(block["text"]["text"])
        elif block["type"] == "context":
            out += [e["text"] for e in block["elements"]]
    return out


def shown(text: str) -> str:
    return text.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")


# ---- formatting ----

@pytest.mark.parametrize("name, alert, values", [
    ("firing_sofr_over_iorb", FIRING, FIRING_SPARK),
    ("resolved", RESOLVED, RESOLVED_SPARK),
    ("keyword_flag", KEYWORD_FLAG, None),
])
def test_message_matches_its_golden_file(name, alert, values):
    got = json.dumps(format_slack_message(alert, sparkline_values=values), indent=2,
                     ensure_ascii=False) + "\n"
    path = GOLDEN / f"slack_{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == got


def test_a_group_flush_is_one_message_with_an_attachment_per_alert_golden():
    message = format_group_message([FIRING, RESOLVED, KEYWORD_FLAG], group='desk/routes[0]/{area="repo"}')
    got = json.dumps(message, indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / "slack_group.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == got
    assert [a["color"] for a in message["attachments"]] == [
        format_slack_message(a)["attachments"][0]["color"] for a in (FIRING, RESOLVED, KEYWORD_FLAG)]
    assert message["blocks"][0]["text"]["text"].startswith("*3 alerts* · 1 firing, 1 flagged, 1 resolved")


def test_a_group_of_more_alerts_than_fit_says_how_many_more():
    message = format_group_message([FIRING] * 25)
    assert len(message["attachments"]) == 21
    assert "5 more alerts" in message["attachments"][-1]["blocks"][0]["text"]["text"]
    assert len(message["text"]) <= 3000


def test_sparkline_scales_from_the_lowest_to_the_highest_bar():
    assert sparkline(["1", "2", "3", "4", "5", "6", "7", "8"]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0, 315]) == "▁█"
    assert sparkline(["-4", "2", "None", None, "8"]) == "▁▅  █"
    assert sparkline(["5", "5", "5"]) == "▄▄▄"
    assert sparkline([]) == "" and sparkline([None, "x"]) == ""


def test_firing_shows_value_against_threshold_in_basis_points():
    message = format_slack_message(FIRING)
    assert "*315 bp &gt; 10 bp* · for 2 business days" in texts(message)[1]
    assert message["text"] == ("🔥 FIRING (warning) sofr-over-iorb 2019-09-17: "
                               "SOFR is 315 bp over IORB (315 bp &gt; 10 bp)")


def test_colour_bar_follows_severity_and_resolution():
    def colour(**changes):
        return format_slack_message(told(FIRING, **changes))["attachments"][0]["color"]
    assert colour(severity="critical") == "#D0021B"
    assert colour(severity="warning") == "#F2A900"
    assert colour(severity="info") == "#1D74F5"
    assert colour(state="resolved", severity="critical") == "#2EB67D"


def test_resolved_message_reads_as_a_recovery():
    message = format_slack_message(RESOLVED)
    assert texts(message)[0] == "✅ *RESOLVED* · was warning\n*sofr-over-iorb* · 2019-09-27"
    assert "*Recovered:* 2 bp &lt; 5 bp\nalert level 10 bp" in texts(message)[1]
    removed = format_slack_message(told(RESOLVED, reason="rule-removed", value=None))
    assert "*Resolved:* the rule was removed" in texts(removed)[1]


def test_lines_fit_a_phone_screen():
    """Inputs, the value line and the sparkline are short lines, no padded tables."""
    for alert, values in ((FIRING, FIRING_SPARK), (RESOLVED, RESOLVED_SPARK)):
        for text in texts(format_slack_message(alert, sparkline_values=values))[1:]:
            for line in shown(text).splitlines():
                if line.startswith(("SOFR is", "> ")) or line == f"_{alert.description}_":
                    continue                                    # prose: Slack wraps it
                assert len(line) <= 40, line
                assert "  " not in line.strip(), line           # no column padding


def test_keyword_flag_quotes_trimmed_sentences_and_links_the_speech():
    long = "Reserves " + "are ample and " * 30 + "remain so."
    message = format_slack_message(told(KEYWORD_FLAG, sentences=[long] + KEYWORD_FLAG.sentences))
    quotes = next(t for t in texts(message) if t.startswith("> "))
    lines = quotes.splitlines()
    assert len(lines) == 4 and lines[-1] == "_+3 more sentences_"
    assert lines[0].endswith("…") and len(lines[0]) <= 2 + 200
    assert lines[1] == "> It’s the recent turmoil in the repo markets and the Fed’s actions to address it."
    assert "🔗 <https://www.newyorkfed.org/newsevents/speeches/2019/wil191017|Read the speech>" in texts(message)


def test_market_alert_link_is_labelled_source():
    message = format_slack_message(told(FIRING, link="https://www.newyorkfed.org/markets/reference-rates/sofr"))
    assert "🔗 <https://www.newyorkfed.org/markets/reference-rates/sofr|Source>" in texts(message)


def test_text_cannot_mention_the_channel_or_inject_links():
    message = format_slack_message(told(FIRING, summary="<!channel> look & <http://x|y>",
                                        link="javascript:alert(1)"))
    joined = "\n".join(texts(message)) + message["text"]
    assert "<!channel>" not in joined and "<http://x|y>" not in joined
    assert "&lt;!channel&gt; look &amp; &lt;http://x|y&gt;" in texts(message)[1]
    assert "javascript" not in joined


class Sleeps(list):
    """The injected sleep: records each wait, returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def slack(aiohttp_server, monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    return await FakeSlack(token=TOKEN, webhooks={WEBHOOK_TAIL}).serve(aiohttp_server)


def webhook_notifier(fake: FakeSlack, sleep: Sleeps, **kwargs) -> SlackNotifier:
    config = SlackReceiver(type="slack", webhook_url_env="SLACK_WEBHOOK_URL")
    env = {"SLACK_WEBHOOK_URL": f"{fake.base}/services/{WEBHOOK_TAIL}"}
    return SlackNotifier("desk", config, env, sleep=sleep, timeout=kwargs.pop("timeout", 0.3), **kwargs)


def bot_notifier(fake: FakeSlack, sleep: Sleeps, env: dict | None = None, **kwargs) -> SlackNotifier:
    config = SlackReceiver(type="slack", token_env="SLACK_BOT_TOKEN", channel=CHANNEL,
                           api_base_url=f"{fake.base}/api/")
    env = {"SLACK_BOT_TOKEN": TOKEN} if env is None else env
    return SlackNotifier("desk", config, env, sleep=sleep, timeout=kwargs.pop("timeout", 0.3), **kwargs)


# ---- webhook mode ----

async def test_webhook_posts_the_formatted_message(slack):
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert result == SendResult("sent", detail="posted via webhook")
    [posted] = slack.webhook_posts
    assert posted["text"] == format_slack_message(FIRING)["text"]
    assert posted["attachments"][0]["color"] == "#F2A900"
    assert posted["unfurl_links"] is False and sleeps == []


async def test_webhook_429_waits_what_retry_after_asks_then_succeeds(slack):
    slack.script["webhook"] = [("status", 429, "rate_limited", {"Retry-After": "7"})]
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent" and "after 2 attempts" in result.detail
    assert sleeps == [7.0]
    assert len(slack.webhook_posts) == 1


async def test_webhook_rate_limit_longer_than_max_wait_is_handed_back_to_the_outbox(slack):
    slack.script["webhook"] = [("status", 429, "rate_limited", {"Retry-After": "120"})]
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps, max_wait=30).send(FIRING, key=FIRING_KEY)
    assert (result.outcome, result.permanent, result.retry_after) == ("failed", False, 120.0)
    assert sleeps == [] and "wait 120s" in result.detail


async def test_webhook_500_twice_then_success_backs_off(slack):
    slack.script["webhook"] = [("status", 500, "rollup_error", {}), ("status", 503, "", {})]
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent" and "after 3 attempts" in result.detail
    assert sleeps == [1.0, 2.0]
    assert len(slack.calls) == 3


@pytest.mark.parametrize("status, body, hint", [
    (404, "no_service", "the webhook was disabled or removed"),
    (400, "invalid_payload", "Slack could not read the message"),
    (404, "channel_not_found", "channel no longer exists"),
    (410, "channel_is_archived", "archived"),
])
async def test_webhook_4xx_is_a_permanent_failure(slack, status, body, hint):
    slack.script["webhook"] = [("status", status, body, {})]
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert (result.outcome, result.permanent) == ("failed", True)
    assert result.detail.startswith(f"HTTP {status} {body}: ") and hint in result.detail
    assert sleeps == [] and len(slack.calls) == 1


async def test_webhook_timeouts_end_unknown_after_the_attempts(slack):
    slack.script["webhook"] = [("hang", 2), ("hang", 2)]
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps, timeout=0.2, max_attempts=2).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "unknown" and not result.permanent
    assert "no answer from Slack within 0.2s (after 2 attempts)" in result.detail
    assert sleeps == [1.0]


async def test_webhook_timeout_then_success_may_duplicate(slack):
    """A post that landed but answered too late is posted again: at-least-once."""
    slack.script["webhook"] = [("land_then_hang", 2)]
    sleeps = Sleeps()
    result = await webhook_notifier(slack, sleeps, timeout=0.2).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent"
    assert len(slack.webhook_posts) == 2


async def test_unreachable_slack_is_a_retryable_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = SlackReceiver(type="slack", webhook_url_env="SLACK_WEBHOOK_URL")
    env = {"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{port}/services/{WEBHOOK_TAIL}"}
    sleeps = Sleeps()
    result = await SlackNotifier("desk", config, env, sleep=sleeps, max_attempts=2).send(FIRING, key=FIRING_KEY)
    assert (result.outcome, result.permanent) == ("failed", False)
    assert result.detail.startswith("cannot connect to Slack") and sleeps == [1.0]


async def test_webhook_cannot_reconcile():
    config = SlackReceiver(type="slack", webhook_url_env="SLACK_WEBHOOK_URL")
    notifier = SlackNotifier("desk", config, {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x/y/z"})
    assert not notifier.can_reconcile
    assert await notifier.find_delivered(FIRING_KEY) is None


# ---- secrets and config ----

async def test_missing_secret_is_a_permanent_failure_naming_the_variable():
    config = SlackReceiver(type="slack", webhook_url_env="SLACK_WEBHOOK_URL")
    notifier = SlackNotifier("desk", config, {})
    result = await notifier.send(FIRING, key=FIRING_KEY)
    assert (result.outcome, result.permanent) == ("failed", True)
    assert result.detail == ("SLACK_WEBHOOK_URL is not set (environment, or "
                             "$CREDENTIALS_DIRECTORY/slack_webhook_url)")
    assert notifier.problem == result.detail


async def test_credentials_directory_supplies_the_token(slack, tmp_path):
    (tmp_path / "slack_bot_token").write_text(TOKEN + "\n", encoding="utf-8")
    notifier = bot_notifier(slack, Sleeps(), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    result = await notifier.send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent"


async def test_canary_secrets_appear_nowhere(slack, caplog, capsys):
    """Webhook URL and token through success, 429, 5xx, permanent errors, a timeout and a
    failed history read: not in any result, log record (debug included), exception or repr."""
    caplog.set_level(logging.DEBUG)
    sdk_log = logging.getLogger("watchdog.notify.slack.send.sdk")
    sdk_log.setLevel(logging.DEBUG)            # someone debugging: the filter still drops them
    try:
        sleeps = Sleeps()
        hook = webhook_notifier(slack, sleeps, timeout=0.2, max_attempts=2)
        bot = bot_notifier(slack, sleeps, timeout=0.2, max_attempts=2)
        wrong = bot_notifier(slack, sleeps, env={"SLACK_BOT_TOKEN": TOKEN + "-revoked"})
        slack.script["webhook"] = [("status", 429, "rate_limited", {"Retry-After": "1"}),
                                   ("status", 500, f"boom {WEBHOOK_TAIL}", {}),
                                   ("status", 400, f"invalid_payload {WEBHOOK_TAIL}", {}),
                                   ("hang", 2), ("hang", 2)]
        results = [await hook.send(FIRING, key=FIRING_KEY) for _ in range(4)]
        slack.script["chat.postMessage"] = [("status", 429, {"ok": False, "error": "ratelimited"},
                                             {"Retry-After": "1"})]
        results += [await bot.send(FIRING, key=FIRING_KEY), await wrong.send(FIRING, key=FIRING_KEY)]
        with pytest.raises(NotifyError) as failed:
            await wrong.find_delivered(FIRING_KEY)
        everything = "\n".join([caplog.text, *map(repr, results), repr(hook), repr(bot), str(hook),
                                str(failed.value), repr(failed.value), *capsys.readouterr()])
    finally:
        sdk_log.setLevel(logging.INFO)
    assert [r.outcome for r in results] == ["failed", "failed", "unknown", "sent", "sent", "failed"]
    assert "slack desk" in caplog.text                        # we did log, just not secrets
    for canary in CANARIES:
        assert canary not in everything


# ---- bot-token mode ----

async def test_bot_posts_with_the_delivery_key_in_metadata(slack):
    result = await bot_notifier(slack, Sleeps()).send(FIRING, key=FIRING_KEY)
    [message] = slack.history
    assert result == SendResult("sent", detail="posted", reference=f"{CHANNEL}:{message['ts']}")
    assert message["metadata"] == {"event_type": "watchdog_alert", "event_payload": {
        "key": FIRING_KEY, "rule": "sofr-over-iorb", "state": "firing", "date": "2019-09-17"}}
    assert message["attachments"][0]["color"] == "#F2A900"


async def test_bot_ratelimited_waits_retry_after_then_posts(slack):
    slack.script["chat.postMessage"] = [("status", 429, {"ok": False, "error": "ratelimited"},
                                         {"Retry-After": "3"})]
    sleeps = Sleeps()
    result = await bot_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent" and sleeps == [3.0] and len(slack.history) == 1


async def test_bot_500_twice_then_success(slack):
    slack.script["chat.postMessage"] = [("status", 500, "<html>oops</html>", {}),
                                        ("status", 502, "<html>bad gateway</html>", {})]
    sleeps = Sleeps()
    result = await bot_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent" and "after 3 attempts" in result.detail
    assert sleeps == [1.0, 2.0] and len(slack.history) == 1


async def test_bot_invalid_auth_is_permanent_with_a_clear_detail(slack):
    sleeps = Sleeps()
    notifier = bot_notifier(slack, sleeps, env={"SLACK_BOT_TOKEN": "xoxb-not-the-right-one"})
    result = await notifier.send(FIRING, key=FIRING_KEY)
    assert (result.outcome, result.permanent) == ("failed", True)
    assert result.detail == ("chat.postMessage: invalid_auth: Slack rejected the bot token "
                             "(revoked, mistyped or for another workspace) — check SLACK_BOT_TOKEN")
    assert sleeps == [] and len(slack.calls) == 1


@pytest.mark.parametrize("error", ["not_authed", "channel_not_found", "account_inactive", "is_archived"])
async def test_bot_permanent_errors_are_not_retried(slack, error):
    slack.script["chat.postMessage"] = [("status", 200, {"ok": False, "error": error}, {})]
    sleeps = Sleeps()
    result = await bot_notifier(slack, sleeps).send(FIRING, key=FIRING_KEY)
    assert (result.outcome, result.permanent) == ("failed", True)
    assert result.detail.startswith(f"chat.postMessage: {error}: ") and sleeps == []


async def test_bot_timeout_whose_post_landed_is_found_not_reposted(slack):
    slack.script["chat.postMessage"] = [("land_then_hang", 2)]
    sleeps = Sleeps()
    result = await bot_notifier(slack, sleeps, timeout=0.2).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent" and result.reference == f"{CHANNEL}:{slack.history[0]['ts']}"
    assert len(slack.history) == 1 and len(slack.api_calls("chat.postMessage")) == 1
    assert sleeps == [1.0]


async def test_bot_timeout_that_did_not_land_is_retried(slack):
    slack.script["chat.postMessage"] = [("hang", 2)]
    result = await bot_notifier(slack, Sleeps(), timeout=0.2).send(FIRING, key=FIRING_KEY)
    assert result.outcome == "sent" and len(slack.history) == 1
    assert len(slack.api_calls("conversations.history")) == 1


async def test_find_delivered_finds_a_message_by_its_metadata_key(slack):
    notifier = bot_notifier(slack, Sleeps(), history_limit=2)
    keys = [f"notify/desk/alert/r{i}/h/firing/2019-09-1{i}/{i}" for i in range(3)]
    for key in keys:
        await notifier.send(FIRING, key=key)
    slack.history += [{"type": "message", "ts": "1568900000.000001", "text": "hi"},
                      {"type": "message", "ts": "1568900001.000001", "text": "other app",
                       "metadata": {"event_type": "other", "event_payload": {"key": keys[0]}}}]
    found = await notifier.find_delivered(keys[0])          # oldest: on the third page
    assert found == f"{CHANNEL}:{slack.history[0]['ts']}"
    assert await notifier.find_delivered("notify/desk/never-sent") is None
    asked = slack.api_calls("conversations.history")
    assert all(a["include_all_metadata"] == "1" for a in asked) and len(asked) >= 3


async def test_find_delivered_raises_when_the_history_cannot_be_read(slack):
    slack.script["conversations.history"] = [("status", 200, {"ok": False, "error": "missing_scope"}, {})]
    with pytest.raises(NotifyError) as failed:
        await bot_notifier(slack, Sleeps()).find_delivered(FIRING_KEY)
    assert "missing_scope" in str(failed.value) and not failed.value.retryable


async def test_resolved_updates_the_firing_message_and_replies_in_its_thread(slack):
    notifier = bot_notifier(slack, Sleeps())
    firing = await notifier.send(FIRING, key=FIRING_KEY)
    resolved = await notifier.send(RESOLVED, key=RESOLVED_KEY)
    assert resolved.outcome == "sent" and resolved.reference == firing.reference
    assert resolved.detail == "updated the firing message and replied in its thread"
    assert [name for name, _ in slack.calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    parent = slack.history[0]
    assert parent["attachments"][0]["color"] == "#2EB67D"
    assert parent["metadata"]["event_payload"]["key"] == RESOLVED_KEY
    [reply] = slack.replies
    assert reply["thread_ts"] == parent["ts"] and reply["text"].startswith("✅ RESOLVED")
    assert await notifier.find_delivered(RESOLVED_KEY) is not None


async def test_resolved_after_a_restart_finds_the_firing_message_in_history(slack):
    firing = await bot_notifier(slack, Sleeps()).send(FIRING, key=FIRING_KEY)
    restarted = bot_notifier(slack, Sleeps())
    resolved = await restarted.send(RESOLVED, key=RESOLVED_KEY)
    assert resolved.reference == firing.reference
    assert slack.api_calls("chat.update")[0]["ts"] == firing.reference.split(":")[1]


async def test_resolved_with_a_given_reference_uses_it(slack):
    firing = await bot_notifier(slack, Sleeps()).send(FIRING, key=FIRING_KEY)
    resolved = await bot_notifier(slack, Sleeps()).send(RESOLVED, key=RESOLVED_KEY,
                                                        firing_reference=firing.reference)
    assert resolved.reference == firing.reference
    assert slack.api_calls("conversations.history") == []


async def test_resolved_whose_firing_message_is_gone_is_posted_anew(slack):
    notifier = bot_notifier(slack, Sleeps())
    result = await notifier.send(RESOLVED, key=RESOLVED_KEY, firing_reference=f"{CHANNEL}:1.000001")
    assert result.outcome == "sent" and "message_not_found" in result.detail
    [message] = slack.history
    assert message["metadata"]["event_payload"]["key"] == RESOLVED_KEY and not slack.replies


async def test_resolved_without_a_firing_message_is_posted(slack):
    result = await bot_notifier(slack, Sleeps()).send(RESOLVED, key=RESOLVED_KEY)
    assert result.outcome == "sent" and len(slack.history) == 1
    assert slack.api_calls("chat.update") == []


async def test_sparkline_values_come_from_the_injected_history(slack):
    notifier = bot_notifier(slack, Sleeps(), recent_values=lambda alert: FIRING_SPARK)
    await notifier.send(FIRING, key=FIRING_KEY)
    blocks = slack.history[0]["attachments"][0]["blocks"]
    assert any("`▁▁▁▁▁▁▁▁▁▂█`" in b.get("text", {}).get("text", "") for b in blocks)


def test_a_late_message_says_since_when_it_fires_or_that_it_was_a_short_episode():
    from watchdog.notify.slack.format import format_slack_message
    base = told(FIRING, value="15", summary="SOFR is 15 bp over IORB", inputs={})
    ongoing = format_slack_message(told(base, date="2025-10-31", since="2025-10-31", reason="15 > 10"))
    assert "_Still firing since 2025-10-31_" in json.dumps(ongoing)
    episode = format_slack_message(told(base, state="resolved", date="2025-12-02", reason="recovered: 3 < 5",
                                        episode={"fired_date": "2025-12-01", "fired_value": "315"}))
    assert ("_Short episode: fired for 2025-12-01 at 315 bp and resolved for 2025-12-02 before a "
            "notification went out_") in json.dumps(episode)


# ---- what a message explains: the rule's description, a composite's members, the runbook ----

COMPOSITE = ToldAlert.model_validate({
    "rule": "funding-stress", "rule_hash": "52e9b360" + "0" * 56, "state": "firing", "date": "2019-09-17",
    "value": "3", "severity": "critical", "threshold": None,
    "inputs": {
        "sofr-over-iorb": {"date": "2019-09-17", "value": "315", "published_at": "2019-09-18T12:00:00.000000Z"},
        "tgcr-over-iorb": {"date": "2019-09-05", "value": "10", "published_at": "2019-09-06T12:00:00.000000Z"},
    },
    "evaluated_at": "2019-09-18T12:00:00.000000Z",
    "reason": "3 of 9 member rules firing (sofr-over-iorb, tgcr-over-iorb, sofr-p99-over-iorb)",
    "summary": "Funding stress: 3 funding-market warning rules firing at once", "labels": {"area": "funding"},
})


def test_a_composite_names_its_firing_members_instead_of_a_bare_count():
    message = format_slack_message(COMPOSITE)
    body = texts(message)[1]
    assert "*3 of 9 member rules firing*: sofr-over-iorb, tgcr-over-iorb, sofr-p99-over-iorb" in body
    assert "\n*3*" not in body
    assert "*Members' last moves*\n• sofr-over-iorb 315 on 2019-09-17" in texts(message)[2]
    assert message["text"].endswith("(3 of 9 member rules firing: sofr-over-iorb, tgcr-over-iorb, "
                                    "sofr-p99-over-iorb)")


def test_values_read_with_their_unit_and_direction_and_the_runbook_is_a_link():
    tga = told(FIRING, rule="tga-build-onrrp-low", value="-8.224", threshold="50", state="resolved",
               reason="recovered: -8.224 < 50", inputs={"tga": {"date": "2026-06-23", "value": "925.9",
                                                                   "published_at": "2026-06-24T20:00:00.000000Z"}},
               summary="TGA build not absorbed by ON RRP: -$8.2bn over 5 business days",
               labels={"area": "reserves", "runbook_url": "https://wiki.example.org/runbooks/tga"})
    body = "\n".join(texts(format_slack_message(tga)))
    assert "*Recovered:* -$8.2bn &lt; $50bn\nalert level $50bn" in body
    assert "• tga $925.9bn on 2026-06-23\n   published 2026-06-24 16:00 EDT" in body
    assert "📖 <https://wiki.example.org/runbooks/tga|Runbook>" in body
    assert "runbook_url" not in body                     # a link, not a label
    assert "9.703674" not in "\n".join(texts(format_slack_message(
        told(FIRING, value="9.703674190093303137684445111", threshold="10", reason="9.703674190093303137684445111 < 10",
             summary="Reserves are 9.70% of GDP"))))
    hostile = told(FIRING, labels={"runbook_url": "javascript:alert(1)"})
    assert "Runbook" not in json.dumps(format_slack_message(hostile))


def test_the_outbox_tells_the_rule_description_recorded_with_the_rules_it_ran():
    from watchdog.alerting.outbox import Outbox
    from watchdog.model.events import (
        ALERT_FIRING,
        RULES_LOADED,
        RulesLoaded,
        RuleText,
        StoredEvent,
        new_alert,
    )
    from watchdog.model.timefmt import parse_utc
    from watchdog.rules.ruleset import load_rules
    rule = load_rules([str(Path(__file__).parent.parent / "rules")]).by_id["sofr-over-iorb"]
    loaded = RulesLoaded(hash="h", rules=[RuleText(id=rule.id, hash=rule.hash, text=rule.canonical_text)])
    alert = told(FIRING, rule_hash=rule.hash, description="")
    box, at = Outbox(), FIRING.evaluated_at
    events = [StoredEvent(1, RULES_LOADED, "rules", at, at, loaded.wire(), ""),
              StoredEvent(2, ALERT_FIRING, new_alert(alert).key, at, at,
                          alert.model_dump(exclude={"since", "episode", "description"}), "")]
    for event in events:
        box.apply(event)
    for n, event in enumerate(box.plan(parse_utc(at) + timedelta(minutes=5), horizon=timedelta(days=3)).events, 3):
        box.apply(StoredEvent(n, event.type, event.key, at, at, event.payload, ""))
    told_alert = box.owed()[0].alert
    assert told_alert.description == rule.description != ""
    assert f"_{rule.description}_" in texts(format_slack_message(told_alert))[1]
    assert "description" not in events[1].payload            # the recorded alert does not carry it
