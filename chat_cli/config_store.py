"""Saved sessions: the tokens `chat-cli login` keeps for later commands, one per server.

They live in `credentials.json` under the user's config directory (`typer.get_app_dir`, which
honours XDG_CONFIG_HOME), readable by the user alone (mode 0600, directory 0700). Tokens are
keyed by server URL so a token issued by one server is never sent to another.
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
    credentials: dict[str, Credential] = {}


class StoreError(Exception):
    """The credentials file cannot be read or written (one line for the user)."""


def normalize_server(url: str) -> str:
    """A server base URL in one canonical spelling: scheme added, no trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def resolve_server(option: str | None) -> str:
    """`--server`, else CHAT_SERVER_URL, else the default (docs/protocol.md section 6)."""
    return normalize_server(option or os.environ.get("CHAT_SERVER_URL") or DEFAULT_SERVER)


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


def load(server: str) -> Credential | None:
    """The saved credential for `server`, expired or not (the caller tells the user which)."""
    return _read().credentials.get(normalize_server(server))


def save(credential: Credential) -> Path:
    """Save (or replace) the credential of its server; the file written."""
    content = _read()
    content.credentials[normalize_server(credential.server)] = credential
    _write(content)
    return credentials_path()


def remove(server: str) -> Credential | None:
    """Forget the credential of `server`; the one removed, if any."""
    content = _read()
    removed = content.credentials.pop(normalize_server(server), None)
    if removed is not None:
        _write(content)
    return removed
