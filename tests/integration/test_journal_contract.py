"""The journal port's contract, asserted on every implementation (SQLite, memory, PostgreSQL):
appends, conflicts, reads, packed pages, history, idempotency look-ups; then what only the SQL
journals promise (locking, read-only beside a writer, triggers, WAL, another writer's rows).
The PostgreSQL runs share one database of this module's own, emptied before each test."""

from __future__ import annotations

import asyncio
import sqlite3

import msgspec
import pytest

from chat_core.domain import codec
from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.evolve import evolve
from chat_core.domain.state import initial_state
from chat_core.errors import JournalConflict, JournalError, UnsupportedJournal
from chat_core.journal.memory import MemoryJournal
from chat_core.journal.port import JournalPort, StoredRow
from chat_core.journal.postgres import PostgresJournal
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal
from chat_core.settings.paths import sqlite_file
from chat_kit import T0, at, run_pure, timed
from pg_kit import empty_journal


def _message(seq: int, message_id: int, room_id: str = "general", cmid: str | None = None):
    event = e.MessageSent(
        message_id=message_id,
        room_id=room_id,
        username="bob",
        text=f"m{message_id}",
        client_msg_id=cmid,
    )
    return e.Recorded(seq=seq, at=at(seq), actor="bob", event=event, command_id=cmid)


def _other(seq: int) -> e.Recorded:
    event = e.UserJoined(room_id="general", username="bob")
    return e.Recorded(seq=seq, at=T0, actor="bob", event=event)


def _fold(state, records):
    for recorded in records:
        state = evolve(state, recorded)
    return state


IMPLEMENTATIONS = ("sqlite", "memory", "postgres")


async def open_journal(kind: str, url: str) -> JournalPort:
    """A fresh, empty journal of one implementation of the port."""
    if kind == "sqlite":
        return await Journal.open(url, migrate=True)
    if kind == "postgres":
        await empty_journal(url)
        return await PostgresJournal.open(url, migrate=True)
    return MemoryJournal()


@pytest.fixture(params=IMPLEMENTATIONS)
async def journal(request, journal_url):
    """Every implementation of the port: each test below runs on each."""
    if request.param == "postgres":
        journal_url = request.getfixturevalue("postgres_url")
    opened = await open_journal(request.param, journal_url)
    yield opened
    await opened.close()


@pytest.fixture
async def pg_journal(postgres_url):
    opened = await open_journal("postgres", postgres_url)
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_journal(journal_url):
    opened = await Journal.open(journal_url, migrate=True)
    yield opened
    await opened.close()


async def _all(journal: JournalPort, page_size: int = 10_000) -> list[e.Recorded]:
    return [r async for page in journal.read(page_size=page_size) for r in page]


async def test_a_new_journal_is_empty(journal):
    assert await journal.head() == 0
    assert await _all(journal) == []


async def test_an_appended_batch_reads_back_in_order(journal):
    batch = [_other(1), _message(2, 1), _message(3, 2, cmid="c")]
    await journal.append(0, batch)
    assert await journal.head() == 3
    assert await _all(journal) == batch


async def test_a_read_of_some_tags_returns_exactly_those_events_in_order(journal):
    batch = [_message(s, s) if s % 3 else _other(s) for s in range(1, 31)]
    await journal.append(0, batch)
    joins = [r for r in batch if isinstance(r.event, e.UserJoined)]
    for page_size in (1, 4, 100):
        pages = [p async for p in journal.read(2, 27, page_size, tags={"user_joined"})]
        assert [r for p in pages for r in p] == [r for r in joins if 2 < r.seq <= 27]
        assert all(0 < len(p) <= page_size for p in pages)
    assert [r async for p in journal.read(tags={"room_deleted"}) for r in p] == []
    with pytest.raises(ValueError):
        [r async for p in journal.read(tags={"x' OR 1=1 --"}) for r in p]


async def test_a_read_of_some_rooms_messages_keeps_every_other_event(journal):
    rooms = ("general", "lobby", "quiet")
    batch = [_message(s, s, rooms[s % 3]) if s % 4 else _other(s) for s in range(1, 41)]
    await journal.append(0, batch)
    for wanted in ({"lobby"}, {"lobby", "quiet"}, set()):
        read = [r async for p in journal.read(message_rooms=wanted, page_size=3) for r in p]
        assert read == [
            r for r in batch if not isinstance(r.event, e.MessageSent) or r.event.room_id in wanted
        ]
    with pytest.raises(ValueError):
        [r async for p in journal.read(tags={"user_joined"}, message_rooms={"lobby"}) for r in p]


