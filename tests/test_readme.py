"""The README runs as written: every command of the ```sh blocks of "Quick tour" and "Writing and
testing rules", in README order, in a fresh copy of what a clone has (data/, rules/, deploy/,
episodes/, .venv), each in its own shell, with the venv's `watchdog` on PATH. Each must exit 0
without a traceback. A line the README marks `# not runnable here` is skipped.

No network: the copy of deploy/watchdog.toml has every source URL pointed at a local server
that answers 404, so `watchdog run --once` polls, records each failure as `source-failed` and
exits 0 (a failed poll is fine; a traceback or an exit code is not). Only the URLs change: its
rules, store and routes are the shipped ones.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SECTIONS = ("Quick tour", "Writing and testing rules")
NOT_RUNNABLE = "# not runnable here"
SECRETS = ("FRED_API_KEY", "SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SMTP_PASSWORD", "CREDENTIALS_DIRECTORY")
PUBLIC_URL = re.compile(r"https?://[^\"'\s]+")


def section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def commands(text: str) -> list[str]:
    """The commands of the ```sh blocks of ``text``: continuation lines joined, blank and
    comment-only lines left out, lines marked not runnable here skipped."""
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", "").splitlines():      # as the shell joins them
            if line.strip() and not line.lstrip().startswith("#") and NOT_RUNNABLE not in line:
                found.append(line.strip())
    return found


def readme_commands(title: str) -> list[str]:
    return commands(section(README.read_text(encoding="utf-8"), title))


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"not served here (tests/test_readme.py)"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def clone(tmp_path_factory, local_server):
    """A folder laid out as a clone is: the repo's folders copied (data/ and episodes/ are only
    read: linked), .venv linked, deploy/watchdog.toml's URLs pointed at ``local_server``."""
    root = tmp_path_factory.mktemp("clone")
    for name in ("rules", "deploy"):
        shutil.copytree(REPO / name, root / name, symlinks=True)
    for name in ("data", "episodes"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    venv = Path(sys.prefix)
    (root / ".venv").symlink_to(venv if (venv / "bin" / "activate").exists() else REPO / ".venv",
                                target_is_directory=True)
    config = root / "deploy" / "watchdog.toml"
    lines = []
    for line in config.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = PUBLIC_URL.sub(lambda m: local_server + "/" + m.group(0).split("://", 1)[1], line)
        lines.append(line)
    config.write_text("".join(lines), encoding="utf-8")
    live = [line for line in lines if not line.lstrip().startswith("#") and "://" in line]
    assert live and all(local_server in line for line in live), live    # nothing reaches the network
    return root


def environment(root: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SECRETS}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(root)
    env.pop("VIRTUAL_ENV", None)
    return env


def run_all(root: Path, lines: list[str]) -> tuple[list[str], dict[str, subprocess.CompletedProcess]]:
    """Every line in order, each in its own shell; the failures (exit code or traceback) and
    each line's result."""
    failures, results = [], {}
    for line in lines:
        done = subprocess.run(["bash", "-c", line], cwd=root, env=environment(root),
                              capture_output=True, text=True, timeout=300)
        results[line] = done
        if done.returncode != 0 or "Traceback" in done.stderr + done.stdout:
            failures.append(f"{line}\n  exit {done.returncode}\n  {done.stderr.strip()[-800:]}")
    return failures, results


def test_the_sections_have_the_commands_the_tour_is_about():
    tour = readme_commands("Quick tour")
    rules = readme_commands("Writing and testing rules")
    assert tour[0] == ". .venv/bin/activate" and tour[1].startswith("watchdog import --db my.db data/history")
    assert any(c.startswith("watchdog run --config deploy/watchdog.toml") for c in tour)
    assert any("--diff my-rules" in c for c in tour)
    assert any(c.startswith("watchdog test-rules") for c in rules)
    assert not any(NOT_RUNNABLE in c for c in tour + rules)


def test_the_extractor_joins_continuations_and_skips_comments_and_marked_lines():
    text = ("```sh\n# a comment\nwatchdog a \\\n    --b c\n\nwatchdog d   # not runnable here: needs root\n"
            "watchdog e  # fine\n```\n```toml\nx = 1\n```\n")
    assert commands(text) == ["watchdog a     --b c", "watchdog e  # fine"]


@pytest.mark.timeout(900)
def test_every_quick_tour_and_rule_writing_command_runs_as_written(clone):
    failures, results = run_all(clone, readme_commands("Quick tour") + readme_commands("Writing and testing rules"))
    assert failures == [], "\n\n".join(failures)
    # What the commands say they did, not only that they exited 0:
    run = next(result for line, result in results.items() if line.startswith("watchdog run "))
    assert "not served here" in run.stdout + run.stderr, run.stderr[-800:]     # it polled, and failed cleanly
    # without a FRED key: one warning naming what is skipped and how to enable it, no failure per series
    skipped = [line for line in run.stderr.splitlines() if "not polled" in line]
    assert len(skipped) == 1 and "m2 (M2SL), gdp (GDP)" in skipped[0] and "FRED_API_KEY" in skipped[0]
    listed = next(result for line, result in results.items()
                  if line.startswith("watchdog events --db my.db --type source-failed"))
    with closing(sqlite3.connect(clone / "my.db")) as db:
        reasons = [reason for (reason,) in db.execute(
            "SELECT json_extract(payload, '$.reason') FROM events WHERE type = 'source-failed'")]
    assert len(reasons) == listed.stdout.count("source-failed") > 0
    assert all("HTTP 404" in reason for reason in reasons), reasons
    assert not [reason for reason in reasons if "M2SL" in reason or "(GDP" in reason]
    assert (clone / "out" / "report.html").stat().st_size > 0
    assert (clone / "my.db").exists() and not (clone / "events.db").exists()   # --db replaced [store]
