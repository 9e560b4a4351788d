"""Screenshots of what people read (`make screenshots`): the replay report of the shipped history
and the daemon's status page, rendered by headless Chromium to PNG files, paths printed.

- The report: `watchdog replay --db <copy of events.db.example> --rules rules --report
  report.html` (the default rules; the labelled episodes of episodes/default.toml shaded).
- The status page: the real daemon and HTTP server over another copy of the example log, its
  clock at the instant the log was recorded (2026-09-05 00:00 UTC), so the page is the same on
  every run: SOFR current, the feeds that ended earlier in 2026 marked STALE.

Both HTML files are kept beside the PNGs. No network: the status page is served on 127.0.0.1.
Needs Chromium (`.ci/run` installs Debian's `chromium`).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))     # the browser helpers the page tests use

import browser  # noqa: E402

EXAMPLE = REPO / "events.db.example"
RECORDED_AT = datetime(2026, 9, 5, tzinfo=timezone.utc)    # Makefile EXAMPLE_RECORDED_AT
SIZE = "1280,2400"


def copy_example(directory: Path) -> Path:
    """A copy of the example log (and its WAL, when present) in ``directory``."""
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{EXAMPLE}{suffix}")
        if source.exists():
            shutil.copy(source, directory / f"events.db{suffix}")
    return directory / "events.db"


def write_report(out: Path, work: Path) -> Path:
    """The replay report of the example log with the default rules, as the README command writes it."""
    page = out / "report.html"
    subprocess.run([sys.executable, "-m", "watchdog", "replay", "--db", str(copy_example(work)),
                    "--rules", str(REPO / "rules"), "--report", str(page)],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return page


async def serve_status_page(db: Path, now: datetime = RECORDED_AT):
    """Start the daemon over ``db`` (default rules, no sources configured, a fixed clock) and its
    HTTP server on 127.0.0.1; returns (url, stop), ``await stop()`` ends both."""
    from watchdog.app import build_daemon, close_daemon
    from watchdog.http.server import start_http
    from watchdog.model.config import Config
    daemon = build_daemon(Config(), db=str(db), rule_paths=[str(REPO / "rules")], env={},
                          now=lambda: now, http=False)
    try:
        await daemon.start()
        runner = await start_http(daemon, "127.0.0.1:0")
    except BaseException:
        close_daemon(daemon)
        raise

    async def stop() -> None:
        try:
            await runner.cleanup()
        finally:
            close_daemon(daemon)
    return f"http://127.0.0.1:{runner.addresses[0][1]}/", stop


async def main(out: Path) -> int:
    if browser.find_chromium() is None:
        print("screenshots: chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="watchdog-screenshots-"))
    try:
        (work / "report").mkdir()
        (work / "status").mkdir()
        report = write_report(out, work / "report")
        shots = [out / "report.png"]
        await browser.screenshot(report.as_uri(), str(shots[0]), size=SIZE)
        url, stop = await serve_status_page(copy_example(work / "status"))
        try:
            import aiohttp
            async with aiohttp.ClientSession() as session:
                async with session.get(url) as resp:
                    (out / "status.html").write_bytes(await resp.read())
            shots.append(out / "status.png")
            await browser.screenshot(url, str(shots[1]), size=SIZE)
        finally:
            await stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for shot in shots:
        width, height = browser.png_size(str(shot))
        print(f"{shot} ({width}x{height} PNG, {shot.stat().st_size:,} bytes)")
    print(f"pages: {report}, {out / 'status.html'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/screenshots", help="where the PNGs go (default: out/screenshots/)")
    sys.exit(asyncio.run(main(Path(parser.parse_args().out).resolve())))