async def test_append_with_a_stale_head_conflicts_and_writes_nothing(journal):
    await journal.append(0, [_other(1), _other(2)])
    with pytest.raises(JournalConflict):
        await journal.append(1, [_other(2)])
    with pytest.raises(JournalConflict):
        await journal.append(0, [_other(1), _other(2), _other(3)])
    assert await journal.head() == 2
    assert len(await _all(journal)) == 2


async def test_append_with_a_head_ahead_of_the_journal_conflicts(journal):
    await journal.append(0, [_other(1)])
    with pytest.raises(JournalConflict):
        await journal.append(5, [_other(6)])
    assert await journal.head() == 1


async def test_a_duplicate_client_msg_id_fails_the_whole_batch(journal):
    await journal.append(0, [_message(1, 1, cmid="same")])
    with pytest.raises(JournalConflict):
        await journal.append(1, [_other(2), _message(3, 2, cmid="same")])
    assert await journal.head() == 1


async def test_a_second_open_of_the_same_file_is_refused_while_the_first_is_open(journal_url):
    first = await Journal.open(journal_url, migrate=True)
    try:
        with pytest.raises(UnsupportedJournal, match="locked"):
            await Journal.open(journal_url)
    finally:
        await first.close()
    second = await Journal.open(journal_url)
    assert await second.head() == 0
    await second.close()


async def test_a_read_only_journal_opens_beside_the_writer(sqlite_journal, journal_url):
    await sqlite_journal.append(0, [_other(1)])
    reader = await Journal.open(journal_url, readonly=True)
    try:
        assert [r.seq for r in await _all(reader)] == [1]
    finally:
        await reader.close()


async def test_reads_stream_pages_in_order_within_bounds(journal):
    await journal.append(0, [_message(i, i) for i in range(1, 26)])
    pages = [page async for page in journal.read(after=3, until=20, page_size=7)]
    assert [len(page) for page in pages] == [7, 7, 3]
    assert [r.seq for page in pages for r in page] == list(range(4, 21))


async def test_history_pages_walk_back_from_the_newest_message(journal):
    records = [_message(1, 1), _other(2), _message(3, 2, "random")]
    records += [_message(seq, seq) for seq in range(4, 10)]
    await journal.append(0, records)
    newest, more = await journal.history("general", None, 3)
    assert [m.seq for m in newest] == [7, 8, 9]  # the newest page, oldest first
    assert more is True
    older, more = await journal.history("general", newest[0].seq, 3)
    assert [m.seq for m in older] == [4, 5, 6]
    assert more is True
    oldest, more = await journal.history("general", older[0].seq, 3)
    assert [m.seq for m in oldest] == [1]
    assert more is False
    assert oldest[0].timestamp == at(1)
    exact, more = await journal.history("general", 4, 1)
    assert ([m.seq for m in exact], more) == ([1], False)


async def test_history_of_a_room_without_messages_is_empty(journal):
    assert await journal.history("nowhere", None, 50) == ([], False)


async def test_find_commands_returns_the_events_recorded_with_command_ids(journal):
    first, other, second = _message(1, 1, cmid="a"), _other(2), _message(3, 2, cmid="b")
    await journal.append(0, [first, other, second])
    found = await journal.find_commands([("bob", "a"), ("bob", "b"), ("bob", "z"), ("eve", "a")])
    assert found == {("bob", "a"): first, ("bob", "b"): second}
    assert (found[("bob", "b")].seq, found[("bob", "b")].event.message_id) == (3, 2)
    assert found[("bob", "a")].at == at(1)
    assert await journal.find_commands([]) == {}


async def test_find_commands_keys_a_command_id_by_its_actor(journal):
    # The same command id from two users is two commands (the unique key is per actor).
    eve = msgspec.structs.replace(_message(2, 2, cmid="a"), actor="eve")
    await journal.append(0, [_message(1, 1, cmid="a"), eve])
    found = await journal.find_commands([("bob", "a"), ("eve", "a")])
    assert {key: recorded.seq for key, recorded in found.items()} == {
        ("bob", "a"): 1,
        ("eve", "a"): 2,
    }


async def test_find_commands_finds_an_event_of_any_kind(journal):
    # The journal knows no command: whatever event carries the id is what a retry gets back.
    created = e.Recorded(
        seq=1,
        at=at(1),
        actor="bob",
        event=e.RoomCreated(room_id="lobby", room_name="lobby", created_by="bob"),
        command_id="j1",
    )
    joined = e.Recorded(
        seq=2, at=at(1), actor="bob", event=e.UserJoined(room_id="lobby", username="bob")
    )
    await journal.append(0, [created, joined])
    assert await journal.find_commands([("bob", "j1"), ("bob", "j1")]) == {("bob", "j1"): created}


