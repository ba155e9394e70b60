"""The page of a chat with several nodes (`server.peer_urls`): it learns the others at load and,
when its own node goes down, goes on at the next one, resuming without loss or repeat.

The second node is the first one's journal served on another port after the first stops: what
a page sees when its node dies and another serves on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_kit import FixedPortServer, free_port, login_token, post_messages
from page_actions import chat_log, expect_once, join, log_in, say
from playwright.sync_api import expect

TIMEOUT_MS = 15_000  # as conftest.EXPECT_TIMEOUT_MS: a shared 2-core machine is slow


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A first node naming a second (not started) as its peer; one data directory."""
    from helpers import GENEROUS_LIMITS

    second_port = free_port()
    peer = f"http://127.0.0.1:{second_port}"
    data = tmp_path / "data"
    first = FixedPortServer(
        data, {**GENEROUS_LIMITS, "CHAT__SERVER__PEER_URLS": peer}, port=free_port()
    )
    second = FixedPortServer(data, dict(GENEROUS_LIMITS), port=second_port)
    first.start()
    try:
        yield first, second
    finally:
        for node in (first, second):
            if node.running:
                assert node.stop() == 0, node.log_text()
            assert not node.tracebacks(), node.log_text()


def test_the_page_moves_to_a_peer_node_when_its_own_goes_down(
    browser: Any, two_nodes: tuple[Any, Any]
) -> None:
    first, second = two_nodes
    peer = f"http://127.0.0.1:{second.fixed_port}"
    # The node tells the page of its peer, and lets it connect there.
    peers = httpx.get(f"{first.url}/peers")
    assert peers.json() == {"peer_urls": [peer]}
    policy = httpx.get(f"{first.url}/").headers["Content-Security-Policy"]
    assert f"connect-src 'self' {peer} ws://127.0.0.1:{second.fixed_port};" in policy

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(first.url + "/")
        log_in(page, "alice", "alice123")
        join(page, "web-failover")
        say(page, "on the first node")
        expect_once(page, "on the first node")

        assert first.stop() == 0
        status = page.get_by_role("status")
        expect(status).to_contain_text(f"Reconnecting to 127.0.0.1:{second.fixed_port}")
        say(page, "typed between nodes")
        expect(chat_log(page).locator(".pending")).to_have_count(1)

        second.start()
        expect(status).to_have_text("Connected")
        expect_once(page, "typed between nodes")
        token = login_token(second.url, "bob", "bob123")
        post_messages(second.ws_url, token, "web-failover", ["bob on the second node"])
        for text in ("on the first node", "typed between nodes", "bob on the second node"):
            expect_once(page, text)
    finally:
        context.close()
