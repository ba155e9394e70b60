"""Account actions over real sockets (docs/protocol.md sections 1 and 4): a password change, a
logout, an admin's reset, disable, enable and revoke-all. Tokens issued before each (within the
same second too) are refused at the handshake, open sessions end with 4401, across restarts."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import PASSWORD, Client, Harness, User, handshake_outcome

NEW_PASSWORD = "a-new-password-1"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _two_sessions(chat: Harness, user: User) -> tuple[str, Client]:
    """A second token of `user` (same second as its first, usually) and a live connection."""
    second = await chat.login(user.username, user.password)
    return second, await chat.connect(second)


async def _refused(chat: Harness, *tokens: str) -> None:
    for token in tokens:
        assert await handshake_outcome(chat.ws_url, token) == ("http", 401)


async def test_a_password_change_revokes_every_older_token_and_returns_a_fresh_one(
    start_server: Any,
) -> None:
    server = start_server()
    async with server.harness() as chat:
        user = await chat.new_user("pw")
        second, open_conn = await _two_sessions(chat, user)
        wrong = await chat.http.post(
            "/auth/password",
            json={"old_password": "not-the-password", "new_password": NEW_PASSWORD},
            headers=_bearer(user.token),
        )
        assert (wrong.status_code, wrong.json()["reason"]) == (401, "invalid_credentials")
        weak = await chat.http.post(
            "/auth/password",
            json={"old_password": PASSWORD, "new_password": "short"},
            headers=_bearer(user.token),
        )
        assert (weak.status_code, weak.json()["reason"]) == (400, "weak_password")
        response = await chat.http.post(
            "/auth/password",
            json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=_bearer(user.token),
        )
        assert response.status_code == 200, response.text
        fresh = response.json()["token"]
        assert await open_conn.wait_closed() == 4401
        await _refused(chat, user.token, second)
        assert (await handshake_outcome(chat.ws_url, fresh))[0] == "frame"
        assert (await chat.login_response(user.username, PASSWORD)).status_code == 401
        # A login right after the change (the same second, usually) is not refused.
        after = await chat.login(user.username, NEW_PASSWORD)
        assert (await handshake_outcome(chat.ws_url, after))[0] == "frame"
    assert await asyncio.to_thread(server.restart) == 0
    async with server.harness() as chat:
        await _refused(chat, user.token, second)
        for token in (fresh, after):
            assert (await handshake_outcome(chat.ws_url, token))[0] == "frame"
    assert "password_changed" in server.log_text() and "addr=127.0.0.1" in server.log_text()


async def test_a_logout_revokes_that_token_only(start_server: Any) -> None:
    server = start_server()
    async with server.harness() as chat:
        user = await chat.new_user("out")
        first = await chat.connect(user)
        second, other = await _two_sessions(chat, user)
        response = await chat.http.post("/auth/logout", headers=_bearer(user.token))
        assert response.json() == {"logged_out": True}, response.text
        assert await first.wait_closed() == 4401
        assert (await other.call("ping"))["pong"] is True
        await _refused(chat, user.token)
        again = await chat.http.post("/auth/logout", headers=_bearer(user.token))
        assert (again.status_code, again.json()["reason"]) == (401, "invalid_token")
        missing = await chat.http.post("/auth/logout")
        assert (missing.status_code, missing.json()["reason"]) == (401, "missing_token")
    assert await asyncio.to_thread(server.restart) == 0
    async with server.harness() as chat:
        await _refused(chat, user.token)
        assert (await handshake_outcome(chat.ws_url, second))[0] == "frame"


async def test_admin_reset_disable_enable_and_revoke_refuse_older_tokens_across_a_restart(
    start_server: Any,
) -> None:
    server = start_server()
    async with server.harness() as chat:
        admin = await chat.admin_client()
        users = {
            action: await chat.new_user(action[:6]) for action in ("reset", "disable", "revoke")
        }
        conns = {action: await chat.connect(user) for action, user in users.items()}
        seconds = {action: await chat.login(u.username, u.password) for action, u in users.items()}
        result = await admin.call(
            "reset_password", target_username=users["reset"].username, new_password=NEW_PASSWORD
        )
        assert result == {"username": users["reset"].username}
        result = await admin.call("disable_account", target_username=users["disable"].username)
        assert result == {"username": users["disable"].username, "disabled": True}
        result = await admin.call("revoke_tokens", target_username=users["revoke"].username)
        assert result == {"username": users["revoke"].username, "revoked": True}
        for action, user in users.items():
            assert await conns[action].wait_closed() == 4401, action
            await _refused(chat, user.token, seconds[action])
        # Disabled: no login; the others log in again (reset: with the new password).
        disabled = users["disable"]
        assert (await chat.login_response(disabled.username, PASSWORD)).status_code == 401
        assert (await chat.login_response(users["reset"].username, PASSWORD)).status_code == 401
        await chat.login(users["reset"].username, NEW_PASSWORD)
        await chat.login(users["revoke"].username, PASSWORD)
        # Not an admin: refused.
        plain = await chat.connect(await chat.new_user("plain"))
        error = await plain.error_of("revoke_tokens", target_username=users["revoke"].username)
        assert error.reason == "insufficient_role"
    assert await asyncio.to_thread(server.restart) == 0
    async with server.harness() as chat:
        for action, user in users.items():
            await _refused(chat, user.token, seconds[action])
        assert (await chat.login_response(disabled.username, PASSWORD)).status_code == 401
        admin = await chat.admin_client()
        result = await admin.call("enable_account", target_username=disabled.username)
        assert result == {"username": disabled.username, "disabled": False}
        # Its kept password works again; the tokens the disable revoked stay revoked.
        token = await chat.login(disabled.username, PASSWORD)
        assert (await handshake_outcome(chat.ws_url, token))[0] == "frame"
        await _refused(chat, disabled.token, seconds["disable"])
    log = server.log_text()
    for what in ("password_reset", "account_disabled", "tokens_revoked", "account_enabled"):
        assert what in log, what
