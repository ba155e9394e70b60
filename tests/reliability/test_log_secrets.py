"""No secret reaches the log at any level: tokens in any spelling, password hashes, message text.

A server at debug level (the most talkative) is driven through registration, login, a socket
whose token is percent-encoded in the query string, and a message; its whole output is then
searched for each secret.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from helpers import Client, handshake_outcome, unique

from chat_web.logging_setup import redact


async def test_debug_log_holds_no_token_hash_or_message_text(launch: Any) -> None:
    server = launch({"CHAT__LOGGING__LEVEL": "debug"})
    async with server.harness() as chat:
        user = await chat.new_user("sec")
        # `%74oken` is `token` with one letter percent-encoded: the server decodes it.
        spelled = server.ws_url + "?%74oken=" + quote(user.token, safe="")
        client = await Client.open(spelled, None)
        await client.call("join_room", room_name=unique("sec"))
        marker = "secret-text-" + unique("m")
        await client.call("send_message", text=marker)
        await client.close()
        outcome = await handshake_outcome(server.ws_url + "?token=" + user.token + "x", None)
        assert outcome == ("http", 401)
    log = server.log_text()
    # The server did log at debug level (otherwise the test proves nothing).
    assert " DEBUG " in log
    token_body = user.token.split(".")[1]
    assert token_body not in log
    assert quote(user.token, safe="") not in log
    assert "$2b$" not in log
    assert marker not in log


def test_redact_covers_every_spelling() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    hashed = "$2b$04$" + "a" * 53
    lines = [
        f"GET /ws?token={jwt}&since=1",
        f"GET /ws?%74oken={quote(jwt)}",
        f"GET /ws?t%6Fk%65n={jwt}",
        f"authorization: Bearer {jwt}",
        f"claims of {jwt} checked",
        f"params ('alice', '{hashed}')",
    ]
    for line in lines:
        clean = redact(line)
        assert "<redacted>" in clean, line
        assert "c2lnbmF0dXJl" not in clean and hashed not in clean, clean
    assert redact("nothing secret here 100%") == "nothing secret here 100%"
