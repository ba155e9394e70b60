"""The settings of the server and the tools: one frozen, typed object built from layered sources.

Sources, later winning (PROTOCOL.md section 6): built-in defaults, a TOML file, `CHAT__*`
variables, the short variables, command-line overrides. Every layer is merged into one nested
dict that msgspec converts once, so each check lives in the types below and each error names
its key as a dotted path (`chat.max_message_length`, `admin.users.0.username`).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import msgspec
from msgspec import Meta, Struct, field

from chat_core.errors import ChatError

PositiveInt = Annotated[int, Meta(ge=1)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
NonEmptyStr = Annotated[str, Meta(min_length=1)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Role = Literal["user", "moderator", "admin"]
# The same alphabets as chat_core.rules (PROTOCOL.md sections 1 and 4); msgspec patterns are
# searched, hence the anchors, and \Z because `$` would accept a trailing newline.
Username = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.\-]{3,32}\Z")]
RoomName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*\Z")]
# A configured account gets the registration rule for passwords (PROTOCOL.md section 1).
ConfiguredPassword = Annotated[str, Meta(min_length=8, max_length=128)]
DatabaseUrl = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*://")]

MIN_JWT_SECRET_BYTES: Final = 32
JWT_SECRET_FILE: Final = "jwt_secret"
DEMO_USERS: Final[tuple[tuple[str, str, Role], ...]] = (
    ("admin", "admin123", "admin"),
    ("moderator", "mod123", "moderator"),
    ("alice", "alice123", "user"),
    ("bob", "bob123", "user"),
)

_ENV_PREFIX: Final = "CHAT__"
_SHORT_VARS: Final = (
    ("HOST", ("server", "host")),
    ("PORT", ("server", "port")),
    ("JWT_SECRET", ("auth", "jwt_secret")),
    ("CHAT_DATA_DIR", ("chat", "data_dir")),
    ("LOG_LEVEL", ("logging", "level")),
)
# Values never echoed in error messages or reprs: they end up in logs.
_SECRET_KEYS: Final = frozenset({"jwt_secret", "password", "url"})


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
    # After start-up, freeze what is alive and collect the young generation less often.
    gc_freeze: bool = True
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
    connections_per_ip: PositiveInt = 20
    login_attempts_per_hour: PositiveInt = 20


class Settings(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the chat; build it with `load_settings`, which validates it."""

    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults, TOML file, environment and overrides (later wins) into checked Settings."""
    environ: Mapping[str, str] = os.environ if env is None else env
    layers = _Layers()
    path = _config_path(config_file, environ)
    if path is not None:
        layers.merge_file(path)

    for key, value, label in [*_env_entries(environ), *_override_entries(overrides or {})]:
        layers.set(key, value, label)
    return layers.settings()


def _env_entries(environ: Mapping[str, str]) -> list[tuple[tuple[str, ...], str, str]]:
    """(key, text, variable name) of the `CHAT__*` variables, then of the short ones."""
    named = [
        (tuple(part.lower() for part in name[len(_ENV_PREFIX) :].split("__")), text, name)
        for name, text in environ.items()
        if name.upper().startswith(_ENV_PREFIX)
    ]
    # Numeric order of list indexes, so item 10 comes after item 2 and items grow without gaps.
    named.sort(key=lambda entry: (_sort_key(entry[0]), entry[2]))
    # An exported but empty short variable counts as unset, as compose files often make them.
    short = [(key, environ[name], name) for name, key in _SHORT_VARS if environ.get(name)]
    return named + short


def _override_entries(overrides: Mapping[str, Any]) -> list[tuple[tuple[str, ...], Any, str]]:
    """(key, value, label) of the dotted overrides that carry a value."""
    given = [
        (tuple(name.lower().split(".")), value, f"override {name}")
        for name, value in overrides.items()
        if value is not None
    ]
    return sorted(given, key=lambda entry: _sort_key(entry[0]))


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
    restarts, PROTOCOL.md section 1)."""
    if settings.auth.jwt_secret is not None:
        _check_secret(settings.auth.jwt_secret, "")
        return settings.auth.jwt_secret
    directory = data_dir(settings)
    path = directory / JWT_SECRET_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            _create_secret_file(path, secrets.token_urlsafe(48))
        # Read back even after creating it: a concurrent start-up may have won the race.
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise SettingsError(f"invalid setting auth.jwt_secret: cannot keep {path}: {e}") from e
    _check_secret(secret, f" (from {path})")
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


