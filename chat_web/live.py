"""`chat.persist_messages = false`: messages delivered live, never journaled.

The message is checked by the same rules as a journaled one (membership, length, ban; asked of
`chat_core.domain.ask`), then fanned out at once to the room's members as `message_received`
without `seq`: it is not a journal event, so it has no place in the durable order, in resume,
in `join_room`'s history or in `get_history`. Its `message_id` comes from a counter started at
the server's start time in microseconds, so ids stay unique across restarts without a journal
write (and far above the ids of journaled messages). `client_msg_id` retries are not
deduplicated in this mode.
"""

from __future__ import annotations

import itertools
import time

from chat_core.domain import commands as c
from chat_core.domain.ask import unjournaled_message
from chat_core.domain.decider import existing_room
from chat_core.domain.rules import user_key
from chat_core.protocol.notifications import MessageReceived
from chat_core.protocol.results import SendMessageResult
from chat_core.protocol.rpc import encode_notification
from chat_web.runtime import Runtime

_ids = itertools.count(time.time_ns() // 1000)


def send_live(rt: Runtime, command: c.SendMessage) -> SendMessageResult:
    """Check `command` against the live state and deliver it now; the send_message result."""
    state = rt.processor.state
    checked = unjournaled_message(command, state)  # the same rejections as a journaled send
    room = existing_room(state, checked.room_id)
    # No seq: the field is left out of the notification.
    message = MessageReceived(
        message_id=max(next(_ids), state.last_message_id + 1),
        room_id=room.room_id,
        username=room.members.get(user_key(command.actor), command.actor),
        text=command.text,
        timestamp=command.at,
        client_msg_id=command.client_msg_id,
    )
    frame = encode_notification("message_received", message).decode()
    rt.hub.delivered += rt.hub.send_to(room.members.keys(), frame)
    rt.hub.typing.stop(user_key(command.actor), room.room_id)
    return SendMessageResult(
        message_id=message.message_id,
        room_id=room.room_id,
        seq=None,
        timestamp=command.at,
        duplicate=False,
    )
