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
import uuid
from collections import OrderedDict
from typing import Any

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal
from rich.console import Console
from rich.text import Text

from chat_cli import commands as cmd
from chat_cli import ui
from chat_cli.prompt import InputLine
from chat_cli.session import ConnectionLost, Ended, Notice, RpcError, Session, SessionEnded, Status
from chat_cli.visible import visible, visible_text
from chat_core.domain.rules import room_key

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
        self._reconnecting = False
        self.exit_code = 0

    # -- output ----------------------------------------------------------------------------

    def show(self, line: Text | str) -> None:
        # `ui` builds lines from visible strings already; this guards any other path.
        self.console.print(visible_text(line if isinstance(line, Text) else Text(line)))

    def _first_time(self, seq: Any) -> bool:
        """True the first time a message seq is shown (history and live may overlap)."""
        if not isinstance(seq, int):
            return True
        if seq in self._shown:
            return False
        self._shown[seq] = None
        if len(self._shown) > SHOWN_LIMIT:
            self._shown.popitem(last=False)
        return True

    def show_message(self, params: dict[str, Any], *, old: bool = False) -> None:
        if self._first_time(params.get("seq")):
            self.known_users.add(str(params.get("username", "")))
            self.show(ui.message(params, self.me, self.current, old=old))

    # -- start -----------------------------------------------------------------------------

    async def begin(self, info: dict[str, Any]) -> None:
        """Show where we are: rooms, the current room's recent history."""
        self.role = str(info.get("role", self.role))
        self.known_users.add(self.me)
        rooms = [r for r in info.get("rooms", []) if isinstance(r, str)]
        for room_id in rooms:
            self.joined[room_id] = room_id
        await self._refresh_rooms()
        current = info.get("current_room")
        self.show(ui.info(f"connected to {self.session.server} as {self.me} ({self.role})"))
        if isinstance(current, str):
            await self.join(self.joined.get(current, current))
        elif not rooms:
            self.show(ui.hint("you are in no room: /join general (or /rooms, /help)"))

    async def _refresh_rooms(self) -> None:
        with contextlib.suppress(RpcError, ConnectionLost):
            result = await self.session.call("list_rooms")
            for room in result.get("rooms", []):
                room_id = str(room.get("room_id"))
                self.known_rooms.add(room_id)
                if room_id in self.joined:
                    self.joined[room_id] = str(room.get("room_name", room_id))

    # -- input -----------------------------------------------------------------------------

    def typists(self, room_id: str | None) -> list[str]:
        now = time.monotonic()
        room = self.typing.get(room_id or "", {})
        return sorted(name for name, expiry in room.items() if expiry > now)

    async def input_loop(self) -> None:
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
                    self._spawn(self.session.notify("stop_typing", {"room_id": self.current}))
            if parsed.name == "quit":
                return
            try:
                await self.run(parsed)
            except RpcError as exc:
                self.show(ui.error(_rpc_text(exc)))
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
            self._spawn(self.session.notify("start_typing", {"room_id": self.current}))

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
        try:
            # The client_msg_id makes a re-send after a reconnect safe: no double message.
            await self.session.call(
                "send_message",
                {"room_id": room_id, "text": text, "client_msg_id": uuid.uuid4().hex},
            )
        except RpcError as exc:
            self.show(ui.error(f"not sent: {_rpc_text(exc)}"))
        except (ConnectionLost, SessionEnded) as exc:
            self.show(ui.error(f"not sent: {exc}"))

    # -- commands --------------------------------------------------------------------------

    async def run(self, command: cmd.Run) -> None:
        """Carry out a slash command (RpcError and ConnectionLost reach the caller)."""
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
                params: dict[str, Any] = {"target_username": command.target, "reason": command.text}
                await self.session.call("kick_user", _present(params))
                self.show(ui.info(f"kicked {command.target}"))
            case "ban":
                params = {"target_username": command.target, "reason": command.text}
                if command.count:
                    params["duration_seconds"] = command.count * 60
                result = await self.session.call("ban_user", _present(params))
                until = result.get("until") or "for ever"
                self.show(ui.info(f"banned {command.target} until {until}"))
            case "unban":
                result = await self.session.call("unban_user", {"target_username": command.target})
                done = "unbanned" if result.get("unbanned") else "was not banned:"
                self.show(ui.info(f"{done} {command.target}"))
            case "announce":
                await self.session.call(
                    "broadcast_announcement",
                    {"message": command.text, "level": command.level or "info"},
                )

    async def join(self, room: str) -> None:
        result = await self.session.call("join_room", {"room_name": room})
        room_id = str(result.get("room_id", room_key(room)))
        self.joined.pop(room_id, None)
        self.joined[room_id] = str(result.get("room_name", room))
        self.known_rooms.add(room_id)
        self.current = room_id
        users = [str(name) for name in result.get("existing_users", [])]
        self.known_users.update(users)
        verb = "created and joined" if result.get("created") else "in"
        count = f"{len(users)} user{'' if len(users) == 1 else 's'}"
        self.show(ui.info(f"{verb} #{room_id}: {count}: {', '.join(users)}"))
        for message in result.get("history", []):
            if isinstance(message, dict):
                self.show_message(message, old=True)

    async def leave(self, room: str | None) -> None:
        room_id = room_key(room) if room else self.current
        if room_id is None:
            self.show(ui.hint("you are in no room"))
            return
        await self.session.call("leave_room", {"room_id": room_id})
        self._forget_room(room_id)
        self.show(ui.info(f"left #{room_id}"))

    def _forget_room(self, room_id: str) -> None:
        self.joined.pop(room_id, None)
        self.typing.pop(room_id, None)
        if self.current == room_id:
            # As the server does: the most recently joined room still held, or none.
            self.current = next(reversed(self.joined), None)
            if self.current is not None:
                self.show(ui.info(f"now in #{self.current}"))

    def switch(self, room: str) -> None:
        room_id = room_key(room)
        if room_id not in self.joined:
            self.show(ui.hint(f"you are not in #{room_id}: /join {room} first"))
            return
        self.current = room_id
        self.show(ui.info(f"now in #{room_id}"))

    async def list_rooms(self) -> None:
        result = await self.session.call("list_rooms")
        rooms = result.get("rooms", [])
        self.show(ui.info(f"{len(rooms)} room{'' if len(rooms) == 1 else 's'}:"))
        for room in rooms:
            room_id = str(room.get("room_id"))
            self.known_rooms.add(room_id)
            mark = "*" if room_id == self.current else ("+" if room_id in self.joined else " ")
            self.show(
                ui.info(
                    f" {mark} #{room_id} ({room.get('room_name')}): {room.get('user_count')} users,"
                    f" {room.get('online_count')} online"
                )
            )

    async def who(self) -> None:
        if self.current is None:
            self.show(ui.hint("you are in no room: /join <room> first"))
            return
        result = await self.session.call("list_members", {"room_id": self.current})
        members = result.get("members", [])
        line = Text(f"#{visible(self.current)}: ", style=ui.INFO)
        for index, member in enumerate(members):
            name = str(member.get("username"))
            self.known_users.add(name)
            line.append_text(ui.user(name, self.me))
            role = member.get("role")
            extra = [] if role == "user" else [str(role)]
            if not member.get("online"):
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
        result = await self.session.call("get_history", {"room_id": self.current, "limit": count})
        messages = result.get("messages", [])
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
        if status.state == "reconnecting":
            if not self._reconnecting:
                self.show(
                    ui.error(f"connection lost; reconnecting (next try in {status.detail} s)")
                )
            self._reconnecting = True
        elif status.state == "resumed":
            self._reconnecting = False
            self.show(ui.info("reconnected; missed messages follow"))

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

    async def notice(self, method: str, p: dict[str, Any]) -> None:
        """Render one notification and keep the local view of rooms in step."""
        room_id = p.get("room_id")
        name = str(p.get("username", "?"))
        mine = name.lower() == self.me.lower()
        match method:
            case "message_received":
                self.show_message(p)
                self._stopped_typing(room_id, name)
            case "user_joined":
                self.known_users.add(name)
                if mine and isinstance(room_id, str) and room_id not in self.joined:
                    self.joined[room_id] = room_id  # joined from another connection
                if not mine:
                    self.show(
                        ui.event(
                            f"{name} joined ({p.get('user_count')} users)", room_id, self.current
                        )
                    )
            case "user_left":
                why = p.get("reason", "left")
                text = f"{name} left" + ("" if why == "left" else f" ({why})")
                self.show(ui.event(text, room_id, self.current))
                self._stopped_typing(room_id, name)
                if mine and isinstance(room_id, str):
                    self._forget_room(room_id)
            case "user_kicked":
                where = "the chat" if room_id is None else f"#{room_id}"
                who = "you were" if mine else f"{name} was"
                self.show(ui.error(f"{who} kicked from {where} by {p.get('by')}{_why(p)}"))
            case "user_banned":
                until = p.get("until") or "for ever"
                who = "you are" if mine else f"{name} is"
                self.show(ui.error(f"{who} banned until {until} by {p.get('by')}{_why(p)}"))
            case "user_unbanned":
                self.show(ui.event(f"{name} was unbanned by {p.get('by')}"))
            case "role_changed":
                if mine:
                    self.role = str(p.get("role", self.role))
                self.show(ui.event(f"{name} is now {p.get('role')} (by {p.get('by')})"))
            case "system_announcement":
                self.show(ui.announcement(p))
            case "room_created":
                if isinstance(room_id, str):
                    self.known_rooms.add(room_id)
            case "room_deleted":
                self.show(ui.event(f"room #{room_id} was deleted by {p.get('by')}"))
                if isinstance(room_id, str):
                    self.known_rooms.discard(room_id)
                    self._forget_room(room_id)
            case "presence_changed":
                self.known_users.add(name)
                self.show(ui.event(f"{name} is {'online' if p.get('online') else 'offline'}"))
            case "user_started_typing":
                if isinstance(room_id, str) and not mine:
                    self.typing.setdefault(room_id, {})[name] = (
                        time.monotonic() + TYPING_SHOW_SECONDS
                    )
                    if is_dumb_terminal():
                        # No toolbar to show it in: one line instead.
                        self.show(ui.event(f"{name} is typing...", room_id, self.current))
            case "user_stopped_typing":
                self._stopped_typing(room_id, name)
            case "resync_required":
                await self._resync()

    def _stopped_typing(self, room_id: Any, name: str) -> None:
        if isinstance(room_id, str):
            self.typing.get(room_id, {}).pop(name, None)

    async def _resync(self) -> None:
        """Too much was missed for a resume: refetch rooms and the recent history."""
        self.show(ui.info("too much was missed while away; refetching the rooms"))
        current = self.current
        with contextlib.suppress(RpcError, ConnectionLost):
            info = await self.session.call("whoami")
            held = [r for r in info.get("rooms", []) if isinstance(r, str)]
            for room_id in list(self.joined):
                if room_id not in held:
                    self._forget_room(room_id)
            for room_id in held:
                if room_id != current:
                    await self.join(self.joined.get(room_id, room_id))
            if current in held:
                await self.join(self.joined.get(current, current))

    # -- main ------------------------------------------------------------------------------

    async def main(self, info: dict[str, Any]) -> int:
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
            await self.session.close()
            for task in list(self._tasks):
                task.cancel()
        return self.exit_code


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _why(p: dict[str, Any]) -> str:
    return f": {p['reason']}" if p.get("reason") else ""


def _rpc_text(exc: RpcError) -> str:
    if exc.reason == "rate_limited" and "retry_after_ms" in exc.data:
        return f"slow down: try again in {int(exc.data['retry_after_ms']) / 1000:.1f} s"
    return exc.message
