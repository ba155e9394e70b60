"""Logging of the server: one stderr handler, `text` or `json` (one object a line).

Lines about a connection carry its id and username as the `conn` and `user` fields (use
`connection_logger`), so an operator can follow one socket through the log.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Final
from urllib.parse import unquote

import msgspec

# A connection's context, then an audit line's fields (chat_web.audit.FIELDS).
_CONTEXT_FIELDS = (
    "conn", "user", "addr", "action", "actor", "target", "outcome", "room", "role",
    "duration_seconds",
)  # fmt: skip
# Secrets in any line, whoever logs it: bearer tokens, `token=` query values (uvicorn and
# websockets log headers and paths at debug level), any JWT-shaped string, bcrypt hashes.
_SECRETS: Final = re.compile(
    r"(?i)(bearer\s+|token=)[^\s&\"',;]+"
    r"|()eyJ[\w-]*\.[\w-]+\.[\w-]*"
    r"|()\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}"
)
# Loggers that write what clients send (frames, SQL parameters: message text, password hashes)
# at debug level. They are held at info whatever the configured level. (SQLAlchemy's engine
# logs nothing below warning unless `echo` is on, and its journal engines hide parameters.)
_PAYLOAD_LOGGERS: Final = ("aiosqlite", "websockets")
_encoder = msgspec.json.Encoder()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [conn=.. user=..]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in _CONTEXT_FIELDS if hasattr(record, name)
        )
        return f"{line} [{context}]" if context else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def redact(message: str) -> str:
    """`message` with every secret replaced by `<redacted>`.

    A percent-encoded spelling (`?%74oken=...`) is decoded first: the server decodes it too.
    """
    decoded = unquote(message) if "%" in message else message
    if _SECRETS.search(decoded) is None:
        return message
    return _SECRETS.sub(lambda m: (m.group(1) or "") + "<redacted>", decoded)


def _redact(record: logging.LogRecord) -> bool:
    """Scrub secrets from every line, whoever logs it."""
    message = record.getMessage()
    clean = redact(message)
    if clean is not message:
        record.msg, record.args = clean, None
    return True


class _FlushingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler that flushes every line (tests and supervisors read it live)."""

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.flush()


class _BoundedQueueHandler(QueueHandler):
    """Formats a line where it is logged and hands it to the writer thread; drops it when the
    thread is `MAX_QUEUED_LINES` behind (counted in `dropped`), never blocking the caller."""

    dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


# Lines waiting for the writer thread at most: a stalled stderr (a full pipe, a slow terminal)
# costs at most this many lines, never the event loop's time (a blocking write there held
# every connection up to 150 ms under a connect/close flood).
MAX_QUEUED_LINES: Final = 10_000
_listener: QueueListener | None = None


def setup_logging(level: str, fmt: str) -> None:
    """Send every log line to stderr at `level`, formatted as `fmt` (`text` or `json`), from a
    thread of its own."""
    global _listener
    if _listener is not None:
        _listener.stop()
    writer = _FlushingHandler(sys.stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))
    handler = _BoundedQueueHandler(queue.Queue(MAX_QUEUED_LINES))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_redact)
    _listener = QueueListener(handler.queue, writer)
    _listener.start()
    # At exit, after the last line ("stopped"): the thread writes what is queued, then ends.
    atexit.register(_listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own start-up chatter would repeat our single start-up line; keep its warnings.
    if level.lower() != "debug":
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        # Alembic narrates every migration step at info; its warnings still show.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True
    for name in _PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    uvicorn_error = logging.getLogger("uvicorn.error")
    if _not_refusal_noise not in uvicorn_error.filters:
        uvicorn_error.addFilter(_not_refusal_noise)


def _not_refusal_noise(record: logging.LogRecord) -> bool:
    # uvicorn's sansio WebSocket protocol logs this error after a handshake refused with an
    # HTTP status through the `websocket.http.response` extension, although the refusal was
    # sent correctly (it only counts `websocket.accept` as completing the handshake).
    message = record.getMessage()
    if message == "Invalid UTF-8 sequence received from client.":
        # A client's bad text frame, answered correctly with close 1007: one line, not a
        # traceback (uvicorn logs it with `logger.exception`).
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = "invalid UTF-8 in a text frame, closed with 1007", None
        return True
    return message != "ASGI callable returned without completing handshake."


class ConnectionLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adding a connection's id, username and address to each line."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def connection_logger(name: str, conn: str, user: str, addr: str) -> ConnectionLogger:
    return ConnectionLogger(logging.getLogger(name), {"conn": conn, "user": user, "addr": addr})
