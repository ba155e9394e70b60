"""Getting a token: passwords from a prompt or stdin, login, and the saved-token lookup.

Shared by `register`, `login`, `send` and `chat`, so every command explains a missing or
expired session the same way, naming the command to run next.
"""

from __future__ import annotations

import os
import sys

import typer

from chat_cli import api, config_store
from chat_cli.config_store import Credential
from chat_core.domain.rules import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, is_valid_username


class AuthError(Exception):
    """No usable token, or a refused login: `code` is the exit code (1 refused, 2 usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def login_hint(server: str, username: str | None = None) -> str:
    """The command that gets a new token for `server`."""
    user = username or "NAME"
    default = server == config_store.normalize_server(
        os.environ.get("CHAT_SERVER_URL") or config_store.DEFAULT_SERVER
    )
    return f"chat-cli login --username {user}" + ("" if default else f" --server {server}")


def check_username(username: str) -> None:
    if not is_valid_username(username):
        raise AuthError(
            f"invalid username {username!r}: 3 to 32 characters of A-Z a-z 0-9 _ . -", code=2
        )


def read_password(*, from_stdin: bool, confirm: bool) -> str:
    """The password from one line of stdin, or prompted without echo (twice when `confirm`)."""
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line ending goes: spaces inside or around a password are part of it.
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    if not password:
        raise AuthError("empty password", code=2)
    return password


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AuthError(
            f"passwords are {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", code=2
        )


def login(server: str, username: str, password: str) -> Credential:
    """Log in and save the token; raises AuthError with one line on refusal."""
    try:
        result = api.login(server, username, password)
    except api.ApiError as exc:
        raise AuthError(f"login refused: {exc.message}" if exc.status else exc.message) from exc
    credential = Credential(
        server=server,
        username=result.username,
        token=result.token,
        expires_at=result.expires_at,
        role=result.role,
    )
    try:
        config_store.save(credential)
    except config_store.StoreError as exc:
        raise AuthError(str(exc)) from exc
    return credential


def saved_token(server: str, username: str | None) -> Credential:
    """The saved, unexpired token for `server` (and `username`, when given), or AuthError."""
    try:
        credential = config_store.load(server)
    except config_store.StoreError as exc:
        raise AuthError(str(exc)) from exc
    if credential is None:
        raise AuthError(f"not logged in to {server}; run `{login_hint(server, username)}`")
    if username is not None and username.lower() != credential.username.lower():
        raise AuthError(
            f"the saved session for {server} is {credential.username}'s;"
            f" run `{login_hint(server, username)}`"
        )
    if credential.expired():
        raise AuthError(
            f"your session on {server} has expired; run `{login_hint(server, credential.username)}`"
        )
    return credential
