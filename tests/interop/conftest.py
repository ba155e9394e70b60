"""Fixtures of the interop tests: a real server (the e2e subprocess) and the Node client's deps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))

from reliability_kit import ServerProcess, stop_and_check

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One `chat-web serve` for the module, default settings apart from generous limits."""
    from helpers import GENEROUS_LIMITS

    process = ServerProcess(tmp_path_factory.mktemp("data"), dict(GENEROUS_LIMITS))
    process.start()
    try:
        yield process
    finally:
        stop_and_check(process)


@pytest.fixture(scope="session")
def node_client() -> list[str]:
    """The command line of `node_client.mjs`, its packages installed from the lock file.

    `npm ci` runs once, when `node_modules` is missing; no node or npm on the machine skips.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run a third-party Node JSON-RPC client")
    if not (HERE / "node_modules").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return [node, str(HERE / "node_client.mjs")]
