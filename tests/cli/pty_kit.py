"""What the pty tests of `chat-cli` share: a real `chat-web serve` subprocess, a user's
environment, the console script run or spawned in a pseudo-terminal (pexpect)."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

BIN = Path(sys.executable).parent
CHAT_CLI = str(BIN / "chat-cli")
CHAT_WEB = str(BIN / "chat-web")
LISTENING = re.compile(r"listening on (http://[^\s]+)")
TIMEOUT = 15


class Server:
    """A running `chat-web serve`; its stderr is drained by a thread so the pipe never fills."""

    def __init__(
        self, data_dir: Path, port: int = 0, settings: dict[str, str] | None = None
    ) -> None:
        env = dict(
            os.environ, CHAT__AUTH__BCRYPT_ROUNDS="4", CHAT_CONFIG_FILE="", **(settings or {})
        )
        env.pop("CHAT_SERVER_URL", None)
        self.process = subprocess.Popen(
            [CHAT_WEB, "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=data_dir,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        self.url = self._wait_for_url()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def _wait_for_url(self) -> str:
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=30)
            except queue.Empty:
                self.stop()
                pytest.fail("chat-web serve did not start:\n" + "".join(seen))
            seen.append(line)
            found = LISTENING.search(line)
            if found:
                return found.group(1)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._drainer.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data = tmp_path / "data"
    data.mkdir()
    running = Server(data)
    yield running
    running.stop()


def client_env(server: Server, home: Path) -> dict[str, str]:
    """One user's environment: its own config dir (saved token), the server, a plain TTY."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), CHAT_SERVER_URL=server.url, TERM="dumb")
    env.pop("CHAT_TOKEN", None)
    return env


def cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHAT_CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def login(env: dict[str, str], username: str, password: str) -> None:
    done = cli(env, "login", "--username", username, "--password-stdin", stdin=password + "\n")
    assert done.returncode == 0, done.stderr


def spawn_chat(env: dict[str, str], *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        CHAT_CLI, ["chat", *args], env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 160)
    )
    return child


def chat_in_room(env: dict[str, str], room: str) -> tuple[pexpect.spawn, io.StringIO]:
    """A `chat-cli chat` that has joined #room, and the screen it has drawn so far."""
    child = spawn_chat(env)
    screen = io.StringIO()
    child.logfile_read = screen
    child.expect("connected")
    child.sendline(f"/join {room}")
    child.expect(rf"#{room}: \d+ users?:")
    return child, screen


def wait_exit(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    status: int = child.exitstatus
    return status


def alice_in_lobby(
    tmp_path: Path,
) -> tuple[Path, Server, dict[str, str], pexpect.spawn, io.StringIO]:
    """A server of the test's own with alice chatting in #lobby (her screen recorded) and bob
    logged in: (data dir, server, bob's environment, alice's chat, her transcript)."""
    data = tmp_path / "data"
    data.mkdir()
    server = Server(data)
    alice_env = client_env(server, tmp_path / "alice")
    bob_env = client_env(server, tmp_path / "bob")
    login(alice_env, "alice", "alice123")
    login(bob_env, "bob", "bob123")
    alice, transcript = chat_in_room(alice_env, "lobby")
    return data, server, bob_env, alice, transcript
