"""The real server as a subprocess on 127.0.0.1, on an ephemeral port (`ServerProcess`).

The server is started with the agreed command line, and announces itself on stderr with a line
holding `listening on http://HOST:PORT`. Its output is drained by a thread into `log_lines`, so
the pipe never fills and tests can look for tracebacks. A module of its own, not the e2e
conftest, so that test modules of any directory import it by a name nothing shadows.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from helpers import Harness

LISTENING = re.compile(r"listening on http://(\[[^\]]+\]|[^\s:/\"']+):(\d+)")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
# Settings that leak in from the developer's shell would change what the tests see.
_INHERITED_SETTINGS = {"HOST", "PORT", "JWT_SECRET", "CHAT_DATA_DIR", "LOG_LEVEL"}


class ServerProcess:
    """One `chat-web serve` subprocess on a data directory; restartable on the same directory."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.extra_env = dict(env or {})
        self.config_file = config_file
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.proc: subprocess.Popen[str] | None = None
        # Every line of every run, in order; `run_start` marks where the current run begins.
        self.log_lines: list[str] = []
        self.run_start = 0
        self._drainer: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "chat_web", "serve", "--host", self.host, "--port", "0"]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.config_file is not None:
            cmd += ["--config", str(self.config_file)]
        return cmd

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.upper().startswith("CHAT") and key not in _INHERITED_SETTINGS
        }
        env["CHAT__AUTH__BCRYPT_ROUNDS"] = "4"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.run_start = len(self.log_lines)
        self.port = None
        ready = threading.Event()
        found: dict[str, int] = {}
        # The parent of the data dir, so no ./config.toml of the project is picked up.
        proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=self.data_dir.parent,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.proc = proc
        self._drainer = threading.Thread(
            target=self._drain, args=(proc, ready, found), name="server-log", daemon=True
        )
        self._drainer.start()
        ready.wait(timeout)
        if "port" not in found:
            self._kill()
            raise RuntimeError(
                f"the server did not report `listening on` within {timeout}s "
                f"(exit code {proc.returncode}); its output:\n" + self.log_text()
            )
        self.port = found["port"]
        return self

    def _drain(
        self, proc: subprocess.Popen[str], ready: threading.Event, found: dict[str, int]
    ) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                self.log_lines.append(line.rstrip("\n"))
                if not ready.is_set():
                    match = LISTENING.search(line)
                    if match:
                        found["port"] = int(match[2])
                        ready.set()
        # End of output: the process is gone; wake the starter if it still waits.
        ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig` and wait for the exit; the exit code (the process is killed on timeout)."""
        proc = self.proc
        assert proc is not None, "never started"
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(
                f"the server did not exit within {timeout}s of signal {sig}; its output:\n"
                + self.log_text()
            ) from None
        if self._drainer is not None:
            self._drainer.join(timeout)
        return code

    def restart(self) -> int:
        """SIGTERM, then start again on the same data directory (a new port); the exit code."""
        code = self.stop()
        self.start()
        return code

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        if self._drainer is not None:
            self._drainer.join(STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- addresses and logs -------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.port is not None, "not listening"
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        assert self.port is not None, "not listening"
        return f"ws://{self.host}:{self.port}/ws"

    def log_text(self) -> str:
        return "\n".join(self.log_lines)

    def tracebacks(self) -> list[str]:
        """The log lines that start or report a Python traceback."""
        return [line for line in self.log_lines if "Traceback" in line]

    def harness(self) -> Harness:
        return Harness(self.url, self.ws_url)


def stop_and_check(server: ServerProcess) -> None:
    """Stop with SIGTERM: it must exit 0 and have logged no traceback."""
    if not server.running:
        return
    code = server.stop()
    assert code == 0, f"exit code {code} after SIGTERM; output:\n{server.log_text()}"
    assert not server.tracebacks(), "the server logged a traceback:\n" + server.log_text()
