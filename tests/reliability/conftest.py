"""Fixtures of the reliability tests: the e2e server subprocess and client, reused.

The sizes of the tests come from environment variables (`RELIABILITY_*`, see
`reliability_kit.size`), so the CI-sized run stays within its time budget and `bench/soak.py`
runs the same tests larger.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_kit import ServerProcess


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start a server of the test's own: `launch({"CHAT__X__Y": "1"}, data_dir=...)`.

    Generous per-address limits apply unless the settings say otherwise. At the end each
    server still running is stopped with SIGTERM, must exit 0, and must not have logged a
    traceback in any of its runs.
    """
    from helpers import GENEROUS_LIMITS

    started: list[Any] = []

    def start(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Any:
        settings = {**GENEROUS_LIMITS, **(env or {})}
        process = ServerProcess(data_dir or tmp_path / f"data{len(started)}", settings)
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            if process.running:
                code = process.stop()
                assert code == 0, process.log_text()
            assert not process.tracebacks(), "the server logged a traceback:\n" + process.log_text()
