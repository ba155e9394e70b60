"""A SIGTERM that arrives while the server is still starting stops it in order, exit 0.

uvicorn installs its signal handlers only once the port opens; before that (migrations,
replay, seeding) the server must still treat SIGTERM as a request to stop, not die of it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from server_kit import ServerProcess

SEEDING = "demo users exist"  # logged while seeding, before the port opens


def test_sigterm_during_start_up_exits_zero_without_a_traceback(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    proc = subprocess.Popen(
        server.command(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=server.environment(),
    )
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    try:
        for line in proc.stderr:
            lines.append(line)
            if SEEDING in line:
                proc.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline, "".join(lines)
        assert any(SEEDING in line for line in lines), "".join(lines)
        _, rest = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
