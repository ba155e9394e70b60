"""Running the server: journal, replay, processor, seeding, then uvicorn on our own socket.

Start-up order (docs/architecture.md section 1): nothing is served from a half-replayed state, so
the port opens only after the journal is migrated, replayed and seeded. Shutdown (SIGTERM or
SIGINT): stop accepting, close every socket with 1001, let the processor finish the commands
in flight, close the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from chat_core.journal.check import checked_replay
from chat_core.journal.open import dialect, open_journal
from chat_core.processor import CommandProcessor, Committed
from chat_core.protocol.codes import Close
from chat_core.settings.paths import check_writable, ensure_dir, ensure_sqlite_file
from chat_core.settings.schema import (
    Settings,
    SettingsError,
    data_dir,
    database_url,
    resolve_jwt_secret,
    sqlite_path,
)
from chat_web.app import create_app
from chat_web.http.deadline import deadline_protocol
from chat_web.hub.fanout import Hub
from chat_web.metrics import Metrics
from chat_web.runtime import Runtime
from chat_web.seed import seed
from chat_web.ws.direct import DirectWebSocketProtocol

if TYPE_CHECKING:
    from chat_web.nodes.link import NodeLink

log = logging.getLogger("chat_web")
# The start-up line is printed at any log level: operators and tests read the port from it.
banner_log = logging.getLogger("chat_web.startup")
banner_log.setLevel(logging.INFO)

SHUTDOWN_GRACE = 5.0


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


class _Server(uvicorn.Server):
    """uvicorn's server, with our start-up line and our 1001 close of every socket."""

    def __init__(self, config: uvicorn.Config, hub: Hub, banner: str) -> None:
        super().__init__(config)
        self.hub = hub
        self.banner = banner

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals once it has stopped, which would kill the process
        # with the signal's status; a graceful stop exits 0 (docs/protocol.md section 6).
        self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            banner_log.info(self.banner)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first, then close the sockets ourselves with 1001 (uvicorn would use
        # 1012) after their queued frames; uvicorn then mops up whatever is left.
        for server in self.servers:
            server.close()
        log.info("shutting down: closing %d connections", self.hub.connection_count)
        await self.hub.close_all(Close.GOING_AWAY, SHUTDOWN_GRACE)
        await super().shutdown(sockets)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings) -> None:
    """Run the server until a signal stops it. Raises ChatError/OSError on a failed start."""
    # uvicorn handles SIGTERM and SIGINT once the port opens; until then (migrations, replay,
    # seeding) they cancel start-up at its next await, so it unwinds in order and exits 0.
    _stop_start_up_on_signals(asyncio.current_task())
    url = database_url(settings)
    # The disk first, whatever else is configured: the data directory exists (0700), the
    # journal exists (0600) and can be written, or start-up stops naming the OS's reason
    # (the journal's part for a SQLite file only).
    ensure_dir(data_dir(settings))
    ensure_sqlite_file(url)
    check_writable(url)
    shared = dialect(url) == "postgresql"
    if shared and not settings.chat.persist_messages:
        # Live messages bypass the journal, the one thing nodes share.
        raise SettingsError(
            "chat.persist_messages = false needs a SQLite journal: on PostgreSQL, nodes"
            " share messages only through the journal"
        )
    # A SQLite server's generated secret lives in its data directory, checked before anything
    # else; nodes on PostgreSQL share the one kept in the journal's database.
    secret = None if shared and settings.auth.jwt_secret is None else resolve_jwt_secret(settings)
    journal = await open_journal(url, synchronous=settings.database.synchronous, migrate=True)
    processor: CommandProcessor | None = None
    link: NodeLink | None = None
    try:
        if secret is None:
            from chat_web.nodes.link import shared_secret

            secret = await shared_secret(journal)
        window = settings.chat.history_on_join
        # A damaged journal is never served: SQLite's check and the fold, checked together.
        state, report = await checked_replay(journal, history_window=window)

        # One shared cell: the processor writes the committed state, the hub reads it.
        committed = Committed(state)
        hub = Hub(settings.chat.typing_timeout_seconds, committed=committed)
        metrics = Metrics() if settings.server.metrics else None
        observer = metrics.observer if metrics is not None else None
        processor = CommandProcessor(journal, committed, hub, observer=observer)
        processor.start()
        rt = Runtime.build(settings, journal, processor, hub, secret, metrics)
        if metrics is not None:
            metrics.attach(rt, report.seconds, report.events)
        await seed(rt)
        if journal.shared:
            # Imported here: a SQLite server never loads asyncpg.
            from chat_web.nodes.link import NodeLink

            link = NodeLink(rt, url)
            link.start()
        _tune_gc(settings)
        sock = _bind(settings.server.host, settings.server.port)
        host, port = sock.getsockname()[:2]
        where = sqlite_path(settings) or journal.url  # a server's URL: without its password
        display_host = f"[{host}]" if ":" in host else host
        banner = (
            f"chat-web listening on http://{display_host}:{port} journal={where}"
            f" replayed={report.events} events in {report.seconds:.2f}s"
        )
        config = _config(settings, create_app(rt))
        server = _Server(config, hub, banner)
        _stop_start_up_on_signals(None)
        await server.serve(sockets=[sock])
    finally:
        _stop_start_up_on_signals(None)
        if link is not None:
            await link.stop()
        if processor is not None:
            await processor.stop()
        await journal.close()
        log.info("stopped")


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_start_up_on_signals(task: asyncio.Task[Any] | None) -> None:
    """Make SIGTERM/SIGINT cancel `task` (start-up), or with None hand them back."""
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            if task is None:
                loop.remove_signal_handler(sig)
            else:
                loop.add_signal_handler(sig, task.cancel)


# server.gc_freeze (default on): after start-up, move everything alive (the replayed state,
# modules) into the garbage collector's permanent generation and collect the young generation
# less often, so collections stop walking the whole state while the server is answering.
# bench/run.py's latency scenario measures both ways.
GC_THRESHOLDS = (50_000, 20, 100)


def _tune_gc(settings: Settings) -> None:
    if not settings.server.gc_freeze:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.info("gc: froze %d objects, thresholds %s", gc.get_freeze_count(), GC_THRESHOLDS)


def _config(settings: Settings, app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # uvicorn's websockets-sansio protocol with a raw-write path (chat_web.ws.direct).
        ws=(
            DirectWebSocketProtocol
            if _has("websockets") and settings.server.direct_writes
            else "websockets-sansio"
            if _has("websockets")
            else "auto"
        ),
        ws_per_message_deflate=False,
        ws_max_size=settings.server.max_frame_bytes,
        loop="uvloop" if _has("uvloop") else "asyncio",
        http=deadline_protocol(settings.server.header_timeout_seconds),
        # X-Forwarded-* only from the configured proxies: from anyone else they would let a
        # client pick the address its per-address limits count against.
        proxy_headers=bool(settings.server.trusted_proxies),
        forwarded_allow_ips=list(settings.server.trusted_proxies) or None,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        # Bounded: a peer that never finishes its close cannot hold the shutdown forever.
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
    )


def run(settings: Settings) -> None:
    """Run `serve` on uvloop when available (uvicorn does not pick a loop for `serve`)."""
    # A signal during start-up cancels it (see `serve`): that is a requested stop, not an error.
    with contextlib.suppress(asyncio.CancelledError):
        if _has("uvloop"):
            import uvloop

            uvloop.run(serve(settings))
        else:
            asyncio.run(serve(settings))
