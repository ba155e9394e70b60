"""End-to-end fixtures: the real server (`server_kit.ServerProcess`) as a subprocess on
127.0.0.1, on an ephemeral port: one per module (`server`, `chat`) or one per test
(`start_server`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from helpers import GENEROUS_LIMITS, Harness
from server_kit import ServerProcess, stop_and_check


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Settings of the module's shared server; a test module overrides this fixture.

    The shared server is generous with per-address and per-user limits, because many tests
    open sockets from the same address; tests of the limits start their own server.
    """
    return dict(GENEROUS_LIMITS)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]
) -> Iterator[ServerProcess]:
    """One server for the tests of a module; they keep apart by using fresh users and rooms."""
    process = ServerProcess(tmp_path_factory.mktemp("data"), server_env)
    process.start()
    try:
        yield process
    finally:
        stop_and_check(process)


@pytest.fixture
async def chat(server: ServerProcess) -> AsyncIterator[Harness]:
    """A harness on the module's server; every client it opened is closed afterwards."""
    async with server.harness() as harness:
        yield harness


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server of the test's own, with settings: `start_server({"CHAT__X__Y": "1"})`,
    and optionally the text of a TOML file passed with `--config`.

    The generous limits apply unless the test's settings say otherwise.
    """
    started: list[ServerProcess] = []

    def start(
        env: dict[str, str] | None = None, name: str = "data", config: str | None = None
    ) -> ServerProcess:
        settings = {**GENEROUS_LIMITS, **(env or {})}
        config_file = None
        if config is not None:
            config_file = tmp_path / f"config{len(started)}.toml"
            config_file.write_text(config, encoding="utf-8")
        process = ServerProcess(tmp_path / f"{name}{len(started)}", settings, config_file)
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            stop_and_check(process)
