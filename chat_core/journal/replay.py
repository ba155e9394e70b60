"""Rebuild the live state by folding the whole journal, a page at a time.

The result is exactly `fold(initial_state(window), every event)`, but the hot path is cheaper.
Each page arrives packed into one JSON array (`JournalPort.packed_pages`; SQLite builds it in
the driver's thread, which packs the next page meanwhile) and is decoded by one msgspec call. A
run of `message_sent` rows is folded in bulk: each message goes, still raw (its packed row),
into its room's bounded deque; only the last `history_window` of each room become `Message`
values (with a datetime) when the run is flushed, and the room's `message_count` and the
state's `last_message_id` are kept as plain integers meanwhile. A page that does not decode as
a whole is read again row by row (`read_rows`), which names the row that cannot be decoded."""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import aclosing
from datetime import timedelta
from typing import Final

import msgspec
from msgspec.structs import replace

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.domain.evolve import evolve
from chat_core.domain.state import ChatState, initial_state
from chat_core.errors import CorruptJournal
from chat_core.journal.port import JournalPort, PackedPage, StoredRow

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


Packed = codec.PackedMessage | codec.PackedEvent


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
        self.pending: dict[str, deque[codec.PackedMessage]] = {}
        self.counts: dict[str, int] = {}

    def flush(self) -> None:
        """Turn the pending messages into the rooms' `recent` and `message_count`."""
        if not self.pending:
            return
        rooms = self.state.rooms
        window = self.window
        for room_id, run in self.pending.items():
            room = rooms[room_id]
            if window > 0:
                messages = [_message(row) for row in run]
                recent: tuple[codec.Message, ...] = (*room.recent, *messages)[-window:]
            else:
                recent = ()
            count = room.message_count + self.counts[room_id]
            rooms = rooms.set(room_id, replace(room, recent=recent, message_count=count))
        self.pending.clear()
        self.counts.clear()
        self.state = replace(self.state, rooms=rooms)

    def feed(self, rows: list[StoredRow]) -> None:
        """Fold rows as `read_rows` reads them, decoding (and upcasting) each."""
        other, decode = codec.PackedEvent, codec.decode_event
        self.feed_packed(
            [
                _message_row(row.seq, row.recorded_at, row.version, row.payload)
                if row.tag == "message_sent"
                else other(
                    row.seq,
                    row.tag,
                    row.version,
                    row.recorded_at,
                    row.actor,
                    row.command_id,
                    decode(row.seq, row.tag, row.version, row.payload),
                )
                for row in rows
            ]
        )

    def feed_packed(self, rows: Sequence[Packed]) -> None:
        """Fold decoded rows in seq order (a payload still JSON text is an older version)."""
        message_row = codec.PackedMessage
        message_cls = e.MessageSent
        pending = self.pending
        counts = self.counts
        maxlen = max(self.window, 0)
        state = self.state
        rooms = state.rooms
        seq = state.seq
        last_id = state.last_message_id
        for row in rows:
            if type(row) is message_row:
                message = row.event
                if type(message) is not message_cls:
                    row = _upcast_message(row)  # an older version, still JSON text
                    message = row.event
                assert type(message) is message_cls
                seq = row.seq
                if message.message_id > last_id:
                    last_id = message.message_id
                room_id = message.room_id
                run = pending.get(room_id)
                if run is None:
                    if room_id not in rooms:
                        continue  # as evolve: only seq and last_message_id move
                    run = pending[room_id] = deque(maxlen=maxlen)
                    counts[room_id] = 1
                else:
                    counts[room_id] += 1
                run.append(row)
            else:
                assert type(row) is codec.PackedEvent
                at = row.at
                recorded = e.Recorded(
                    seq=row.seq,
                    at=_EPOCH + timedelta(0, at // 1_000_000, at % 1_000_000),
                    actor=row.actor,
                    event=_event(row),
                    command_id=row.command_id,
                )
                # Bring the state up to date with the run (seq, last_message_id; and the
                # rooms, unless the event cannot touch what the run changes).
                self.state = replace(state, seq=seq, last_message_id=last_id)
                if row.tag not in _RUN_SAFE_TAGS:
                    self.flush()
                self.state = state = evolve(self.state, recorded)
                rooms = state.rooms
                seq = state.seq
                last_id = state.last_message_id
        self.state = replace(state, seq=seq, last_message_id=last_id)

    def finish(self) -> ChatState:
        self.flush()
        return self.state


def _message(row: codec.PackedMessage) -> codec.Message:
    event = row.event
    assert isinstance(event, e.MessageSent)  # decoded before it was queued
    at = row.at
    return codec.message_of(row.seq, _EPOCH + timedelta(0, at // 1_000_000, at % 1_000_000), event)


def _upcast_message(row: codec.PackedMessage) -> codec.PackedMessage:
    """A message row whose payload is an older version, lifted (any other payload raises)."""
    assert isinstance(row.event, str)
    event = codec.decode_event(row.seq, "message_sent", row.version, row.event)
    return codec.PackedMessage(row.seq, row.at, row.version, _checked_message(row.seq, event))


def _checked_message(seq: int, event: e.Event) -> e.MessageSent:
    if not isinstance(event, e.MessageSent):
        raise CorruptJournal(seq, f"payload type {e.tag_of(event)!r} under tag 'message_sent'")
    return event


def _message_row(seq: int, at: int, version: int, payload: str | bytes) -> codec.PackedMessage:
    """A message row read on its own, decoded (and upcast), as a packed page would hold it."""
    event = codec.decode_event(seq, "message_sent", version, payload)
    return codec.PackedMessage(seq, at, version, _checked_message(seq, event))


def _event(row: codec.PackedEvent) -> e.Event:
    """The event of any other row: lifted if an older version, checked against its tag."""
    event = row.event
    if isinstance(event, str):
        return codec.decode_event(row.seq, row.tag, row.version, event)
    expected = codec._CLASSES.get(row.tag)
    if expected is None:
        raise CorruptJournal(row.seq, f"unknown event tag {row.tag!r}")
    if type(event) is not expected:
        raise CorruptJournal(row.seq, f"payload type {e.tag_of(event)!r} under tag {row.tag!r}")
    return event


def _well_formed(page: PackedPage, rows: list[Packed]) -> bool:
    """The decoded page has the rows SQLite counted, in strictly increasing seq order: no
    payload's text spilled over into a neighbour's."""
    if len(rows) != page.size or rows[-1].seq != page.last:
        return False
    previous = page.after
    for row in rows:
        if row.seq <= previous:
            return False
        previous = row.seq
    return True


async def replay(
    journal: JournalPort,
    *,
    history_window: int = 50,
    until: int | None = None,
    page_size: int = 20_000,
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
        async with aclosing(journal.packed_pages(0, until, page_size)) as pages:
            async for page in pages:
                rows = codec.decode_packed(page.body)
                if rows is not None and _well_formed(page, rows):
                    folder.feed_packed(rows)
                else:
                    # Something in the page is not as written: read it row by row, which
                    # names the row (CorruptJournal) or folds it if it was only unusual.
                    async with aclosing(journal.read_rows(page.after, page.last)) as slow:
                        async for raw_rows in slow:
                            folder.feed(raw_rows)
                count += page.size
                if progress is not None:
                    progress(count)
        state = folder.finish()
    finally:
        if gc_was_enabled:
            gc.enable()
    return state, ReplayReport(events=count, seconds=time.perf_counter() - started, head=state.seq)
