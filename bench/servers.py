"""Server subprocesses and accounts for the benchmarks: a `chat-web serve` (or a baseline
server) on 127.0.0.1, its CPU and memory read from /proc, and users registered over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import msgspec

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LISTENING = re.compile(r"listening on http://([^\s:/]+):(\d+)")
PASSWORD = "bench-password-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_decode = msgspec.json.Decoder().decode


def raise_nofile() -> None:
    """Raise the soft open-files limit to the hard one (inherited by the subprocesses)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- server subprocesses ---------------------------------------------------------------------


class Server:
    """`chat-web serve` or bench/bare_broadcast.py on 127.0.0.1, port 0, read from stderr."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.cmd, self.env, self.cwd = cmd, env, cwd
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.lines: list[str] = []
        self.started_at = 0.0
        self.listening_at = 0.0
        self.spy: subprocess.Popen[bytes] | None = None
        self.ws_path = "/ws"

    @classmethod
    def chat(cls, data_dir: Path, env: dict[str, str] | None = None) -> Server:
        data_dir.mkdir(parents=True, exist_ok=True)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith("CHAT")
            and k not in {"HOST", "PORT", "JWT_SECRET", "LOG_LEVEL"}
        }
        base.update(
            {
                "PYTHONUNBUFFERED": "1",
                "CHAT__AUTH__BCRYPT_ROUNDS": "4",
                "CHAT__RATE_LIMIT__ENABLED": "false",
                "CHAT__LOGGING__LEVEL": "warning",
                "CHAT__SERVER__SEND_QUEUE_LIMIT": "1024",
            }
        )
        base.update(env or {})
        cmd = [sys.executable, "-m", "chat_web", "serve", "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--data-dir", str(data_dir)]
        return cls(cmd, base, data_dir.parent)

    @classmethod
    def bare(cls, mode: str) -> Server:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return cls(
            [sys.executable, str(BENCH_DIR / "bare_broadcast.py"), "--mode", mode], env, ROOT
        )

    @classmethod
    def bare_uvloop(cls) -> Server:
        """bench/bare_uvloop.py: pre-framed, coalesced writes on a plain uvloop server."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return cls([sys.executable, str(BENCH_DIR / "bare_uvloop.py")], env, ROOT)

    @classmethod
    def socketio(cls) -> Server:
        """bench/socketio/server.js: Socket.IO 4 on Node (npm ci in its folder on first use)."""
        folder = BENCH_DIR / "socketio"
        if not (folder / "node_modules" / "socket.io").is_dir():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=folder,
                check=True,
                stdin=subprocess.DEVNULL,
            )
        server = cls(["node", str(folder / "server.js")], dict(os.environ), ROOT)
        server.ws_path = "/socket.io/?EIO=4&transport=websocket"
        return server

    def start(self, timeout: float = 120.0) -> Server:
        ready = threading.Event()
        self.lines = []
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._drain, args=(self.proc, ready), daemon=True).start()
        ready.wait(timeout)
        if not self.port:
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.lines[-40:]))
        self._profile()
        return self

    def _profile(self) -> None:
        """BENCH_PYSPY=DIR: record every chat server with py-spy (collapsed stacks) into DIR;
        BENCH_PYSPY_ARGS: more py-spy options (`--gil`: only the thread holding the GIL)."""
        out = os.environ.get("BENCH_PYSPY")
        if not out or "chat_web" not in self.cmd:
            return
        Path(out).mkdir(parents=True, exist_ok=True)
        name = Path(out) / f"chat-{self.pid}.txt"
        spy = Path(sys.executable).with_name("py-spy")
        cmd = [str(spy), "record", "-p", str(self.pid), "-r", "200", "-f", "raw", "-o", str(name)]
        cmd += os.environ.get("BENCH_PYSPY_ARGS", "").split()
        self.spy = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _drain(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip())
            if not self.port and (m := LISTENING.search(line)):
                self.listening_at = time.perf_counter()
                self.port = int(m[2])
                ready.set()
        ready.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.ws_path}"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def write_calls(self) -> int:
        """Write system calls of the server process so far (`syscw` of /proc/PID/io; 0 where
        unreadable): with deliveries, how many messages each write carried."""
        try:
            text = Path(f"/proc/{self.pid}/io").read_text()
        except OSError:
            return 0
        return next(
            (int(line.split()[1]) for line in text.splitlines() if line.startswith("syscw")), 0
        )

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.proc = None
        self.port = 0
        if self.tracebacks():
            lines = ["  !! the server logged a traceback:", *self.lines[-60:]]
            print("\n".join(lines), file=sys.stderr)
        if self.spy is not None:
            self.spy.wait(30)
            self.spy = None

    def tracebacks(self) -> list[str]:
        return [line for line in self.lines if "Traceback" in line]


# --- accounts --------------------------------------------------------------------------------


async def prepare_accounts(
    server: Server, memberships: dict[str, list[str]], concurrency: int = 8
) -> dict[str, str]:
    """Register and log in every user once, join its rooms; {username: token}."""
    from websockets.asyncio.client import connect

    tokens: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

        async def one(user: str, rooms: list[str]) -> None:
            async with gate:
                r = await http.post("/auth/register", json={"username": user, "password": PASSWORD})
                assert r.status_code in (201, 409), r.text
                r = await http.post("/auth/login", json={"username": user, "password": PASSWORD})
                assert r.status_code == 200, r.text
                tokens[user] = r.json()["token"]
                if not rooms:
                    return
                async with connect(
                    server.ws_url,
                    additional_headers={"Authorization": f"Bearer {tokens[user]}"},
                    compression=None,
                    ping_interval=None,
                    max_size=None,
                ) as ws:
                    batch = [
                        {
                            "jsonrpc": "2.0",
                            "id": i,
                            "method": "join_room",
                            "params": {"room_name": rm},
                        }
                        for i, rm in enumerate(rooms)
                    ]
                    await ws.send(msgspec.json.encode(batch).decode())
                    while True:
                        frame = _decode(await asyncio.wait_for(ws.recv(), 30))
                        if isinstance(frame, list):
                            assert all("result" in x for x in frame), frame
                            break

        await asyncio.gather(*(one(u, rooms) for u, rooms in memberships.items()))
    return tokens
