"""The SQLite journal's contract: appends, conflicts, locking, reads, history, triggers."""

from __future__ import annotations

import sqlite3

import pytest

from chat_core import events as e
from chat_core.errors import JournalConflict, UnsupportedJournal
from chat_core.journal import Journal
from chat_core.paths import sqlite_file
from chat_kit import T0, at


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


@pytest.fixture
async def journal(journal_url):
    opened = await Journal.open(journal_url, migrate=True)
    yield opened
    await opened.close()


async def _all(journal: Journal, page_size: int = 10_000) -> list[e.Recorded]:
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


async def test_a_read_only_journal_opens_beside_the_writer(journal, journal_url):
    await journal.append(0, [_other(1)])
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


async def test_find_messages_returns_the_first_results_of_client_ids(journal):
    await journal.append(0, [_message(1, 1, cmid="a"), _other(2), _message(3, 2, cmid="b")])
    found = await journal.find_messages([("bob", "a"), ("bob", "b"), ("bob", "z"), ("eve", "a")])
    assert set(found) == {("bob", "a"), ("bob", "b")}
    assert (found[("bob", "b")].seq, found[("bob", "b")].message_id) == (3, 2)
    assert found[("bob", "a")].timestamp == at(1)
    assert await journal.find_messages([]) == {}


async def test_rows_cannot_be_updated_or_deleted(journal, journal_url):
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


async def test_a_row_written_by_another_writer_makes_the_next_append_conflict(journal, journal_url):
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
