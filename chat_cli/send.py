"""`chat-cli send`: one message from a script, acknowledged before the command exits."""

from __future__ import annotations

import uuid

from chat_cli.auth import login_hint
from chat_cli.session import ConnectionLost, RpcError, Session, SessionEnded
from chat_core.domain.rules import room_key
from chat_core.protocol import params as p
from chat_core.protocol import results as r

EXIT_FOR_END = {"kicked": 3, "banned": 4}


async def send(servers: list[str], token: str, room: str, text: str) -> tuple[int, str]:
    """Join `room` if needed, send `text`, wait for the ack: (exit code, line to print)."""
    # With one server, no reconnect: a script wants a prompt answer, and the client_msg_id
    # makes its own retry (running the command again) safe only within one process anyway.
    # With several, a dropped connection moves to the next, and the message (unacknowledged)
    # is sent again there with the same client_msg_id, within the call's time limit.
    session = Session(servers, token, reconnect=len(servers) > 1)
    try:
        info = await session.start()
        room_id = room_key(room)
        if room_id not in info.rooms:
            await session.call(p.JoinRoomParams(room_name=room), r.JoinRoomResult)
        message = p.SendMessageParams(room_id=room_id, text=text, client_msg_id=uuid.uuid4().hex)
        result = await session.call(message, r.SendMessageResult)
    except SessionEnded as ended:
        if ended.kind == "unauthenticated":
            return 1, f"{ended.message}; run `{login_hint(servers)}`"
        return EXIT_FOR_END.get(ended.kind, 1), ended.message
    except RpcError as exc:
        return 1, f"refused: {exc.message} ({exc.reason or exc.code})"
    except ConnectionLost as exc:
        return 1, str(exc)
    finally:
        await session.close()
    return 0, f"sent to {result.room_id} (seq {result.seq})"
