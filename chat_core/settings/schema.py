"""The settings of the server and the tools: one frozen, typed object, and what derives from it.

Each check of a single value lives in the types below; `chat_core.settings.sources` builds the
object from its layered sources (docs/protocol.md section 6) and names the key of any bad value.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from msgspec import Meta, Struct, field

from chat_core.domain.rules import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    ROOM_NAME_PATTERN,
    USERNAME_PATTERN,
    Role,
)
from chat_core.errors import ChatError, StorageError
from chat_core.settings.paths import ensure_dir

PositiveInt = Annotated[int, Meta(ge=1)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
NonEmptyStr = Annotated[str, Meta(min_length=1)]
# A public base URL as a browser reaches it: http(s), a host, an optional path; no query.
BaseUrl = Annotated[str, Meta(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]
Port = Annotated[int, Meta(ge=0, le=65535)]
# The alphabets of chat_core.domain.rules (docs/protocol.md sections 1 and 4); msgspec
# patterns are searched, hence the anchors, and \Z because `$` would accept a trailing newline.
Username = Annotated[str, Meta(pattern=rf"^{USERNAME_PATTERN}\Z")]
RoomName = Annotated[str, Meta(pattern=rf"^{ROOM_NAME_PATTERN}\Z")]
# A configured account gets the registration rule for passwords (docs/protocol.md section 1).
ConfiguredPassword = Annotated[
    str, Meta(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
]
DatabaseUrl = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*://")]

MIN_JWT_SECRET_BYTES: Final = 32
JWT_SECRET_FILE: Final = "jwt_secret"
DEMO_USERS: Final[tuple[tuple[str, str, Role], ...]] = (
    ("admin", "admin123", "admin"),
    ("moderator", "mod123", "moderator"),
    ("alice", "alice123", "user"),
    ("bob", "bob123", "user"),
)


class SettingsError(ChatError):
    """A setting is unknown or has a bad value; start-up stops with a message naming the key."""

    default_reason = "invalid_settings"


class CorsSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    allow_any_origin: bool = True
    allowed_origins: list[NonEmptyStr] = []


class ServerSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: NonEmptyStr = "127.0.0.1"
    port: Port = 3000
    max_frame_bytes: PositiveInt = 65536
    send_queue_limit: PositiveInt = 1024
    # Bytes of outbound frames queued per connection before it is closed with 4008.
    send_queue_bytes: PositiveInt = 4 * 1024 * 1024
    # Members of one JSON-RPC batch; a larger batch is one -32600 `batch_too_large`.
    max_batch_requests: PositiveInt = 50
    # An HTTP request's headers must all arrive within this many seconds of its first byte.
    header_timeout_seconds: Annotated[float, Meta(gt=0)] = 10.0
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or networks).
    trusted_proxies: list[NonEmptyStr] = []
    # After start-up, freeze what is alive and collect the young generation less often.
    gc_freeze: bool = True
    # Frames written straight to the socket's transport, pending ones in one write
    # (chat_web.ws.direct); off: through ASGI `send`, one write per message.
    direct_writes: bool = True
    # GET /metrics in Prometheus' text format (counts only: no user, room or address).
    metrics: bool = True
    # Public base URLs of the other nodes of this chat: the page at `/` learns them (GET
    # /peers) and, when its socket is lost, tries them in turn.
    peer_urls: list[BaseUrl] = []
    cors: CorsSettings = field(default_factory=CorsSettings)


class AuthSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    jwt_secret: str | None = None
    jwt_ttl_seconds: PositiveInt = 86400
    # bcrypt accepts costs 4 to 31.
    bcrypt_rounds: Annotated[int, Meta(ge=4, le=31)] = 12
    # At most this many bcrypt operations at once, so a login flood cannot starve the chat.
    hash_concurrency: PositiveInt = 2

    def __repr__(self) -> str:
        secret = None if self.jwt_secret is None else "***"
        return (
            f"AuthSettings(jwt_secret={secret!r}, jwt_ttl_seconds={self.jwt_ttl_seconds}, "
            f"bcrypt_rounds={self.bcrypt_rounds}, hash_concurrency={self.hash_concurrency})"
        )

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("jwt_secret", None if self.jwt_secret is None else "***"),
            ("jwt_ttl_seconds", self.jwt_ttl_seconds),
            ("bcrypt_rounds", self.bcrypt_rounds),
            ("hash_concurrency", self.hash_concurrency),
        ]


class ChatSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: NonEmptyStr = "./chat_data"
    max_message_length: PositiveInt = 1000
    max_room_name_length: PositiveInt = 50
    max_users_per_room: NonNegativeInt = 0
    history_on_join: NonNegativeInt = 50
    max_resume_events: NonNegativeInt = 10000
    typing_timeout_seconds: Annotated[float, Meta(gt=0)] = 5.0
    default_rooms: list[RoomName] = field(default_factory=lambda: ["general"])
    persist_messages: bool = True


class DatabaseSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: DatabaseUrl | None = None
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


class LoggingSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class AdminUser(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Username
    password: ConfiguredPassword
    # Least privilege unless the operator says otherwise.
    role: Role = "user"

    def __repr__(self) -> str:
        return f"AdminUser(username={self.username!r}, password='***', role={self.role!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("username", self.username), ("password", "***"), ("role", self.role)]


class AdminSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seed_demo_users: bool = True
    users: list[AdminUser] = []


class RateLimitSettings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    messages_per_minute: PositiveInt = 60
    requests_per_minute: PositiveInt = 600
    connections_per_ip: PositiveInt = 20
    connects_per_minute: PositiveInt = 60
    login_attempts_per_hour: PositiveInt = 20
    registrations_per_hour: PositiveInt = 20
    rooms_per_hour: PositiveInt = 20


class Settings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the chat; build it with `settings_sources.load_settings`."""

    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)


