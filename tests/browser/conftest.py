"""Browser tests: Playwright's Python package drives Debian's Chromium (`/usr/bin/chromium`,
never a downloaded browser) against a real `chat-web serve`.

Without Chromium or Playwright they are skipped with a one-line notice; with
`CHAT_BROWSER_TESTS=required` (as `.ci/run` sets) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_kit import FixedPortServer, free_port

CHROMIUM = Path(os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("CHAT_BROWSER_TESTS", "") == "required"
# Playwright's expect() waits this long by default; a shared 2-core machine needs more.
EXPECT_TIMEOUT_MS = 15_000


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


MISSING = _missing()
_skipped: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_line(f"browser tests skipped: {MISSING}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for a module's tests (each test opens its own contexts)."""
    if MISSING is not None:
        if REQUIRED:
            pytest.fail(f"CHAT_BROWSER_TESTS=required, but {MISSING}")
        _skipped.append(MISSING)
        pytest.skip(MISSING)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server of the module's own on a fixed port (restartable under the same address)."""
    from helpers import GENEROUS_LIMITS

    process = FixedPortServer(
        tmp_path_factory.mktemp("data"), dict(GENEROUS_LIMITS), port=free_port()
    )
    process.start()
    try:
        yield process
    finally:
        if process.running:
            code = process.stop()
            assert code == 0, process.log_text()
        assert not process.tracebacks(), process.log_text()


@pytest.fixture
def open_page(browser: Any, web_server: Any) -> Iterator[Callable[..., Any]]:
    """`open_page()`: a fresh context and page on the server's address, closed afterwards."""
    contexts: list[Any] = []

    def open_(**options: Any) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(EXPECT_TIMEOUT_MS)
        page.goto(web_server.url + "/")
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()
