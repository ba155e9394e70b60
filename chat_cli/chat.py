"""`chat-cli chat`: the interactive session, tying the protocol client to the terminal.

Two tasks run side by side: the input loop (`prompt.InputLine`, a prompt-toolkit session under
`patch_stdout`, so lines printed while the user types appear above the input line and never
garble it) and the event loop (notifications from `Session.events`, rendered by `ui`). When
either ends (/quit, Ctrl-D, kicked, banned) the other is cancelled and the exit code says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Any

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal
from rich.console import Console
from rich.text import Text

from chat_cli import commands as cmd
from chat_cli import ui
from chat_cli.offline import LinkStatus, Outbox, rpc_text
from chat_cli.prompt import InputLine
from chat_cli.session import ConnectionLost, Ended, Notice, RpcError, Session, SessionEnded, Status
from chat_cli.visible import visible, visible_text
from chat_core.domain.rules import room_key
from chat_core.protocol import notifications as n
from chat_core.protocol import params as p
from chat_core.protocol import results as r

EXIT_FOR_END = {"kicked": 3, "banned": 4, "closed": 0}
TYPING_RESEND_SECONDS = 3.0  # below the server's 5 s expiry, so a long draft keeps showing
TYPING_SHOW_SECONDS = 6.0  # forget a typist the server never said stopped
SHOWN_LIMIT = 5_000  # message seqs remembered for dedupe between history and live


class Chat:
    """The state of one interactive session and its handlers."""

    def __init__(self, session: Session, username: str, console: Console | None = None) -> None:
        self.session = session
        self.me = username
        self.role = "user"
        self.console = console or ui.make_console()
        self.current: str | None = None
        self.joined: dict[str, str] = {}  # room id -> display name, in join order
        self.known_rooms: set[str] = set()
        self.known_users: set[str] = set()
        self.typing: dict[str, dict[str, float]] = {}  # room id -> username -> expiry
        self._shown: OrderedDict[int, None] = OrderedDict()
        self._typing_sent = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._input: InputLine | None = None
        self.outbox = Outbox(session, self.show)
        self.link = LinkStatus(self.show, self._redraw)
        self._leaving: set[str] = set()  # rooms our own /leave is leaving
        self.exit_code = 0

    # -- output ----------------------------------------------------------------------------

    def _redraw(self) -> None:
        if self._input is not None:
            self._input.redraw()

    def show(self, line: Text | str) -> None:
        # `ui` builds lines from visible strings already; this guards any other path.
        self.console.print(visible_text(line if isinstance(line, Text) else Text(line)))

    def _first_time(self, seq: int | None) -> bool:
        """True the first time a message seq is shown (history and live may overlap)."""
        if not isinstance(seq, int):
            return True
        if seq in self._shown:
            return False
        self._shown[seq] = None
        if len(self._shown) > SHOWN_LIMIT:
            self._shown.popitem(last=False)
        return True

    def show_message(self, params: r.Message | n.MessageReceived, *, old: bool = False) -> None:
        if self._first_time(params.seq):
            self.known_users.add(params.username)
            self.show(ui.message(params, self.me, self.current, old=old))

    # -- start -----------------------------------------------------------------------------

    async def begin(self, info: n.ConnectionEstablished) -> None:
        """Show where we are: rooms, the current room's recent history."""
        self.role = info.role
        self.known_users.add(self.me)
        rooms = info.rooms
        for room_id in rooms:
            self.joined[room_id] = room_id
        await self._refresh_rooms()
        current = info.current_room
        self.show(ui.info(f"connected to {self.session.server} as {self.me} ({self.role})"))
        if current is not None:
            await self.join(self.joined.get(current, current))
        elif not rooms:
            self.show(ui.hint("you are in no room: /join general (or /rooms, /help)"))

    async def _refresh_rooms(self) -> None:
        with contextlib.suppress(RpcError, ConnectionLost):
            result = await self.session.call(p.ListRoomsParams(), r.RoomList)
            for room in result.rooms:
                self.known_rooms.add(room.room_id)
                if room.room_id in self.joined:
                    self.joined[room.room_id] = room.room_name

    # -- input -----------------------------------------------------------------------------

    def typists(self, room_id: str | None) -> list[str]:
        now = time.monotonic()
        room = self.typing.get(room_id or "", {})
        return sorted(name for name, expiry in room.items() if expiry > now)

    async def input_loop(self) -> None:  # noqa: C901 (one case per kind: a flat match)
        self._input = InputLine(self, self._on_typing)
        while True:
            line = await self._input.read()
            if line is None:
                return
            parsed = cmd.parse(line)
            if parsed is None:
                continue
            if isinstance(parsed, cmd.Say):
                self._spawn(self.say(parsed.text))
                continue
            if isinstance(parsed, cmd.Hint):
                self.show(ui.hint(parsed.text))
                continue
            if self._typing_sent:
                self._typing_sent = 0.0
                if self.current is not None:
                    self._spawn(self.session.notify(p.StopTypingParams(room_id=self.current)))
            if parsed.name == "quit":
                return
            try:
                await self.run(parsed)
            except RpcError as exc:
                self.show(ui.error(rpc_text(exc)))
            except ConnectionLost as exc:
                self.show(ui.error(str(exc)))
            except SessionEnded:
                return

    def _on_typing(self, buffer: Buffer) -> None:
        """Tell the room we are typing, at most every few seconds (the server expires it)."""
        text = buffer.text
        if self.current is None or not text or text.startswith("/"):
            return
        now = time.monotonic()
        if now - self._typing_sent >= TYPING_RESEND_SECONDS:
            self._typing_sent = now
            self._spawn(self.session.notify(p.StartTypingParams(room_id=self.current)))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        # Keep a reference until done: the loop only holds weak ones.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def say(self, text: str) -> None:
        room_id = self.current
        if room_id is None:
            self.show(ui.hint("you are in no room: /join <room> first"))
            return
        self._typing_sent = 0.0  # the server ends our typing state on send
        refused = self.outbox.refusal(text)
        if refused is not None:
            # Refused aloud, and the line goes back into the input: nothing typed is lost.
            self.show(ui.error(f"not sent, not queued: {refused}; try again once reconnected"))
            if self._input is not None:
                self._input.restore(text)
            return
        self.outbox.put(room_id, text)
        if not self.session.connected:
            waiting = ui.plural(len(self.outbox), "message")
            self.show(ui.hint(f"queued until reconnected ({waiting} waiting)"))

    # -- commands --------------------------------------------------------------------------

    async def run(self, command: cmd.Run) -> None:  # noqa: C901 (one case per kind: a flat match)
        """Carry out a slash command (RpcError and ConnectionLost reach the caller)."""
        target = command.target or ""
        match command.name:
            case "help":
                for line in cmd.help_lines():
                    self.show(ui.info(line))
            case "rooms":
                await self.list_rooms()
            case "join":
                await self.join(command.target or "")
            case "leave":
                await self.leave(command.target)
            case "switch":
                self.switch(command.target or "")
            case "who":
                await self.who()
            case "history":
                await self.history(command.count or 20)
            case "kick":
                kick = p.KickUserParams(target_username=target, reason=command.text)
                await self.session.call(kick, r.KickUserResult)
                self.show(ui.info(f"kicked {target}"))
            case "ban":
                ban = p.BanUserParams(
                    target_username=target, reason=command.text, duration_seconds=command.seconds
                )
                banned = await self.session.call(ban, r.BanUserResult)
                self.show(ui.info(f"banned {target} until {ui.stamp(banned.until)}"))
            case "unban":
                unban = p.UnbanUserParams(target_username=target)
                unbanned = await self.session.call(unban, r.UnbanUserResult)
                done = "unbanned" if unbanned.unbanned else "was not banned:"
                self.show(ui.info(f"{done} {target}"))
            case "announce":
                announce = p.BroadcastAnnouncementParams(
                    message=command.text or "", level=command.level or "info"
                )
                await self.session.call(announce, r.BroadcastAnnouncementResult)

    async def join(self, room: str) -> None:
        result = await self.session.call(p.JoinRoomParams(room_name=room), r.JoinRoomResult)
        room_id = result.room_id
        self.joined.pop(room_id, None)
        self.joined[room_id] = result.room_name
        self.known_rooms.add(room_id)
        self.current = room_id
        users = result.existing_users
        self.known_users.update(users)
        verb = "created and joined" if result.created else "in"
        self.show(
            ui.info(f"{verb} #{room_id}: {ui.plural(len(users), 'user')}: {', '.join(users)}")
        )
        for message in result.history:
            self.show_message(message, old=True)

    async def leave(self, room: str | None) -> None:
        room_id = room_key(room) if room else self.current
        if room_id is None:
            self.show(ui.hint("you are in no room"))
            return
        # Our own user_left may arrive before or after the answer: either way it adds no line,
        # so leaving reads as one line, with the room we are now in.
        self._leaving.add(room_id)
        try:
            await self.session.call(p.LeaveRoomParams(room_id=room_id), r.LeaveRoomResult)
        finally:
            self._leaving.discard(room_id)
        self._forget_room(room_id, quiet=True)
        now = f"; now in #{self.current}" if self.current is not None else "; in no room now"
        self.show(ui.info(f"left #{room_id}{now}"))

    def _forget_room(self, room_id: str, *, quiet: bool = False) -> None:
        self.joined.pop(room_id, None)
        self.typing.pop(room_id, None)
        if self.current == room_id:
            # As the server does: the most recently joined room still held, or none.
            self.current = next(reversed(self.joined), None)
            if self.current is not None and not quiet:
                self.show(ui.info(f"now in #{self.current}"))

    def switch(self, room: str) -> None:
        room_id = room_key(room)
        if room_id not in self.joined:
            self.show(ui.hint(f"you are not in #{room_id}: /join {room} first"))
            return
        self.current = room_id
        self.show(ui.info(f"now in #{room_id}"))

    async def list_rooms(self) -> None:
        rooms = (await self.session.call(p.ListRoomsParams(), r.RoomList)).rooms
        self.show(ui.info(f"{ui.plural(len(rooms), 'room')}:"))
        for room in rooms:
            room_id = room.room_id
            self.known_rooms.add(room_id)
            mark = "*" if room_id == self.current else ("+" if room_id in self.joined else " ")
            self.show(
                ui.info(
                    f" {mark} #{room_id} ({room.room_name}): {ui.plural(room.user_count, 'user')},"
                    f" {room.online_count} online"
                )
            )

    async def who(self) -> None:
        if self.current is None:
            self.show(ui.hint("you are in no room: /join <room> first"))
            return
        listing = p.ListMembersParams(room_id=self.current)
        members = (await self.session.call(listing, r.MemberList)).members
        line = Text(f"#{visible(self.current)}: ", style=ui.INFO)
        for index, member in enumerate(members):
            name = member.username
            self.known_users.add(name)
            line.append_text(ui.user(name, self.me))
            role = member.role
            extra = [] if role == "user" else [role]
            if not member.online:
                extra.append("offline")
            if extra:
                line.append(visible(f" ({', '.join(extra)})"), style=ui.INFO)
            if index < len(members) - 1:
                line.append(", ")
        self.show(line)

    async def history(self, count: int) -> None:
        if self.current is None:
            self.show(ui.hint("you are in no room: /join <room> first"))
            return
        page = p.GetHistoryParams(room_id=self.current, limit=count)
        messages = (await self.session.call(page, r.GetHistoryResult)).messages
        self.show(ui.info(f"last {len(messages)} messages of #{self.current}:"))
        for message in messages:
            # Asked for explicitly: shown even when already on screen.
            self.show(ui.message(message, self.me, self.current, old=True))

    # -- events ----------------------------------------------------------------------------

    async def event_loop(self) -> None:
        while True:
            item = await self.session.events.get()
            if isinstance(item, Ended):
                self._end(item.error)
                return
            if isinstance(item, Status):
                self._status(item)
            elif isinstance(item, Notice):
                await self.notice(item.method, item.params)
            if self._input is not None:
                self._input.redraw()  # the room or the typists may have changed

    def _status(self, status: Status) -> None:
        self.link.update(status, len(self.outbox))

    def connection_note(self) -> str:
        """The status line's part about the connection ("" while connected)."""
        return self.link.note(len(self.outbox))

    def _end(self, error: SessionEnded) -> None:
        self.exit_code = EXIT_FOR_END.get(error.kind, 1)
        reason = f": {error.message}" if error.message else ""
        match error.kind:
            case "kicked":
                self.show(ui.error(f"you were kicked from the chat{reason}"))
            case "banned":
                self.show(ui.error(f"you are banned{reason}"))
            case "unauthenticated":
                self.show(ui.error(f"your session ended{reason}; run `chat-cli login`"))
            case _:
                self.show(ui.error(f"disconnected{reason}"))

    async def notice(self, method: str, params: n.Notice) -> None:  # noqa: C901 (one case per kind: a flat match)
        """Render one notification and keep the local view of rooms in step."""
        match params:
            case n.MessageReceived():
                self.show_message(params)
                self._stopped_typing(params.room_id, params.username)
            case n.UserJoined(room_id=room_id, username=name):
                self.known_users.add(name)
                if self._mine(name) and room_id not in self.joined:
                    self.joined[room_id] = room_id  # joined from another connection
                if not self._mine(name):
                    text = f"{name} joined ({ui.plural(params.user_count, 'user')})"
                    self.show(ui.event(text, room_id, self.current))
            case n.UserLeft(room_id=room_id, username=name, reason=why):
                self._stopped_typing(room_id, name)
                if self._mine(name) and (room_id in self._leaving or room_id not in self.joined):
                    # Our own /leave, before or after its answer: `leave` says it in one line.
                    self._forget_room(room_id, quiet=True)
                    return
                text = f"{name} left" + ("" if why == "left" else f" ({why})")
                self.show(ui.event(text, room_id, self.current))
                if self._mine(name):
                    self._forget_room(room_id)
            case n.UserKicked(room_id=room_id, username=name):
                where = "the chat" if room_id is None else f"#{room_id}"
                who = "you were" if self._mine(name) else f"{name} was"
                self.show(
                    ui.error(f"{who} kicked from {where} by {params.by}{_why(params.reason)}")
                )
            case n.UserBanned(username=name):
                until = ui.stamp(params.until)
                who = "you are" if self._mine(name) else f"{name} is"
                self.show(
                    ui.error(f"{who} banned until {until} by {params.by}{_why(params.reason)}")
                )
            case n.UserUnbanned(username=name):
                self.show(ui.event(f"{name} was unbanned by {params.by}"))
            case n.RoleChanged(username=name, role=role):
                if self._mine(name):
                    self.role = role
                self.show(ui.event(f"{name} is now {role} (by {params.by})"))
            case n.SystemAnnouncement():
                self.show(ui.announcement(params))
            case n.RoomCreated():
                self.known_rooms.add(params.room_id)
            case n.RoomDeleted(room_id=room_id):
                self.show(ui.event(f"room #{room_id} was deleted by {params.by}"))
                self.known_rooms.discard(room_id)
                self._forget_room(room_id)
            case n.PresenceChanged(username=name):
                self.known_users.add(name)
                self.show(ui.event(f"{name} is {'online' if params.online else 'offline'}"))
            case n.Typing(room_id=room_id, username=name) if method == "user_started_typing":
                if not self._mine(name):
                    self.typing.setdefault(room_id, {})[name] = (
                        time.monotonic() + TYPING_SHOW_SECONDS
                    )
                    if is_dumb_terminal():
                        # No toolbar to show it in: one line instead.
                        self.show(ui.event(f"{name} is typing...", room_id, self.current))
            case n.Typing(room_id=room_id, username=name):
                self._stopped_typing(room_id, name)
            case n.ResyncRequired():
                await self._resync()

    def _mine(self, name: str) -> bool:
        return name.lower() == self.me.lower()

    def _stopped_typing(self, room_id: str, name: str) -> None:
        self.typing.get(room_id, {}).pop(name, None)

    async def _resync(self) -> None:
        """Too much was missed for a resume: refetch rooms and the recent history."""
        self.show(ui.info("too much was missed while away; refetching the rooms"))
        current = self.current
        with contextlib.suppress(RpcError, ConnectionLost):
            held = (await self.session.call(p.WhoamiParams(), r.WhoAmI)).rooms
            for room_id in list(self.joined):
                if room_id not in held:
                    self._forget_room(room_id)
            for room_id in held:
                if room_id != current:
                    await self.join(self.joined.get(room_id, room_id))
            if current in held:
                await self.join(self.joined.get(current, current))

    # -- main ------------------------------------------------------------------------------

    async def main(self, info: n.ConnectionEstablished) -> int:
        """Run until /quit, Ctrl-C/Ctrl-D or the end of the session; the exit code."""
        with patch_stdout(raw=True):
            try:
                await self.begin(info)
            except (RpcError, ConnectionLost) as exc:
                self.show(ui.error(str(exc)))
            events = asyncio.create_task(self.event_loop(), name="chat-events")
            typing = asyncio.create_task(self.input_loop(), name="chat-input")
            done, pending = await asyncio.wait(
                {events, typing}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for task in done:
                with contextlib.suppress(asyncio.CancelledError):
                    task.result()
            await self.outbox.close()
            await self.session.close()
            self.link.close()
            for task in list(self._tasks):
                task.cancel()
        return self.exit_code


def _why(reason: str | None) -> str:
    return f": {reason}" if reason else ""
