"""Fixtures of the socket-free tests of chat_web, named as the end-to-end ones (tests/e2e/
conftest.py) so that a test moved down keeps its body: `chat` (a harness on a server of the
test's own, configured by the module's `server_env`) and `start_server(env)`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from frames_kit import GENEROUS_LIMITS, InProcessChat, InProcessServer


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Settings of the module's servers (as environment variables); a module overrides it."""
    return dict(GENEROUS_LIMITS)


@pytest.fixture
async def chat(server_env: dict[str, str]) -> AsyncIterator[InProcessChat]:
    """A harness on an in-process server of the test's own."""
    async with InProcessServer(server_env).harness() as harness:
        yield harness


@pytest.fixture
def start_server() -> type[InProcessServer]:
    """`start_server(env)`: an in-process server with these settings (over the generous
    limits); `.harness()` talks to it."""
    return InProcessServer
