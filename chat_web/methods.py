"""The JSON-RPC methods of docs/protocol.md section 4.

Writes are checked here (`WRITES`: each gives a `Write`, its command and how to answer it), go
through the command processor and answer from its `Outcome` (after the commit);
reads answer from the processor's current state, after the same `authorize` check the decider
makes, so a banned or deleted account is refused on every method, reads included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import msgspec

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain import views
from chat_core.domain.ask import creates_room
from chat_core.domain.decider import authorize, existing_room, member_room
from chat_core.domain.rules import room_key, user_key
from chat_core.errors import InvalidParams, RateLimited
from chat_core.processor import Outcome
from chat_core.protocol import params as p
from chat_core.protocol import results as r
from chat_core.protocol.rpc import Call
from chat_web.account_methods import ACCOUNT_HANDLERS
from chat_web.audit import METHODS as AUDITED
from chat_web.audit import audited
from chat_web.limits import WindowCounter
from chat_web.live import send_live
from chat_web.runtime import Runtime
from chat_web.ws.connection import Connection

MAX_HISTORY_PAGE: Final = 200
# After a request refused by the request budget, the connection's next frame is read this
# much later at most (the retry time if sooner).
MAX_READ_PAUSE: Final = 1.0

Handler = Callable[[Runtime, Connection, Any, datetime], Awaitable[msgspec.Struct]]


async def dispatch(rt: Runtime, conn: Connection, call: Call) -> msgspec.Struct:
    """Run one call (already counted by `request_refusal`) and return its result struct (the
    catalogue's); raises a ChatError on refusal."""
    work = HANDLERS[call.method](rt, conn, call.params, datetime.now(UTC))
    if call.method in AUDITED:
        return await audited(call.method, conn.username, conn.address, call.params, work)
    return await work


def request_refusal(rt: Runtime, conn: Connection) -> RateLimited | None:
    """Count one request against the user's budget; the error to answer if it is spent.

    Every request of a user, on any of its connections, counts against
    `rate_limit.requests_per_minute`, valid or not, answered or not: no method can be flooded
    (joins and leaves fan out and append to the journal as messages do), and neither can
    the parser. Past it, the connection is also read more slowly: a client flooding at wire
    speed took a whole core answering -32029 (bystanders' pings 0.4 ms -> 23 ms); paused, ~1%
    of one.
    """
    if rt.requests is None:
        return None
    wait = rt.requests.take(conn.key)
    if wait <= 0:
        conn.refusals = 0
        return None
    # The retry time alone (0.1 s at 600/min) let a user's 20 sockets be read 200 times a
    # second, refused each time: 64 KB frames kept a core parsing (a bystander's p99 150 ms).
    # Doubled for each refusal in a row, a flood settles at one frame a second a socket.
    conn.read_pause = min(MAX_READ_PAUSE, wait * 2**conn.refusals)
    conn.refusals = min(conn.refusals + 1, 16)
    return _rate_limited("too many requests; slow down", wait)


def _rate_limited(message: str, wait: float) -> RateLimited:
    """-32029 with the wait in whole milliseconds, rounded up (never 0: "now" is wrong)."""
    return RateLimited(message, retry_after_ms=max(1, int(wait * 1000 + 0.999)))


def _events(outcome: Outcome) -> list[e.Event]:
    return [recorded.event for recorded in outcome.events]


def _creates_room(events: Iterable[e.Event]) -> bool:
    return any(isinstance(event, e.RoomCreated) for event in events)


def _room_or_current(conn: Connection, room_id: str | None) -> str:
    """The room a call names, else the connection's current room."""
    if room_id is not None:
        return room_key(room_id)
    if conn.current_room is None:
        raise InvalidParams("no room_id given and no current room", "invalid_params")
    return conn.current_room


# --- writes ----------------------------------------------------------------------------------


class Write:
    """A write, checked at the edge: its command to queue and how its outcome is answered.

    Every write goes through it, on the reader's pipeline (a lone write per frame) or through
    `submit`, so the checks before the processor are written once. `undo` takes back what the
    checks counted if the command fails; `barrier`: its answer changes the connection (its
    current room), so the next frame waits for it.
    """

    __slots__ = ("answer", "barrier", "command", "undo")

    def __init__(
        self,
        command: c.Command,
        answer: Callable[[Outcome], msgspec.Struct],
        undo: Callable[[], None] | None = None,
        *,
        barrier: bool = False,
    ) -> None:
        self.command, self.answer, self.undo, self.barrier = command, answer, undo, barrier


# A write's checks: a `Write` to queue, or a result already known (an unjournaled message).
WriteStart = Callable[[Runtime, Connection, Any, datetime], "Write | msgspec.Struct"]


async def submit(rt: Runtime, write: Write) -> msgspec.Struct:
    """Queue a write and answer it after its commit."""
    try:
        outcome = await rt.processor.submit(write.command)
    except BaseException:
        if write.undo is not None:
            write.undo()
        raise
    return write.answer(outcome)


def _through_processor(start: WriteStart) -> Handler:
    async def handler(rt: Runtime, conn: Connection, params: Any, at: datetime) -> msgspec.Struct:
        write = start(rt, conn, params, at)
        if not isinstance(write, Write):
            return write
        return await submit(rt, write)

    return handler


def join_room(rt: Runtime, conn: Connection, params: p.JoinRoomParams, at: datetime) -> Write:
    command = c.JoinRoom(actor=conn.username, at=at, limits=rt.limits, room_name=params.room_name)
    creations = _count_creation(rt, conn, command)
    undo = None if creations is None else partial(creations.undo, conn.key)
    answer = partial(_joined, rt, conn, room_key(params.room_name), undo)
    return Write(command, answer, undo, barrier=True)


def _joined(
    rt: Runtime,
    conn: Connection,
    room_id: str,
    undo: Callable[[], None] | None,
    outcome: Outcome,
) -> r.JoinRoomResult:
    created = _creates_room(_events(outcome))
    if undo is not None and not created:
        undo()  # somebody else created it meanwhile
    room = existing_room(outcome.state, room_id)
    conn.current_room = room.room_id
    window = rt.settings.chat.history_on_join
    history = list(room.recent[-window:]) if window else []
    return r.JoinRoomResult(
        room_id=room.room_id,
        room_name=room.room_name,
        created=created,
        user_count=len(room.members),
        existing_users=[room.members[key] for key in sorted(room.members.keys())],
        history=history,
        journal_seq=outcome.state.seq,
    )


def _count_creation(rt: Runtime, conn: Connection, command: c.JoinRoom) -> WindowCounter | None:
    """Count a join that would create its room against `rate_limit.rooms_per_hour` (every user
    hears of a new room), or refuse it; the counter to undo it in if nothing gets created.

    The core says whether the join creates (its rejections, a bad name first, come before the
    limit's); the hit counts before the commit, as concurrent joins would otherwise all pass
    the check.
    """
    creations = rt.room_creations
    if creations is None or not creates_room(command, rt.processor.state):
        return None
    wait = creations.retry_after(conn.key)
    if wait > 0:
        raise _rate_limited("too many new rooms; join an existing one", wait)
    creations.hit(conn.key)
    return creations


def leave_room(rt: Runtime, conn: Connection, params: p.LeaveRoomParams, at: datetime) -> Write:
    room_id = _room_or_current(conn, params.room_id)
    command = c.LeaveRoom(actor=conn.username, at=at, room_id=room_id)
    return Write(command, partial(_left, room_id))


def _left(room_id: str, outcome: Outcome) -> r.LeaveRoomResult:
    room = outcome.state.rooms.get(room_id)
    return r.LeaveRoomResult(
        room_id=room_id, user_count=len(room.members) if room is not None else 0
    )


def send_message(
    rt: Runtime, conn: Connection, params: p.SendMessageParams, at: datetime
) -> Write | r.SendMessageResult:
    """send_message's checks before the processor (room, account, rate limit) and its command."""
    room_id = _room_or_current(conn, params.room_id)
    authorize(rt.processor.state, conn.username, at)
    if rt.messages is not None:
        wait = rt.messages.take(conn.key)
        if wait > 0:
            raise _rate_limited("too many messages; slow down", wait)
    command = c.SendMessage(
        actor=conn.username,
        at=at,
        limits=rt.limits,
        room_id=room_id,
        text=params.text,
        client_msg_id=params.client_msg_id,
    )
    if not rt.settings.chat.persist_messages:
        return send_live(rt, command)
    return Write(command, sent_result)


def sent_result(outcome: Outcome) -> r.SendMessageResult:
    """send_message's result from its recorded message: for a retry of its client_msg_id
    (`duplicate`), the message the first one recorded, so the same result."""
    recorded = outcome.events[0]
    sent = recorded.event
    assert isinstance(sent, e.MessageSent)
    return r.SendMessageResult(
        message_id=sent.message_id,
        room_id=sent.room_id,
        seq=recorded.seq,
        timestamp=recorded.at,
        duplicate=outcome.duplicate,
    )


def kick_user(rt: Runtime, conn: Connection, params: p.KickUserParams, at: datetime) -> Write:
    room_id = room_key(params.room_id) if params.room_id is not None else None
    command = c.KickUser(
        actor=conn.username,
        at=at,
        target=params.target_username,
        reason=params.reason,
        room_id=room_id,
    )
    return Write(command, lambda _: r.KickUserResult())


def ban_user(rt: Runtime, conn: Connection, params: p.BanUserParams, at: datetime) -> Write:
    command = c.BanUser(
        actor=conn.username,
        at=at,
        target=params.target_username,
        reason=params.reason,
        duration_seconds=params.duration_seconds,
    )
    return Write(command, _banned)


def _banned(outcome: Outcome) -> r.BanUserResult:
    until = next((ev.until for ev in _events(outcome) if isinstance(ev, e.UserBanned)), None)
    return r.BanUserResult(until=until)


def unban_user(rt: Runtime, conn: Connection, params: p.UnbanUserParams, at: datetime) -> Write:
    command = c.UnbanUser(actor=conn.username, at=at, target=params.target_username)
    return Write(command, lambda outcome: r.UnbanUserResult(unbanned=bool(outcome.events)))


def set_role(rt: Runtime, conn: Connection, params: p.SetRoleParams, at: datetime) -> Write:
    command = c.SetRole(actor=conn.username, at=at, target=params.target_username, role=params.role)
    return Write(command, partial(_role_set, params))


def _role_set(params: p.SetRoleParams, outcome: Outcome) -> r.SetRoleResult:
    account = outcome.state.accounts.get(user_key(params.target_username))
    username = account.username if account is not None else params.target_username
    return r.SetRoleResult(username=username, role=params.role)


def broadcast_announcement(
    rt: Runtime, conn: Connection, params: p.BroadcastAnnouncementParams, at: datetime
) -> Write:
    command = c.BroadcastAnnouncement(
        actor=conn.username, at=at, limits=rt.limits, message=params.message, level=params.level
    )
    return Write(command, _announced)


def _announced(outcome: Outcome) -> r.BroadcastAnnouncementResult:
    recorded = outcome.events[0]
    return r.BroadcastAnnouncementResult(seq=recorded.seq, timestamp=recorded.at)


def delete_room(rt: Runtime, conn: Connection, params: p.DeleteRoomParams, at: datetime) -> Write:
    command = c.DeleteRoom(actor=conn.username, at=at, room_id=room_key(params.room_id))
    return Write(command, lambda _: r.DeleteRoomResult())


WRITES: Final[dict[str, WriteStart]] = {
    "join_room": join_room,
    "leave_room": leave_room,
    "send_message": send_message,
    "kick_user": kick_user,
    "ban_user": ban_user,
    "unban_user": unban_user,
    "set_role": set_role,
    "broadcast_announcement": broadcast_announcement,
    "delete_room": delete_room,
}


# --- ephemeral -------------------------------------------------------------------------------


async def start_typing(
    rt: Runtime, conn: Connection, params: p.StartTypingParams, at: datetime
) -> r.Empty:
    state = rt.processor.state
    account = authorize(state, conn.username, at)
    room = member_room(state, conn.username, _room_or_current(conn, params.room_id))
    rt.hub.typing.start(conn.key, account.username, room.room_id)
    return r.Empty()


async def stop_typing(
    rt: Runtime, conn: Connection, params: p.StopTypingParams, at: datetime
) -> r.Empty:
    state = rt.processor.state
    authorize(state, conn.username, at)
    room = member_room(state, conn.username, _room_or_current(conn, params.room_id))
    rt.hub.typing.stop(conn.key, room.room_id)
    return r.Empty()


# --- reads -----------------------------------------------------------------------------------


async def list_rooms(
    rt: Runtime, conn: Connection, params: p.ListRoomsParams, at: datetime
) -> r.RoomList:
    await rt.fresh()
    state = rt.processor.state
    authorize(state, conn.username, at)
    return views.list_rooms(state, rt.hub.is_online)


async def list_members(
    rt: Runtime, conn: Connection, params: p.ListMembersParams, at: datetime
) -> r.MemberList:
    await rt.fresh()
    state = rt.processor.state
    authorize(state, conn.username, at)
    return views.list_members(state, existing_room(state, params.room_id), rt.hub.is_online)


async def get_history(
    rt: Runtime, conn: Connection, params: p.GetHistoryParams, at: datetime
) -> r.GetHistoryResult:
    await rt.fresh()
    state = rt.processor.state
    authorize(state, conn.username, at)
    room = member_room(state, conn.username, params.room_id)
    limit = min(params.limit, MAX_HISTORY_PAGE)
    before = params.before_seq
    # The in-memory window answers when it holds the whole page and one more message (so
    # has_more is known), or when it holds every message the room ever had.
    recent = [m for m in room.recent if before is None or m.seq < before]
    complete = len(room.recent) == room.message_count
    if len(recent) > limit or complete:
        return r.GetHistoryResult(
            room_id=room.room_id, messages=recent[-limit:], has_more=len(recent) > limit
        )
    messages, has_more = await rt.journal.history(room.room_id, before, limit, room.created_seq)
    return r.GetHistoryResult(room_id=room.room_id, messages=messages, has_more=has_more)


async def whoami(rt: Runtime, conn: Connection, params: p.WhoamiParams, at: datetime) -> r.WhoAmI:
    await rt.fresh()
    state = rt.processor.state
    account = authorize(state, conn.username, at)
    return views.whoami(state, account.username, account.role, conn.current_room)


async def ping(rt: Runtime, conn: Connection, params: p.PingParams, at: datetime) -> r.PingResult:
    state = rt.processor.state
    authorize(state, conn.username, at)
    return r.PingResult(journal_seq=state.seq)


HANDLERS: Final[dict[str, Handler]] = {
    **{method: _through_processor(start) for method, start in WRITES.items()},
    "list_rooms": list_rooms,
    "list_members": list_members,
    "get_history": get_history,
    "start_typing": start_typing,
    "stop_typing": stop_typing,
    "whoami": whoami,
    "ping": ping,
    **ACCOUNT_HANDLERS,
}
