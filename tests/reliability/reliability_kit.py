# The waits take an explicit `timeout` (seconds) on purpose, as in tests/e2e/helpers.py.
# ruff: noqa: ASYNC109
"""Helpers of the reliability tests: the e2e server subprocess class, sizes from the environment
(so `bench/soak.py` can run the same tests larger) and the random seed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_E2E = Path(__file__).resolve().parent.parent / "e2e"
if str(_E2E) not in sys.path:
    sys.path.insert(0, str(_E2E))

from server_kit import ServerProcess  # noqa: E402 (tests/e2e is on sys.path from here)

__all__ = ["ServerProcess", "replay_verify", "seed", "size", "stop_and_check", "wait_for_log"]


def stop_and_check(process: Any) -> None:
    """Stop a module's server with SIGTERM: it must exit 0 and have logged no traceback."""
    code = process.stop()
    assert code == 0, f"exit code {code} after SIGTERM; output:\n{process.log_text()}"
    assert not process.tracebacks(), "traceback in the server log:\n" + process.log_text()


def size(name: str, default: int) -> int:
    """A test size: `RELIABILITY_<NAME>` from the environment, else the CI default."""
    return int(os.environ.get(f"RELIABILITY_{name.upper()}", default))


def seed() -> int | None:
    """RELIABILITY_SEED, to replay a failing run; None draws a fresh one."""
    raw = os.environ.get("RELIABILITY_SEED")
    return int(raw) if raw else None


async def replay_verify(data_dir: Path) -> tuple[int, str]:
    """Run `chat-cli replay --verify --data-dir DIR`; (exit code, output)."""
    import asyncio

    cli = Path(sys.executable).with_name("chat-cli")
    proc = await asyncio.create_subprocess_exec(
        str(cli),
        "replay",
        "--verify",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHAT")},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def wait_for_log(server: Any, needle: str, timeout: float = 30.0) -> str:
    """Wait until the server's current run logs a line containing `needle`; that line.

    The log is filled by a thread, so this looks at it each 20 ms until found or `timeout`.
    """
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            for line in server.log_lines[server.run_start :]:
                if needle in line:
                    return str(line)
            await asyncio.sleep(0.02)
