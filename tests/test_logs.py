"""Logs: JSON lines off a terminal, text on one, journald-friendly, and never a secret."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
from datetime import datetime, timezone

import pytest
from fakes import FakeFed

from watchdog.daemon.logs import secret_values, setup_logging
from watchdog.daemon.loop import poll_text
from watchdog.model.config import parse_config
from watchdog.sources.base import failure_event

SECRET = "xoxb-very-SECRET-token-1234"


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_pipe_gets_one_json_object_per_line_with_extra_fields():
    out = io.StringIO()
    setup_logging(stream=out, env={})
    logging.getLogger("watchdog.daemon.loop").info("polled %s", poll_text("nyfed", 3, []), extra={"source": "nyfed"})
    line = json.loads(out.getvalue().splitlines()[0])
    assert line["msg"] == "polled nyfed: 3 new, 0 failed"
    assert line["level"] == "INFO" and line["logger"] == "watchdog.daemon.loop" and line["source"] == "nyfed"
    assert line["ts"].endswith("Z") and len(line["ts"]) == 27


def test_a_traceback_is_one_json_field_not_many_lines():
    out = io.StringIO()
    setup_logging(stream=out, env={})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("watchdog").exception("cycle failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert "RuntimeError: boom" in json.loads(lines[0])["exc"]


def test_text_format_for_people():
    out = io.StringIO()
    setup_logging(stream=out, fmt="text", env={})
    logging.getLogger("watchdog.daemon.loop").warning("late")
    assert out.getvalue().rstrip().endswith("WARNING watchdog.daemon.loop: late")
    assert out.getvalue()[:4].isdigit()                 # a timestamp first


def test_on_the_journal_lines_carry_a_priority_and_no_timestamp_of_their_own(tmp_path):
    with open(tmp_path / "journal", "w+") as stream:
        info = os.fstat(stream.fileno())
        setup_logging(stream=stream, env={"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
        logging.getLogger("watchdog.daemon.loop").error("deadman")
        logging.getLogger("watchdog.daemon.loop").info("fine")
        stream.seek(0)
        first, second = stream.read().splitlines()
    assert first.startswith("<3>{") and second.startswith("<6>{")
    assert "ts" not in json.loads(first[3:])


def test_an_inherited_journal_stream_that_is_not_stderr_is_ignored():
    out = io.StringIO()
    setup_logging(stream=out, env={"JOURNAL_STREAM": "8:12345"})
    logging.getLogger("x").info("hello")
    assert out.getvalue().startswith("{")


def test_secret_values_are_scrubbed_from_message_args_traceback_and_extras(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "smtp_password").write_text("hunter2-hunter2\n")
    config = parse_config('''
[sources.fred]
api_key_env = "MY_FRED_KEY"
[receivers.desk]
type = "slack"
token_env = "MY_SLACK_TOKEN"
channel = "C0123"
[receivers.mail]
type = "email"
smtp_host = "localhost"
password_env = "SMTP_PASSWORD"
from = "a@example.org"
to = ["b@example.org"]
''')
    env = {"MY_FRED_KEY": "fredkey0123456789", "MY_SLACK_TOKEN": SECRET, "CREDENTIALS_DIRECTORY": str(creds)}
    secrets = secret_values(config, env)
    assert {"fredkey0123456789", SECRET, "hunter2-hunter2"} <= set(secrets)
    out = io.StringIO()
    setup_logging(stream=out, env={}, secrets=secrets)
    log = logging.getLogger("slack_sdk")                # a library's logger, not ours
    log.warning("posting with %s", SECRET, extra={"url": "https://x/?api_key=fredkey0123456789"})
    try:
        raise ValueError(f"bad password hunter2-hunter2 for {SECRET}")
    except ValueError:
        log.exception("send failed")
    text = out.getvalue()
    assert SECRET not in text and "hunter2-hunter2" not in text and "fredkey0123456789" not in text
    assert text.count("REDACTED") >= 4


async def test_a_poll_logs_new_facts_and_failures_apart_with_the_failures_reasons(aiohttp_server, tmp_path):
    """`watchdog run --once` against a local NY Fed answering 503 to everything: the poll's log
    line and the cycle line count failures as failures, say why, and count no new fact."""
    fed = await FakeFed().serve(aiohttp_server)
    fed.misbehave("status", status=503, body="Service Unavailable", times=None)
    config = tmp_path / "watchdog.toml"
    config.write_text(f'''
[store]
path = "{tmp_path / 'events.db'}"
[rules]
paths = ["{tmp_path / 'rules'}"]
[sources.nyfed]
base_url = "{fed.url()}"
rates = ["sofr", "tgcr"]
retries = 0
timeout = "5s"
[receivers.screen]
type = "console"
''')
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "spread.toml").write_text('[[rule]]\nid = "sofr-over-iorb"\nexpr = "bp(sofr - iorb)"\nabove = 10\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchdog", "run", "--config", str(config), "--once", "--no-http", "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = err.decode().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    polled = [line for line in logged if line["msg"].startswith("polled nyfed")]
    assert len(polled) == 1, lines
    assert polled[0]["msg"] == "polled nyfed: 0 new, 2 failed: HTTP 503: Service Unavailable (sofr, tgcr)"
    assert (polled[0]["new_facts"], polled[0]["failures"]) == (0, 2)
    cycle = [line for line in lines if line.startswith("cycle:")]
    assert cycle == ["cycle: 0 new facts, 2 source failures (nyfed: HTTP 503: Service Unavailable (sofr, tgcr)); "
                     "0 alert transitions; notifications: 0 sent, 0 suppressed, 0 failed"], lines
    assert all(not re.search(r"\b[1-9]\d* new\b", line["msg"]) for line in logged)   # failures are not news


def test_poll_text_groups_failure_reasons_counts_repeats_and_cuts_long_ones():
    at = datetime(2025, 11, 3, 13, tzinfo=timezone.utc)
    failed = [failure_event("fred", "iorb: HTTP 429: Too Many Requests", at),
              failure_event("fred", "timeout after 30s", at), failure_event("fred", "timeout after 30s", at),
              failure_event("fred", "answer was\n" + "x" * 5000, at),
              failure_event("fred", "poll did not finish within [daemon].poll_deadline = 2s: cancelled", at)]
    text = poll_text("fred", 1, failed)
    assert text.startswith("fred: 1 new, 5 failed: HTTP 429: Too Many Requests (iorb); timeout after 30s (2x); "
                           "answer was xxx")
    assert text.endswith("x…; and 1 more reason") and len(text) < 400
    assert poll_text("fred", 0, []) == "fred: 0 new, 0 failed"
