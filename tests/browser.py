"""A real headless Chromium for the report tests, driven with Playwright over the system browser
(`/usr/bin/chromium`, which `.ci/run` installs; Playwright's own browser downloads are never used).
Skips with the reason when Chromium is missing."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from required_tools import require_tool

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Playwright adds --headless and a fresh --user-data-dir of its own for every launch."""


def chromium_path() -> str:
    return require_tool("chromium", install="Debian: apt-get install chromium")


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A fresh page in a fresh headless Chromium."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """`folder` over HTTP on loopback (Allure's page loads its data with fetch, not from file://)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