def _check_secret(secret: str, origin: str) -> None:
    if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
        raise SettingsError(
            f"invalid setting auth.jwt_secret: shorter than {MIN_JWT_SECRET_BYTES} bytes{origin}"
        )


def _config_path(config_file: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if config_file is not None:
        return Path(config_file)
    if env.get("CHAT_CONFIG_FILE"):
        return Path(env["CHAT_CONFIG_FILE"])
    default = Path("config.toml")
    return default if default.is_file() else None


class _Layers:
    """The merged settings tree, plus where each overridden value came from, for messages."""

    def __init__(self) -> None:
        # Starting from the defaults gives every list and table its shape before env indexes it.
        self.tree: dict[str, Any] = msgspec.to_builtins(Settings())
        self.sources: dict[tuple[str, ...], str] = {}
        self.file: str | None = None

    def merge_file(self, path: Path) -> None:
        try:
            with path.open("rb") as fh:
                document = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SettingsError(f"cannot read config file {path}: {e}") from e
        _merge(self.tree, document)
        self.file = str(path)

    def set(self, key: tuple[str, ...], raw: Any, label: str) -> None:
        """Check `raw` against the type of `key`, then store it in the tree."""
        if not all(key):
            raise SettingsError(f"malformed setting name {label}: empty part")
        value = self._coerce(key, _field_type(key, label), raw, label)
        node: Any = self.tree
        for depth in range(1, len(key)):
            node = _child(node, key[:depth], key[depth], label)
        node[_slot(node, key, label)] = value
        self.sources = {k: v for k, v in self.sources.items() if k[: len(key)] != key}
        self.sources[key] = label

    def settings(self) -> Settings:
        try:
            settings = msgspec.convert(self.tree, Settings)
        except msgspec.ValidationError as e:
            where, text = _split_error(e)
            raise self.error(where, text, _lookup(self.tree, where)) from e
        self._check(settings)
        return settings

    def error(
        self, key: tuple[str, ...], text: str, value: Any, label: str | None = None
    ) -> SettingsError:
        """A SettingsError naming `key` and the source that set it (`label`, else looked up)."""
        unknown = re.fullmatch(r"Object contains unknown field `(.*)`", text)
        key = (*key, unknown[1]) if unknown else key
        origin = f" (from {label})" if label else self._origin(key)
        if unknown:
            return SettingsError(f"unknown setting {'.'.join(key)}{origin}")
        detail = text.replace("`", "")
        scalar = isinstance(value, str | int | float) and not any(k in _SECRET_KEYS for k in key)
        if detail.startswith("Expected") and ", got" not in detail and scalar:
            detail += f", got {value!r}"
        return SettingsError(f"invalid setting {'.'.join(key)}: {detail}{origin}")

    def _coerce(self, key: tuple[str, ...], tp: Any, raw: Any, label: str) -> Any:
        try:
            value = _parse_text(str(raw), tp) if isinstance(raw, str | PurePath) else raw
        except _BadText as e:
            raise SettingsError(f"invalid setting {'.'.join(key)}: {e} (from {label})") from e
        try:
            # Lax: environment values are strings ("true", "3000").
            converted = msgspec.convert(value, tp, strict=False)
        except msgspec.ValidationError as e:
            where, text = _split_error(e)
            raise self.error((*key, *where), text, _lookup(value, where), label) from e
        return msgspec.to_builtins(converted)

    def _check(self, settings: Settings) -> None:
        """Rules that span keys, which a field type alone cannot state."""
        if settings.auth.jwt_secret is not None:
            _check_secret(settings.auth.jwt_secret, self._origin(("auth", "jwt_secret")))
        for index, room in enumerate(settings.chat.default_rooms):
            if len(room) > settings.chat.max_room_name_length:
                where: tuple[str, ...] = ("chat", "default_rooms", str(index))
                raise self.error(where, "longer than chat.max_room_name_length", room)
        seen: set[str] = set()
        for index, user in enumerate(settings.admin.users):
            # Usernames are unique case-insensitively (PROTOCOL.md section 1).
            if user.username.lower() in seen:
                where = ("admin", "users", str(index), "username")
                raise self.error(where, f"duplicate username {user.username!r}", None)
            seen.add(user.username.lower())

    def _origin(self, key: tuple[str, ...]) -> str:
        # The value at `key` was set by a source at `key` or above it; a missing field of a new
        # list item was caused by a source below it; anything else came from the file.
        above = [k for k in self.sources if key[: len(k)] == k]
        below = [k for k in self.sources if k[: len(key)] == key]
        if above:
            return f" (from {self.sources[max(above, key=len)]})"
        if below:
            return f" (from {self.sources[min(below, key=_sort_key)]})"
        return f" (from {self.file})" if self.file else ""


def _field_type(key: tuple[str, ...], label: str) -> Any:
    """The declared type at `key` (list items are numbered); SettingsError if there is none."""
    tp: Any = Settings
    for depth, part in enumerate(key):
        bare = _unwrap(tp)
        fields: dict[str, Any] = {}
        if isinstance(bare, type) and issubclass(bare, Struct):
            fields = {f.name: f.type for f in msgspec.structs.fields(bare)}
        if part in fields:
            tp = fields[part]
        elif get_origin(bare) is list and _is_index(part):
            tp = get_args(bare)[0]
        else:
            raise SettingsError(f"unknown setting {'.'.join(key[: depth + 1])} (from {label})")
    return tp


def _parse_text(text: str, tp: Any) -> Any:
    """Turn a string from the environment or the command line into the shape of `tp`."""
    bare = _unwrap(tp)
    if get_origin(bare) is list:
        if text.strip().startswith("["):
            return _json(text)
        # Comma separated, the friendly form for lists of names.
        return [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(bare, type) and issubclass(bare, Struct):
        return _json(text) if text.strip().startswith("{") else text
    if get_origin(bare) is Literal:
        # LOG_LEVEL=INFO and synchronous=normal mean what they say.
        matches = [o for o in get_args(bare) if str(o).lower() == text.strip().lower()]
        return matches[0] if matches else text
    if bare in (int, float, bool):
        return text.strip()
    return text


def _json(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise _BadText(f"not valid JSON ({e})") from e


class _BadText(ValueError):
    """A string that cannot take the shape of its setting; the caller names the key."""


def _child(node: Any, key: tuple[str, ...], next_part: str, label: str) -> Any:
    """The table or list at `key[-1]` under `node`, created (shaped for `next_part`) if absent."""
    slot = _slot(node, key, label)
    if not isinstance(node[slot], dict | list):
        node[slot] = [] if _is_index(next_part) else {}
    return node[slot]


def _slot(node: Any, key: tuple[str, ...], label: str) -> int | str:
    """Where `key[-1]` lives in `node`; a list grows by one item at a time, never with gaps."""
    if not isinstance(node, list):
        return key[-1]
    index = int(key[-1])
    if index > len(node):
        raise SettingsError(
            f"invalid setting {'.'.join(key)}: list items are numbered from 0 without gaps"
            f" (from {label})"
        )
    if index == len(node):
        node.append(None)
    return index


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    """Deep-merge `overlay` into `base`: tables merge, anything else (lists too) replaces."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _split_error(error: msgspec.ValidationError) -> tuple[tuple[str, ...], str]:
    """Split msgspec's "message - at `$.a.b[0]`" into (("a", "b", "0"), "message")."""
    text = str(error)
    at = re.search(r" - at `\$([^`]*)`$", text)
    if at is None:
        return (), text
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", at[1])
    return tuple(name or index for name, index in parts), text[: at.start()]


def _lookup(value: Any, key: tuple[str, ...]) -> Any:
    for part in key:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and _is_index(part) and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def _sort_key(key: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if _is_index(p) else (1, 0, p) for p in key)
