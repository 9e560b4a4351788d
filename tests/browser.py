"""Headless Chromium for tests that must see a page as a browser renders it (scripts run, images
decoded), not only as an HTTP client reads it.

`.ci/run` installs Debian's `chromium`; on a developer machine without it the test skips, but
under ``CI=true`` a missing browser fails the test (DESIGN "Testing rules"). ``make screenshots``
(demo/screenshots.py) uses the same helpers."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    """The browser's path, or None (``make screenshots`` says so and stops)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_path() -> str:
    """The browser's path, or skip (fail under CI=true)."""
    found = find_chromium()
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (CI must install Debian's chromium package)")
    pytest.skip("chromium is not installed")


async def _chromium(*args: str, timeout: float = 60) -> str:
    with tempfile.TemporaryDirectory(prefix="wd-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium_path(), *FLAGS, f"--user-data-dir={profile}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, f"chromium exited {proc.returncode}"
        return out.decode("utf-8", "replace")


async def rendered_dom(url: str, *, budget_ms: int = 5000) -> str:
    """The DOM after the page's scripts ran (``--dump-dom``): what a user's browser shows."""
    return await _chromium(f"--virtual-time-budget={budget_ms}", "--dump-dom", url)


async def screenshot(url: str, path: str, *, size: str = "1280,2000", budget_ms: int = 5000) -> None:
    """A PNG of the rendered page at ``path`` (``size``: the window, "width,height" in pixels)."""
    await _chromium(f"--virtual-time-budget={budget_ms}", f"--screenshot={path}",
                    f"--window-size={size}", "--hide-scrollbars", url)


def png_size(path: str) -> tuple[int, int]:
    """(width, height) of a PNG, read from its IHDR chunk; ValueError when it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