async def test_a_client_msg_id_twice_in_one_batch_fails_the_whole_batch(journal):
    with pytest.raises(JournalConflict):
        await journal.append(0, [_message(1, 1, cmid="same"), _message(2, 2, cmid="same")])
    assert await journal.head() == 0
    assert await journal.find_commands([("bob", "same")]) == {}
    await journal.append(0, [_message(1, 1, cmid="same")])
    assert await journal.head() == 1


async def test_read_rows_are_the_rows_as_stored(journal):
    batch = [_other(1), _message(2, 1, cmid="c"), _message(3, 2, "lobby")]
    await journal.append(0, batch)
    pages = [page async for page in journal.read_rows(after=1, page_size=1)]
    assert [len(page) for page in pages] == [1, 1]
    rows = [row for page in pages for row in page]
    assert all(isinstance(row, StoredRow) for row in rows)
    assert [(row.seq, row.tag, row.version, row.actor, row.command_id) for row in rows] == [
        (2, "message_sent", codec.VERSIONS["message_sent"], "bob", "c"),
        (3, "message_sent", codec.VERSIONS["message_sent"], "bob", None),
    ]
    assert [row.recorded_at for row in rows] == [codec.to_micros(at(2)), codec.to_micros(at(3))]
    assert [row.decode() for row in rows] == batch[1:]
    assert [r async for p in journal.read_rows(after=3) for r in p] == []


async def test_packed_pages_hold_every_row_within_bounds(journal):
    batch = [_message(s, s, "lobby", cmid=f"c{s}") if s % 3 else _other(s) for s in range(1, 21)]
    await journal.append(0, batch)
    pages = [page async for page in journal.packed_pages(after=2, until=17, page_size=6)]
    assert [(p.after, p.last, p.size) for p in pages] == [(2, 8, 6), (8, 14, 6), (14, 17, 3)]
    rows = [row for page in pages for row in codec.decode_packed(page.body) or []]
    assert [row.seq for row in rows] == list(range(3, 18))
    for row, recorded in zip(rows, batch[2:17], strict=True):
        assert row.event == recorded.event
        if isinstance(row, codec.PackedEvent):
            assert (row.tag, row.actor, row.command_id) == ("user_joined", "bob", None)
    assert [p async for p in journal.packed_pages(after=20)] == []


async def test_replay_through_the_port_folds_what_evolve_folds(journal):
    talk = [
        c.SendMessage(actor=who, at=T0, room_id=room, text=f"{n}", client_msg_id=f"m{n}")
        for n, (who, room) in enumerate([("bob", "general"), ("carol", "random")] * 7)
    ]
    records, _, expected = run_pure(timed(talk), history_window=3)
    assert sum(isinstance(r.event, e.MessageSent) for r in records) == len(talk)
    await journal.append(0, records)
    for page_size in (1, 5, 1000):
        state, report = await replay(journal, history_window=3, page_size=page_size)
        assert state == expected
        assert report.events == len(records) == await journal.head()
    partial, _ = await replay(journal, history_window=3, until=9)
    assert partial.seq == 9
    assert partial == _fold(initial_state(3), records[:9])


async def test_history_starts_after_the_rooms_creation(journal):
    await journal.append(0, [_message(s, s) for s in range(1, 6)])
    page = await journal.history("general", None, 10, after_seq=3)
    assert ([m.seq for m in page.messages], page.has_more) == ([4, 5], False)
    page = await journal.history("general", None, 1, after_seq=3)
    assert ([m.seq for m in page.messages], page.has_more) == ([5], True)
    assert await journal.history("general", 4, 10, after_seq=3) == ([], False)


