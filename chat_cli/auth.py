"""Getting a token: passwords from a prompt or stdin, login, and the saved-token lookup.

Shared by `register`, `login`, `send` and `chat`, so every command explains a missing or
expired session the same way, naming the command to run next.
"""

from __future__ import annotations

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


def login_hint(servers: str | list[str], username: str | None = None) -> str:
    """The command that gets a new token for `servers`."""
    servers = [servers] if isinstance(servers, str) else servers
    user = username or "NAME"
    default = servers == config_store.resolve_servers(None)
    where = "" if default else f" --server {config_store.shown(servers)}"
    return f"chat-cli login --username {user}{where}"


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


def login(servers: list[str], username: str, password: str) -> config_store.Saved:
    """Log in on the first of `servers` that answers and save the token under each of them
    (that user's; other users' sessions stay); raises AuthError with one line on refusal."""
    try:
        result = api.login(servers, username, password)
    except api.ApiError as exc:
        raise AuthError(f"login refused: {exc.message}" if exc.status else exc.message) from exc
    return save_token(servers, result)


def save_token(servers: list[str], result: api.LoginResult) -> config_store.Saved:
    """Save a token under each of `servers` (the nodes share one token secret); what the
    first one's save replaced."""
    try:
        saves = [
            config_store.save(
                Credential(
                    server=url,
                    username=result.username,
                    token=result.token,
                    expires_at=result.expires_at,
                    role=result.role,
                )
            )
            for url in servers
        ]
    except config_store.StoreError as exc:
        raise AuthError(str(exc)) from exc
    return saves[0]


def replaced_note(saved: config_store.Saved) -> str:
    """What a login did to the sessions saved before it, for the line `login` prints."""
    name = saved.credential.username
    if saved.replaced is not None:
        return f"replaced {saved.replaced.username}'s earlier session"
    if saved.previous_default is not None:
        previous = saved.previous_default
        return (
            f"{previous}'s session is kept; it was the default"
            f" (chat-cli chat --username {previous} uses it)"
        )
    return f"{name} is the default user"


def saved_token(servers: str | list[str], username: str | None) -> Credential:
    """The saved, unexpired token for `username` (else the server's default user) under the
    first of `servers` that has one, or AuthError (the first server's) naming the command to
    run."""
    servers = [servers] if isinstance(servers, str) else servers
    errors: list[AuthError] = []
    for server in servers:
        try:
            return _saved_token(server, servers, username)
        except AuthError as exc:
            errors.append(exc)
    raise errors[0]


def _saved_token(server: str, servers: list[str], username: str | None) -> Credential:
    try:
        credential = config_store.load(server, username)
        others = config_store.users(server) if credential is None else []
    except config_store.StoreError as exc:
        raise AuthError(str(exc)) from exc
    if credential is None:
        if username is not None and others:
            raise AuthError(
                f"no saved session for {username} on {server} (saved: {', '.join(others)});"
                f" run `{login_hint(servers, username)}`"
            )
        if others:
            raise AuthError(
                f"several saved sessions on {server} ({', '.join(others)}); pick one with"
                " --username"
            )
        raise AuthError(f"not logged in to {server}; run `{login_hint(servers, username)}`")
    if credential.expired():
        hint = login_hint(servers, credential.username)
        raise AuthError(f"your session on {server} has expired; run `{hint}`")
    return credential
