"""The server's HTTP API (docs/protocol.md section 1): register and log in.

Every failure becomes an `ApiError` with one sentence for the user and the server's
`reason` tag, so the commands print one line and pick an exit code without parsing text.
Each call takes one server URL or several (the nodes of one chat): a URL that cannot be
connected to is passed over for the next; a request that reached a server is never repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
import msgspec

_T = TypeVar("_T")

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
Servers = str | Sequence[str]


class ApiError(Exception):
    """The server refused a request, or could not be reached (`reason` "unreachable")."""

    def __init__(self, message: str, reason: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    token_type: str = "Bearer"
    expires_at: int
    username: str
    role: str = "user"


class Registered(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: str = "user"


# Sentences for the refusals a user meets most; other reasons show the server's own words.
_FRIENDLY = {
    "invalid_credentials": "wrong username or password",
    "username_taken": "that username is taken (names are unique in any letter case)",
    "banned": "you are banned from this server",
}


def _post(
    servers: Servers, path: str, body: dict[str, Any] | None, token: str | None = None
) -> httpx.Response:
    """POST to the first of `servers` that accepts a connection."""
    urls = [servers] if isinstance(servers, str) else list(servers)
    for url in urls[:-1]:
        try:
            return _post_one(url, path, body, token)
        except ApiError as exc:
            if not isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
                raise  # it may have reached the server: not repeated elsewhere
    try:
        return _post_one(urls[-1], path, body, token)
    except ApiError as exc:
        if len(urls) > 1 and isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
            raise ApiError(f"cannot reach any of {', '.join(urls)}", "unreachable") from exc
        raise


def _post_one(
    server: str, path: str, body: dict[str, Any] | None, token: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        with httpx.Client(base_url=server, timeout=TIMEOUT) as client:
            return client.post(path, json=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise ApiError(f"the server at {server} did not answer in time", "unreachable") from exc
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach the server at {server} ({exc})", "unreachable") from exc


def _refusal(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(body.get("reason") or f"http_{response.status_code}")
    message = _FRIENDLY.get(reason) or str(
        body.get("error") or f"the server answered HTTP {response.status_code}"
    )
    if response.status_code == 429:
        retry = response.headers.get("Retry-After")
        message = "too many attempts" + (f"; try again in {retry} s" if retry else "; wait a bit")
    return ApiError(message, reason, response.status_code)


def _decode(response: httpx.Response, kind: type[_T]) -> _T:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except msgspec.DecodeError as exc:
        raise ApiError(
            f"unexpected answer from the server (HTTP {response.status_code}): {exc}",
            "bad_response",
            response.status_code,
        ) from exc


def register(
    server: Servers, username: str, password: str, display_name: str | None = None
) -> Registered:
    """Create an account (201), or raise ApiError."""
    body: dict[str, Any] = {"username": username, "password": password}
    if display_name:
        body["display_name"] = display_name
    response = _post(server, "/auth/register", body)
    if response.status_code != 201:
        raise _refusal(response)
    return _decode(response, Registered)


def login(server: Servers, username: str, password: str) -> LoginResult:
    """A session token (200), or raise ApiError."""
    response = _post(server, "/auth/login", {"username": username, "password": password})
    if response.status_code != 200:
        raise _refusal(response)
    return _decode(response, LoginResult)


def change_password(server: Servers, token: str, old: str, new: str) -> LoginResult:
    """Change one's own password (200: a fresh token; older ones are revoked), or ApiError."""
    body = {"old_password": old, "new_password": new}
    response = _post(server, "/auth/password", body, token)
    if response.status_code != 200:
        raise _refusal(response)
    return _decode(response, LoginResult)


def logout(server: Servers, token: str) -> None:
    """Revoke `token` on the server, or raise ApiError."""
    response = _post(server, "/auth/logout", None, token)
    if response.status_code != 200:
        raise _refusal(response)
