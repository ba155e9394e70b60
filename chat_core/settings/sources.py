"""Building `Settings` from layered sources, each error naming its key and where it came from.

Sources, later winning (docs/protocol.md section 6): built-in defaults, a TOML file, `CHAT__*`
variables, the short variables, command-line overrides. A `.env` file (`./.env`, or the one
named) adds variables the real environment does not set: below it, above the TOML file.
Every layer is merged into one nested dict that msgspec converts once, so each check lives in
the types of `chat_core.settings.schema` and each error names its key as a dotted path
(`chat.max_message_length`, `admin.users.0.username`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import msgspec
from msgspec import Struct

from chat_core.settings import dotenv
from chat_core.settings.schema import Settings, SettingsError, check_secret

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


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env_file: str | Path | None = None,
) -> Settings:
    """Merge defaults, TOML file, environment and overrides (later wins) into checked Settings.

    `env_file` is read below the environment (a missing one is an error); without it, `./.env`
    is read if present, unless `env` was given (tests pass the whole environment).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if env_file is not None:
        environ = {**dotenv.read(Path(env_file), required=True), **environ}
    elif env is None:
        environ = {**dotenv.read(dotenv.DEFAULT_FILE, required=False), **environ}
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
        scalar = isinstance(value, str | int | float) and not any(k in _SECRET_KEYS for k in key)
        detail = _plain(text, value if scalar else _HIDDEN)
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
            check_secret(settings.auth.jwt_secret, self._origin(("auth", "jwt_secret")))
        for index, room in enumerate(settings.chat.default_rooms):
            if len(room) > settings.chat.max_room_name_length:
                where: tuple[str, ...] = ("chat", "default_rooms", str(index))
                raise self.error(where, "longer than chat.max_room_name_length", room)
        seen: set[str] = set()
        for index, user in enumerate(settings.admin.users):
            # Usernames are unique case-insensitively (docs/protocol.md section 1).
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


# msgspec's type names, as a person setting a variable reads them.
_TYPE_WORDS: Final = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "array": "a list",
    "object": "a table",
    "null": "nothing",
}
_EXPECTED = re.compile(r"Expected `([^`]+)`(.*?)(?:, got `([^`]+)`)?")
_HIDDEN: Final = object()  # a value not to echo (a secret, or not a scalar)


def _plain(text: str, value: Any) -> str:
    """msgspec's "Expected `int`, got `str`" as "expected an integer, got 'abc'": the value
    itself where it may be shown (a variable's value is always a string, which says little)."""
    found = _EXPECTED.fullmatch(text)
    if found is None:
        return text.replace("`", "")
    wanted, bound, got = found.groups()
    words = " or ".join(_TYPE_WORDS.get(name, name) for name in wanted.split(" | "))
    detail = f"expected {words}{bound.replace('`', '')}"
    if value is not _HIDDEN:
        return f"{detail}, got {value!r}"
    return f"{detail}, got {_TYPE_WORDS.get(got, got)}" if got else detail


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