def data_dir(settings: Settings) -> Path:
    """The absolute data directory (`~` expanded; relative paths are taken from the cwd)."""
    return Path(settings.chat.data_dir).expanduser().absolute()


def database_url(settings: Settings) -> str:
    """`database.url`, else the SQLite journal `chat.db` in the data directory."""
    if settings.database.url is not None:
        return settings.database.url
    return f"sqlite+aiosqlite:///{(data_dir(settings) / 'chat.db').as_posix()}"


def sqlite_path(settings: Settings) -> Path | None:
    """The absolute file of a SQLite database URL; None for other databases and in-memory ones."""
    # Imported here: SQLAlchemy is slow to import and only this helper needs its URL parser.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url(settings))
    except ArgumentError as e:
        raise SettingsError(f"invalid setting database.url: {e}") from e
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if url.query.get("uri") == "true" and database.startswith("file:"):
        if url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:")
    return Path(database).absolute()


def resolve_jwt_secret(settings: Settings) -> str:
    """The configured JWT secret, else one made once and kept in the data dir (tokens survive
    restarts, docs/protocol.md section 1)."""
    if settings.auth.jwt_secret is not None:
        check_secret(settings.auth.jwt_secret, "")
        return settings.auth.jwt_secret
    directory = data_dir(settings)
    path = directory / JWT_SECRET_FILE
    ensure_dir(directory)
    try:
        if not path.exists():
            _create_secret_file(path, secrets.token_urlsafe(48))
        # Read back even after creating it: a concurrent start-up may have won the race.
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        # The disk, not the setting: name the OS's reason (exit 1, not 2).
        reason = e.strerror or str(e)
        raise StorageError(f"cannot keep the generated JWT secret in {path}: {reason}") from e
    check_secret(secret, f" (from {path})")
    return secret


def _create_secret_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` with mode 0600 unless the file exists, never half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp already creates 0600; fchmod makes it exact whatever the umask.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            # A hard link publishes the complete file only if no other process got there first.
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            # No hard links here (some network or FAT file systems): replace, last one wins.
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def check_secret(secret: str, origin: str) -> None:
    """SettingsError if `secret` is too short to sign tokens; `origin` says where it came from."""
    if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
        raise SettingsError(
            f"invalid setting auth.jwt_secret: shorter than {MIN_JWT_SECRET_BYTES} bytes{origin}"
        )
