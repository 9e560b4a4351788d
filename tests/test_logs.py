"""Logs: JSON lines off a terminal, text on one, journald-friendly, and never a secret."""
from __future__ import annotations

import io
import json
import logging
import os

import pytest

from watchdog.model.config import parse_config
from watchdog.daemon.logs import secret_values, setup_logging

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
    logging.getLogger("watchdog.daemon.loop").info("polled %s: %d new events", "nyfed", 3, extra={"source": "nyfed"})
    line = json.loads(out.getvalue().splitlines()[0])
    assert line["msg"] == "polled nyfed: 3 new events"
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
