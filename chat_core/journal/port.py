"""The journal port: what the processor, the server and the CLI may ask of any journal.

Two implementations hold to it: `chat_core.journal.sqlite.Journal` (SQLite) and
`chat_core.journal.memory.MemoryJournal`; tests/integration/test_journal_contract.py runs the
same assertions over both (and will over PostgreSQL). Rows are typed Structs, never tuples a
caller indexes. A journal knows events and their encoding, not what they mean: it imports
nothing from `evolve` or `state` (tests/architecture pins it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection, Iterable, Sequence
from typing import NamedTuple, Protocol

import msgspec

from chat_core.domain import codec
from chat_core.domain import events as e


class StoredRow(msgspec.Struct, frozen=True, gc=False):
    """One journal row as stored: the event still encoded (tag, schema version, JSON payload),
    the time in integer microseconds since the epoch. Positional: built from a driver's row."""

    seq: int
    tag: str
    version: int
    payload: str | bytes
    actor: str
    command_id: str | None
    recorded_at: int

    def decode(self) -> e.Recorded:
        """The row as a `Recorded` event (upcast if older); `CorruptJournal` if it cannot be."""
        return codec.decode_row(
            self.seq,
            self.tag,
            self.version,
            self.payload,
            self.actor,
            self.command_id,
            self.recorded_at,
        )


class PackedPage(NamedTuple):
    """The `size` rows with after < seq <= last, as one JSON array of `codec.PackedMessage`
    and `codec.PackedEvent` rows (a payload of an older version as a JSON string)."""

    after: int
    last: int
    size: int
    body: bytes


class HistoryPage(NamedTuple):
    """A page of a room's messages, oldest first, and whether older ones exist."""

    messages: list[codec.Message]
    has_more: bool


class WriterLease(Protocol):
    """The right to append to a shared journal, held by one processor at a time (nodes on
    PostgreSQL: an advisory lock). A processor takes it before appending, catches up with what
    was appended before it got it, and gives it back when idle or after a short lease, so
    nodes take turns instead of deciding against each other's appends (no conflicts)."""

    async def hold(self) -> bool:
        """Wait for the lease; True if it was just taken (catch up), False if already held."""
        ...

    async def release(self) -> None:
        """Give the lease back (nothing if not held)."""
        ...


class NoLease:
    """The lease of a journal nobody else appends to: always held."""

    async def hold(self) -> bool:
        return False

    async def release(self) -> None:
        return None


class JournalPort(Protocol):
    """An append-only, totally ordered log of recorded events (seq 1, 2, 3...)."""

    # Where the journal lives, as a database URL (shown to people, never with a password).
    url: str
    # Whether other processes may append to it (nodes sharing a PostgreSQL journal): then a
    # decision is final only once the journal's head is seen where it was decided.
    shared: bool

    async def head(self) -> int:
        """The seq of the last event, 0 for an empty journal."""
        ...

    def writer_lease(self) -> WriterLease:
        """A processor's lease on appending (`NoLease` where the journal is not shared)."""
        ...

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        """Append `records` (seqs expected_head+1, +2, ...) all or nothing.

        `JournalConflict` when the head is not `expected_head` or a row collides (a seq, or an
        actor's command id already recorded); `JournalError` for any other failure.
        """
        ...

    def read(
        self,
        after: int = 0,
        until: int | None = None,
        page_size: int = 10_000,
        *,
        tags: Collection[str] | None = None,
        message_rooms: Collection[str] | None = None,
    ) -> AsyncGenerator[list[e.Recorded], None]:
        """Events with after < seq <= until, oldest first, in pages of at most `page_size`;
        with `tags`, only those tags; with `message_rooms`, every event but the messages of
        other rooms (both at once: `ValueError`)."""
        ...

    def read_rows(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[list[StoredRow], None]:
        """`read`, undecoded: the rows as stored."""
        ...

    def packed_pages(
        self, after: int = 0, until: int | None = None, page_size: int = 10_000
    ) -> AsyncGenerator[PackedPage, None]:
        """The rows replay folds, a page at a time, each page one JSON array (`PackedPage`)."""
        ...

    async def history(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> HistoryPage:
        """The last `limit` messages of a room with after_seq < seq < before_seq."""
        ...

    async def find_commands(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], e.Recorded]:
        """For each (actor, command id) already recorded, the event that carries it (a command's
        first event): idempotent retries. Keys not recorded are absent."""
        ...

    async def close(self) -> None: ...
