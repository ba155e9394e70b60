"""Saved sessions: the tokens `chat-cli login` keeps for later commands, several per server.

They live in `credentials.json` under the user's config directory (`typer.get_app_dir`, which
honours XDG_CONFIG_HOME), readable by the user alone (mode 0600, directory 0700). Tokens are
keyed by server URL and username, so a token issued by one server is never sent to another,
and logging in as bob keeps alice's session. Each server has a default user (the last one to
log in), used when a command names none (`--username` picks another).

Several URLs given together (`--server A,B`) name the nodes of one chat, which share one
token secret: a login saves its token under each of them, and a command given the set uses a
token saved under any of them (the first, in the order given, that has one), on all of them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import msgspec
import typer

APP_NAME = "chat-cli"
DEFAULT_SERVER = "http://127.0.0.1:3000"
# A token this close to its expiry is treated as expired: a session started with it would
# be cut off almost at once.
EXPIRY_MARGIN_SECONDS = 30


class Credential(msgspec.Struct, frozen=True, kw_only=True):
    server: str
    username: str
    token: str
    expires_at: int  # unix seconds
    role: str = "user"

    def expired(self, now: float | None = None) -> bool:
        moment = time.time() if now is None else now
        return self.expires_at <= moment + EXPIRY_MARGIN_SECONDS


class _File(msgspec.Struct, kw_only=True):
    # Keyed by `_key(server, username)`; files from before several logins were kept are
    # keyed by server alone, which `_key` lookups still find (see `_entries`).
    credentials: dict[str, Credential] = {}
    default: dict[str, str] = {}  # server -> the username used when none is named


class Saved(msgspec.Struct, frozen=True, kw_only=True):
    """A credential saved, and what it replaced: the same user's older session, and the
    server's default user before (None when there was none)."""

    credential: Credential
    path: Path
    replaced: Credential | None
    previous_default: str | None


class StoreError(Exception):
    """The credentials file cannot be read or written (one line for the user)."""


def normalize_server(url: str) -> str:
    """A server base URL in one canonical spelling: scheme added, no trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def resolve_servers(option: str | None) -> list[str]:
    """`--server`, else CHAT_SERVER_URL, else the default (docs/protocol.md section 6): one
    URL, or several separated by commas (the nodes of one chat, tried in that order)."""
    given = option or os.environ.get("CHAT_SERVER_URL") or DEFAULT_SERVER
    urls = [normalize_server(part) for part in given.split(",") if part.strip()]
    # Each once, in the order given.
    return list(dict.fromkeys(urls)) or [DEFAULT_SERVER]


def shown(servers: list[str]) -> str:
    """Servers as the user wrote them: `--server` takes this back."""
    return ",".join(servers)


def config_dir() -> Path:
    return Path(typer.get_app_dir(APP_NAME))


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _read() -> _File:
    path = credentials_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _File()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return msgspec.json.decode(data, type=_File)
    except msgspec.DecodeError:
        # A damaged file only costs a new login; never a crash.
        return _File()


def _write(content: _File) -> None:
    directory = config_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Write beside the target and rename: a crash never leaves half a file, and the
        # temporary file is created 0600 (mkstemp), so the token is never world-readable.
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".credentials-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(msgspec.json.format(msgspec.json.encode(content), indent=2))
            os.chmod(temp, 0o600)
            os.replace(temp, credentials_path())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise StoreError(f"cannot save credentials in {directory}: {exc.strerror}") from exc


def _key(server: str, username: str) -> str:
    # A space never occurs in a normalized URL nor in a username.
    return f"{normalize_server(server)} {username.lower()}"


def _entries(content: _File, server: str) -> dict[str, Credential]:
    """The saved sessions of `server`, by lowercased username (old server-keyed ones too)."""
    url = normalize_server(server)
    return {
        credential.username.lower(): credential
        for credential in content.credentials.values()
        if normalize_server(credential.server) == url
    }


def _default(content: _File, server: str) -> str | None:
    entries = _entries(content, server)
    named = content.default.get(normalize_server(server))
    if named is not None and named.lower() in entries:
        return named.lower()
    # No default recorded (an old file) or it was removed: a lone session is the one.
    return next(iter(entries)) if len(entries) == 1 else None


def load(server: str, username: str | None = None) -> Credential | None:
    """The saved credential of `username` (else the server's default user) for `server`,
    expired or not (the caller tells the user which)."""
    content = _read()
    name = username.lower() if username is not None else _default(content, server)
    return _entries(content, server).get(name) if name is not None else None


def users(server: str) -> list[str]:
    """The usernames with a saved session on `server`, sorted."""
    return sorted((c.username for c in _entries(_read(), server).values()), key=str.lower)


def _drop(content: _File, server: str, username: str) -> Credential | None:
    url = normalize_server(server)
    for key, credential in list(content.credentials.items()):
        if normalize_server(credential.server) == url and credential.username.lower() == username:
            del content.credentials[key]
            return credential
    return None


def save(credential: Credential) -> Saved:
    """Save (or replace) the credential of its server and user, and make that user the
    server's default; what it replaced."""
    content = _read()
    url = normalize_server(credential.server)
    before = _entries(content, url)
    previous_default = _default(content, url)
    default_name = before[previous_default].username if previous_default is not None else None
    previous = before.get(credential.username.lower())
    _drop(content, url, credential.username.lower())
    content.credentials[_key(url, credential.username)] = credential
    content.default[url] = credential.username.lower()
    _write(content)
    return Saved(
        credential=credential,
        path=credentials_path(),
        replaced=previous,
        previous_default=default_name,
    )


def remove(server: str, username: str | None = None) -> Credential | None:
    """Forget the credential of `username` (else the default user) on `server`; the one
    removed, if any. Another saved user of the server, if any, stays; none becomes default
    unless it is the only one left."""
    content = _read()
    name = username.lower() if username is not None else _default(content, server)
    removed = _drop(content, server, name) if name is not None else None
    if removed is not None:
        url = normalize_server(server)
        if content.default.get(url) == name:
            del content.default[url]
        _write(content)
    return removed
