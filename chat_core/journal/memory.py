"""An in-memory journal: the same port and semantics as the SQLite one, nothing on disk.

It stores rows as the SQLite journal does (each event encoded, with its tag, version, stream and
time in microseconds) so that reads decode, and conflicts arise, exactly as there: the contract
suite (tests/integration/test_journal_contract.py) holds both to the same assertions. For tests
and tools that need a journal but not its file; it keeps its rows across `close()`, so a
"restart" reopens the same history.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncGenerator, Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.errors import JournalConflict
from chat_core.journal.port import (
    HistoryPage,
    JournalPort,
    NoLease,
    PackedPage,
    StoredRow,
    WriterLease,
)

_MESSAGE = codec.TAGS[e.MessageSent]
# Whether a read keeps a row, given the row and its stream.
Keep = Callable[[StoredRow, str], bool]


class MemoryJournal:
    """A `JournalPort` held in a list: row i has seq i + 1."""

    def __init__(self, url: str = "memory://", *, shared: bool = False) -> None:
        self.url = url
        # True to stand for a journal several processors append to (tests of nodes).
        self.shared = shared
        self._rows: list[StoredRow] = []
        self._streams: list[str] = []
        # stream (room id) -> the seqs of its messages, ascending: history pages.
        self._messages: dict[str, list[int]] = {}
        # (actor, command id) -> seq: idempotent retries, and the uniqueness SQLite's index keeps.
        self._commands: dict[tuple[str, str], int] = {}
        # Shared: the processors' writer lease (PostgreSQL's advisory lock, in memory).
        self._writer = asyncio.Lock()

    def writer_lease(self) -> WriterLease:
        if not self.shared:
            return NoLease()
        return _MemoryLease(self._writer)

    async def head(self) -> int:
        return len(self._rows)

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        if not records:
            return
        # A write is a round trip elsewhere: let other tasks run, then check and write at once.
        await asyncio.sleep(0)
        head = len(self._rows)
        if records[0].seq != expected_head + 1:
            raise JournalConflict(f"batch starts at {records[0].seq}, head is {expected_head}")
        if head != expected_head:
            raise JournalConflict(f"the journal head is {head}, the batch expected {expected_head}")
        keys: dict[tuple[str, str], int] = {}
        for offset, record in enumerate(records):
            if record.seq != expected_head + 1 + offset:
                raise JournalConflict(f"seq {record.seq} does not follow seq {record.seq - 1}")
            if record.command_id is not None:
                key = (record.actor, record.command_id)
                if key in self._commands or key in keys:
                    raise JournalConflict(f"command id {record.command_id!r} is already recorded")
                keys[key] = record.seq
        for record in records:
            self._add(record)
        self._commands.update(keys)

    def _add(self, record: e.Recorded) -> None:
        event = record.event
        tag = codec.TAGS[event.__class__]
        room_id = getattr(event, "room_id", None)
        stream = room_id if isinstance(room_id, str) else "system"
        payload = codec.encode_event(event).decode()
        at = codec.to_micros(record.at)
        row = StoredRow(
            record.seq, tag, codec.VERSIONS[tag], payload, record.actor, record.command_id, at
        )
        self._rows.append(row)
        self._streams.append(stream)
        if tag == _MESSAGE:
            self._messages.setdefault(stream, []).append(record.seq)

    async def read(
        self,
        after: int = 0,
        until: int | None = None,
        page_size: int = 10_000,
        *,
        tags: Collection[str] | None = None,
        message_rooms: Collection[str] | None = None,
    ) -> AsyncGenerator[list[e.Recorded], None]:
        if tags is not None and message_rooms is not None:
            raise ValueError("read either some tags or some rooms' messages, not both")
        if tags is not None and not all(tag.isidentifier() for tag in tags):
            raise ValueError(f"not event tags: {sorted(tags)!r}")
        keep = _keeper(tags, message_rooms)
        async for rows in self._pages(after, until, page_size, keep):
            yield [row.decode() for row in rows]

    async def read_rows(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[list[StoredRow], None]:
        async for rows in self._pages(after, until, page_size, None):
            yield rows

    async def packed_pages(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[PackedPage, None]:
        # The JSON array SQLite builds (journal_sql's _PACKED_ROW), built here in Python.
        async for rows in self._pages(after, until, page_size, None):
            body = b"[" + b",".join(msgspec.json.encode(_packed(row)) for row in rows) + b"]"
            yield PackedPage(after, rows[-1].seq, len(rows), body)
            after = rows[-1].seq

    async def _pages(
        self,
        after: int,
        until: int | None,
        page_size: int,
        keep: Keep | None,
    ) -> AsyncGenerator[list[StoredRow], None]:
        """Rows with after < seq <= until (and `keep`), read as they are when each page is."""
        index = max(after, 0)
        while True:
            # A page is read at once, as a query would; rows appended meanwhile are seen by
            # the next page (within `until`), as SQLite's keyset pages see them.
            end = len(self._rows) if until is None else min(until, len(self._rows))
            page: list[StoredRow] = []
            while index < end and len(page) < page_size:
                row = self._rows[index]
                if keep is None or keep(row, self._streams[index]):
                    page.append(row)
                index += 1
            if not page:
                return
            yield page
            await asyncio.sleep(0)

    async def history(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> HistoryPage:
        seqs = self._messages.get(room_id, [])
        stop = len(seqs) if before_seq is None else bisect.bisect_left(seqs, before_seq)
        start = bisect.bisect_right(seqs, after_seq)
        chosen = seqs[max(start, stop - limit) : stop]
        return HistoryPage([_message(self._rows[seq - 1]) for seq in chosen], stop - start > limit)

    async def find_commands(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], e.Recorded]:
        commands, rows = self._commands, self._rows
        return {key: rows[seq - 1].decode() for key in keys if (seq := commands.get(key))}

    async def close(self) -> None:
        """Nothing to release: the rows stay, for a reopen of the same journal."""


if TYPE_CHECKING:
    # mypy holds the class to the port here, not only where one is passed.
    _port: type[JournalPort] = MemoryJournal


def _keeper(tags: Collection[str] | None, message_rooms: Collection[str] | None) -> Keep | None:
    """What `read` keeps: some tags, or every event but the messages of other rooms."""
    if tags is not None:
        wanted = frozenset(tags)
        return lambda row, _stream: row.tag in wanted
    if message_rooms is not None:
        rooms = frozenset(message_rooms)
        return lambda row, stream: row.tag != _MESSAGE or stream in rooms
    return None


def _packed(row: StoredRow) -> list[Any]:
    """A row as a packed page holds it: the payload embedded as JSON when current, else a
    JSON string (decoded one by one, with upcasting)."""
    current = row.version == codec.VERSIONS.get(row.tag)
    raw = row.payload.encode() if isinstance(row.payload, str) else row.payload
    payload: Any = msgspec.Raw(raw) if current else raw.decode()
    if row.tag == _MESSAGE:
        return ["m", row.seq, row.recorded_at, row.version, payload]
    return ["e", row.seq, row.tag, row.version, row.recorded_at, row.actor, row.command_id, payload]


def _message(row: StoredRow) -> codec.Message:
    event = row.decode().event
    assert isinstance(event, e.MessageSent)
    return codec.message_of(row.seq, codec.from_micros(row.recorded_at), event)


class _MemoryLease:
    """One processor's hold on a shared memory journal's writer lock."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock
        self._held = False

    async def hold(self) -> bool:
        if self._held:
            return False
        await self._lock.acquire()
        self._held = True
        return True

    async def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()
