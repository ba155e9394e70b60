"""Rebuild the live state by folding the whole journal, a page at a time.

The result is exactly `fold(initial_state(window), every event)`, but the hot path is cheaper:
a run of `message_sent` rows is folded in bulk. Each message goes, still raw (seq, recorded
time, decoded event), into its room's bounded deque; only the last `history_window` of each
room become `Message` values (with a datetime) when the run is flushed, and the room's
`message_count` and the state's `last_message_id` are kept as plain integers meanwhile.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from contextlib import aclosing
from datetime import timedelta
from typing import Any, Final

import msgspec
from msgspec.structs import replace

from chat_core import codec
from chat_core import events as e
from chat_core.errors import CorruptJournal
from chat_core.evolve import evolve
from chat_core.journal import Journal
from chat_core.state import ChatState, Message, initial_state

# The events that may be folded with `evolve` in the middle of a run of pending messages:
# none of them reads or writes a room's `recent` or `message_count`, nor `last_message_id`
# (joins and leaves replace a room's `members` only; the flush merges the pending messages
# into whatever the room then is). Every other tag (room_created, room_deleted, and any tag
# added later) flushes the run first: an allow-list, so a new event is safe by default.
_RUN_SAFE_TAGS: Final = frozenset(
    {
        "account_registered",
        "password_changed",
        "role_changed",
        "user_joined",
        "user_left",
        "user_kicked",
        "user_banned",
        "user_unbanned",
        "system_announcement",
    }
)
_MESSAGE_VERSION: Final = codec.VERSIONS["message_sent"]
_EPOCH: Final = codec._EPOCH


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    seconds: float
    head: int


class _BulkFolder:
    """Folds raw journal rows into a state; equal to folding `evolve` over each event."""

    def __init__(self, state: ChatState) -> None:
        self.state = state
        self.window = state.history_window
        # room id -> the last `window` messages of the run, raw; and how many the run had.
        self.pending: dict[str, deque[tuple[int, int, e.MessageSent]]] = {}
        self.counts: dict[str, int] = {}

    def flush(self) -> None:
        """Turn the pending messages into the rooms' `recent` and `message_count`."""
        if not self.pending:
            return
        rooms = self.state.rooms
        window = self.window
        epoch = _EPOCH
        for room_id, run in self.pending.items():
            room = rooms[room_id]
            if window > 0:
                messages = [
                    Message(
                        seq=seq,
                        message_id=event.message_id,
                        room_id=event.room_id,
                        username=event.username,
                        text=event.text,
                        timestamp=epoch + timedelta(0, at // 1_000_000, at % 1_000_000),
                        client_msg_id=event.client_msg_id,
                    )
                    for seq, at, event in run
                ]
                recent: tuple[Message, ...] = (*room.recent, *messages)[-window:]
            else:
                recent = ()
            count = room.message_count + self.counts[room_id]
            rooms = rooms.set(room_id, replace(room, recent=recent, message_count=count))
        self.pending.clear()
        self.counts.clear()
        self.state = replace(self.state, rooms=rooms)

    def feed(self, rows: list[tuple[Any, ...]]) -> None:
        decode = codec._decoder.decode
        message_cls = e.MessageSent
        pending = self.pending
        counts = self.counts
        maxlen = max(self.window, 0)
        state = self.state
        rooms = state.rooms
        seq = state.seq
        last_id = state.last_message_id
        for row in rows:
            row_seq, tag, version, payload, at, actor, command_id = row
            if tag is None:  # message_sent (see Journal.replay_rows)
                if version == _MESSAGE_VERSION:
                    try:
                        event = decode(payload)
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        raise CorruptJournal(row_seq, str(exc)) from exc
                else:
                    event = codec.decode_event(row_seq, "message_sent", version, payload)
                if type(event) is not message_cls:
                    raise CorruptJournal(
                        row_seq, f"payload type {e.tag_of(event)!r} under tag 'message_sent'"
                    )
                seq = row_seq
                if event.message_id > last_id:
                    last_id = event.message_id
                room_id = event.room_id
                run = pending.get(room_id)
                if run is None:
                    if room_id not in rooms:
                        continue  # as evolve: only seq and last_message_id move
                    run = pending[room_id] = deque(maxlen=maxlen)
                    counts[room_id] = 1
                else:
                    counts[room_id] += 1
                run.append((row_seq, at, event))
            else:
                (recorded,) = codec.decode_rows(
                    [(row_seq, tag, version, payload, actor, command_id, at)]
                )
                # Bring the state up to date with the run (seq, last_message_id; and the
                # rooms, unless the event cannot touch what the run changes).
                self.state = replace(state, seq=seq, last_message_id=last_id)
                if tag not in _RUN_SAFE_TAGS:
                    self.flush()
                self.state = state = evolve(self.state, recorded)
                rooms = state.rooms
                seq = state.seq
                last_id = state.last_message_id
        self.state = replace(state, seq=seq, last_message_id=last_id)

    def finish(self) -> ChatState:
        self.flush()
        return self.state


async def replay(
    journal: Journal,
    *,
    history_window: int = 50,
    until: int | None = None,
    page_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> tuple[ChatState, ReplayReport]:
    """Fold the journal (up to `until`) into a fresh state.

    Streams pages so memory stays flat however long the journal is. A row that cannot be
    decoded raises `CorruptJournal` with its seq: nothing is skipped silently.
    """
    started = time.perf_counter()
    folder = _BulkFolder(initial_state(history_window))
    count = 0
    # No cyclic GC passes while millions of (acyclic) values are built: each pass would walk
    # everything allocated so far. Re-enabled afterwards, unless the caller had it off.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # aclosing: a row that fails to decode must still return the reader connection.
        async with aclosing(journal.replay_rows(0, until, page_size)) as pages:
            async for rows in pages:
                folder.feed(rows)
                count += len(rows)
                if progress is not None:
                    progress(count)
        state = folder.finish()
    finally:
        if gc_was_enabled:
            gc.enable()
    return state, ReplayReport(events=count, seconds=time.perf_counter() - started, head=state.seq)