async def test_rows_cannot_be_updated_or_deleted(sqlite_journal, journal_url):
    journal = sqlite_journal
    await journal.append(0, [_other(1)])
    path = sqlite_file(journal_url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE events SET actor = 'eve'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM events")
    conn.close()
    assert [r.actor for r in await _all(journal)] == ["bob"]


async def test_the_journal_runs_in_wal_mode_with_the_chosen_synchronous_level(journal_url):
    journal = await Journal.open(journal_url, migrate=True, synchronous="NORMAL")
    try:
        for engine, expected_sync in ((journal._writer, 1), (journal._reader, 1)):
            assert engine is not None
            async with engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            assert (mode, sync) == ("wal", expected_sync)
    finally:
        await journal.close()
    full = await Journal.open(journal_url)
    try:
        assert full._writer is not None
        async with full._writer.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2
    finally:
        await full.close()


async def test_a_row_written_by_another_writer_makes_the_next_append_conflict(
    sqlite_journal, journal_url
):
    journal = sqlite_journal
    # The journal knows its head from its own last commit; another writer's rows (dense
    # seqs after that head) collide with the next batch on the primary key.
    await journal.append(0, [_other(1)])
    path = sqlite_file(journal_url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id,"
            " recorded_at) VALUES (2, 'general', 'user_joined', 1,"
            ' \'{"type":"user_joined","room_id":"general","username":"eve"}\', \'eve\', NULL, 0)'
        )
    conn.close()
    with pytest.raises(JournalConflict):
        await journal.append(1, [_other(2)])
    # After a conflict the head is read again: the writer catches up and appends.
    with pytest.raises(JournalConflict):
        await journal.append(1, [_other(2)])
    await journal.append(2, [_other(3)])
    assert [r.seq for r in await _all(journal)] == [1, 2, 3]


async def test_a_batch_too_large_for_one_insert_statement_is_one_transaction(journal):
    # Appends are one multi-row INSERT up to SQLite's limit on bound variables; a larger
    # batch takes an explicit transaction, still all or nothing.
    await journal.append(0, [_other(1)])
    big = [_message(seq, seq) for seq in range(2, 6_002)]
    await journal.append(1, big)
    assert await journal.head() == 6_001
    with pytest.raises(JournalConflict):
        await journal.append(6_001, [_message(seq, seq, cmid="x") for seq in range(6_002, 12_002)])
    assert await journal.head() == 6_001
    records = await _all(journal)
    assert records[1:] == big


# PostgreSQL: what the SQLite journal's own tests above promise, on the other database.
_EVE_ROW = (
    "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id, recorded_at)"
    " VALUES (2, 'general', 'user_joined', 1,"
    """ '{"type":"user_joined","room_id":"general","username":"eve"}', 'eve', NULL, 0)"""
)


async def _pg(url: str):
    import asyncpg

    return await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))


async def test_postgres_rows_cannot_be_updated_deleted_or_truncated(pg_journal, postgres_url):
    import asyncpg

    await pg_journal.append(0, [_other(1)])
    conn = await _pg(postgres_url)
    try:
        for sql in ("UPDATE events SET actor = 'eve'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)
    finally:
        await conn.close()
    assert [r.actor for r in await _all(pg_journal)] == ["bob"]


async def test_postgres_row_of_another_writer_makes_the_next_append_conflict(
    pg_journal, postgres_url
):
    await pg_journal.append(0, [_other(1)])
    conn = await _pg(postgres_url)
    try:
        await conn.execute(_EVE_ROW)
    finally:
        await conn.close()
    with pytest.raises(JournalConflict):
        await pg_journal.append(1, [_other(2)])
    await pg_journal.append(2, [_other(3)])
    assert [r.seq for r in await _all(pg_journal)] == [1, 2, 3]


async def test_postgres_writers_racing_for_one_head_commit_once(pg_journal, postgres_url):
    other = await PostgresJournal.open(postgres_url)
    try:
        results = await asyncio.gather(
            *(j.append(0, [_other(1), _other(2)]) for j in (pg_journal, other, pg_journal)),
            return_exceptions=True,
        )
    finally:
        await other.close()
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, JournalConflict) for r in results if r is not None)
    assert await pg_journal.head() == 2


async def test_postgres_read_only_journal_reads_beside_the_writer_and_cannot_write(
    pg_journal, postgres_url
):
    await pg_journal.append(0, [_other(1)])
    reader = await PostgresJournal.open(postgres_url, readonly=True)
    try:
        assert [r.seq for r in await _all(reader)] == [1]
        with pytest.raises(JournalError):
            await reader.append(1, [_other(2)])
    finally:
        await reader.close()


async def test_postgres_unreachable_or_unmigrated_database_is_refused_in_one_line(postgres_url):
    with pytest.raises(UnsupportedJournal, match="cannot be opened"):
        await PostgresJournal.open("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    missing = postgres_url.rsplit("/", 1)[0] + "/chat_test_missing_database"
    with pytest.raises(UnsupportedJournal, match="cannot be opened"):
        await PostgresJournal.open(missing)
