"""`replay` folds runs of messages in bulk; its state must equal folding `evolve` one by one.

Random event sequences (rooms created, deleted and re-created, messages to rooms that exist or
not, joins, leaves, bans, ...) are written to a real journal, then replayed with several
history windows, page sizes and `until` bounds, and compared with the plain fold.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.domain.evolve import fold
from chat_core.domain.state import ChatState, initial_state
from chat_core.errors import ChatError, CorruptJournal
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal
from chat_kit import COMMANDS, HASH, T0, LiveCore, timed

ROOMS = ("general", "random", "r3")
USERS = ("alice", "bob", "carol")

_room = st.sampled_from(ROOMS)
_user = st.sampled_from(USERS)
_message = st.builds(
    e.MessageSent,
    message_id=st.integers(1, 60),  # not monotonic: last_message_id is a max
    room_id=st.sampled_from((*ROOMS, "nowhere")),
    username=_user,
    text=st.sampled_from(("hi", "hello 👋")),
    client_msg_id=st.sampled_from((None, None, "c")),
)
_other = st.one_of(
    st.builds(e.AccountRegistered, username=_user, password_hash=st.just(HASH)),
    st.builds(e.PasswordChanged, username=_user, password_hash=st.just("other")),
    st.builds(e.RoleChanged, username=_user, role=st.just("moderator"), by=st.just("admin")),
    st.builds(e.RoomCreated, room_id=_room, room_name=_room, created_by=_user),
    st.builds(e.RoomDeleted, room_id=_room, room_name=_room, by=st.just("admin")),
    st.builds(e.UserJoined, room_id=_room, username=_user),
    st.builds(e.UserLeft, room_id=_room, username=_user),
    st.builds(
        e.UserKicked,
        username=_user,
        room_id=st.none(),
        rooms=st.just(()),
        reason=st.none(),
        by=st.just("admin"),
    ),
    st.builds(
        e.UserBanned,
        username=_user,
        rooms=st.just(()),
        reason=st.none(),
        by=st.just("admin"),
        until=st.none(),
    ),
    st.builds(e.UserUnbanned, username=_user, by=st.just("admin")),
    st.builds(
        e.AnnouncementBroadcast, message=st.just("m"), level=st.just("info"), by=st.just("admin")
    ),
)
# Mostly messages, as in a real journal: long runs, broken by the other events.
EVENTS = st.lists(st.one_of(_message, _message, _message, _other), max_size=120)
WINDOWS = st.sampled_from((0, 1, 2, 3, 50))


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """One migrated, empty journal file, copied for each example (migrations are slow)."""
    tmp = Path(tempfile.mkdtemp(prefix="bulk-replay-"))
    path = tmp / "template.db"

    async def migrate() -> None:
        journal = await Journal.open(_url(path), migrate=True)
        await journal.close()

    asyncio.run(migrate())
    yield path
    shutil.rmtree(tmp, ignore_errors=True)


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _recorded(events: list[e.Event]) -> list[e.Recorded]:
    return [
        e.Recorded(
            seq=seq,
            # Microsecond steps, some across second boundaries: the time conversion is exact.
            at=T0 + timedelta(microseconds=seq * 333_337),
            actor=USERS[seq % len(USERS)],
            event=event,
            command_id=f"c{seq}" if isinstance(event, e.MessageSent) and seq % 2 else None,
        )
        for seq, event in enumerate(events, start=1)
    ]


async def _write_and_replay(
    template: Path,
    records: list[e.Recorded],
    runs: list[tuple[int, int | None, int]],
) -> list[ChatState]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.db"
        shutil.copy(template, path)
        journal = await Journal.open(_url(path))
        try:
            # A few batches, as the processor commits them.
            for start in range(0, len(records), 37):
                await journal.append(start, records[start : start + 37])
            return [
                (await replay(journal, history_window=w, until=until, page_size=size))[0]
                for w, until, size in runs
            ]
        finally:
            await journal.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=EVENTS,
    windows=st.lists(WINDOWS, min_size=1, max_size=3),
    until=st.none() | st.integers(0, 130),
    page_size=st.sampled_from((1, 3, 10_000)),
    data=st.data(),
)
def test_bulk_replay_equals_the_evolve_fold(
    template, events, windows, until, page_size, data
) -> None:
    records = _recorded(events)
    runs = [(w, until, page_size) for w in windows]
    runs.append((data.draw(WINDOWS), None, data.draw(st.integers(1, 20))))
    states = asyncio.run(_write_and_replay(template, records, runs))
    for (window, bound, _), state in zip(runs, states, strict=True):
        included = [r for r in records if bound is None or r.seq <= bound]
        assert state == fold(initial_state(window), included)


@pytest.mark.parametrize("window", [0, 1, 50])
def test_history_windows_keep_the_last_messages_of_each_room(template, window) -> None:
    events: list[e.Event] = [
        e.RoomCreated(room_id=room, room_name=room, created_by="alice") for room in ROOMS
    ]
    events += [
        e.MessageSent(message_id=i, room_id=ROOMS[i % 3], username="bob", text=str(i))
        for i in range(1, 200)
    ]
    events.append(e.RoomDeleted(room_id="random", room_name="random", by="admin"))
    events.append(e.RoomCreated(room_id="random", room_name="random", created_by="bob"))
    events += [
        e.MessageSent(message_id=i, room_id="random", username="bob", text=str(i))
        for i in range(200, 203)
    ]
    records = _recorded(events)
    (state,) = asyncio.run(_write_and_replay(template, records, [(window, None, 10_000)]))
    assert state == fold(initial_state(window), records)
    assert len(state.rooms["general"].recent) == min(window, 66)
    assert state.rooms["random"].message_count == 3
    assert state.last_message_id == 202


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(COMMANDS, min_size=5, max_size=40))
def test_replay_of_processor_commands_equals_the_pure_fold(commands) -> None:
    """Realistic sequences: commands decided and journalled by the real processor."""
    with tempfile.TemporaryDirectory() as tmp:
        core = LiveCore(f"sqlite+aiosqlite:///{Path(tmp) / 'j.db'}", history_window=2)
        try:
            for command in timed(commands):
                try:
                    core.submit(command)
                except ChatError:  # rejections: nothing appended
                    continue
            expected = fold(initial_state(2), [row.decode() for row in core.rows()])
            assert core.replayed() == expected == core.processor.state
        finally:
            core.close()


@pytest.mark.parametrize(
    "payload",
    [
        '{"type": "user_joined", "room_id": "general", "username": "bob"}',
        '{"type": "message_sent", "message_id": "x", "room_id": "general"}',
        "{not json",
    ],
)
def test_an_undecodable_message_row_raises_corrupt_journal_with_its_seq(template, payload) -> None:
    records = _recorded(
        [
            e.RoomCreated(room_id="general", room_name="general", created_by="bob"),
            e.MessageSent(message_id=1, room_id="general", username="bob", text="ok"),
        ]
    )

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "j.db"
            shutil.copy(template, path)
            journal = await Journal.open(_url(path))
            try:
                await journal.append(0, records)
            finally:
                await journal.close()
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "INSERT INTO events (seq, stream, tag, version, payload, actor,"
                    " command_id, recorded_at) VALUES (3, 'general', 'message_sent', 1, ?,"
                    " 'bob', NULL, 0)",
                    (payload,),
                )
            conn.close()
            journal = await Journal.open(_url(path))
            try:
                with pytest.raises(CorruptJournal) as info:
                    await replay(journal)
                assert info.value.seq == 3
                state, _ = await replay(journal, until=2)
                assert state == fold(initial_state(), records)
            finally:
                await journal.close()

    asyncio.run(run())


def _insert_raw(path: Path, rows: list[tuple[int, str, int, str]]) -> None:
    """Rows (seq, tag, version, payload) written behind the journal's back, as an old server
    (or a corruption) would have left them."""
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id,"
            " recorded_at) VALUES (?, 'general', ?, ?, ?, 'bob', NULL, 0)",
            rows,
        )
    conn.close()


@contextlib.asynccontextmanager
async def _journal_with_raw_rows(
    template: Path, records: list[e.Recorded], raw: list[tuple[int, str, int, str]]
) -> AsyncIterator[Journal]:
    """A journal holding `records`, then `raw` rows written behind its back, reopened."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.db"
        shutil.copy(template, path)
        journal = await Journal.open(_url(path))
        await journal.append(0, records)
        await journal.close()
        _insert_raw(path, raw)
        journal = await Journal.open(_url(path))
        try:
            yield journal
        finally:
            await journal.close()


def _lift_user_left_v0(payload: dict) -> dict:
    return {"type": "user_left", "room_id": payload["room_id"], "username": payload["user"]}


def _lift_message_v0(payload: dict) -> dict:
    return {**{k: v for k, v in payload.items() if k != "body"}, "text": payload["body"]}


def test_rows_of_older_versions_are_upcast_in_the_middle_of_a_page(template, monkeypatch) -> None:
    """A replay page is decoded in one call; rows of an older version still go through their
    upcasters, in seq order among the current ones."""
    monkeypatch.setitem(codec.UPCASTERS, ("user_left", 0), _lift_user_left_v0)
    monkeypatch.setitem(codec.UPCASTERS, ("message_sent", 0), _lift_message_v0)
    records = _recorded(
        [
            e.RoomCreated(room_id="general", room_name="general", created_by="bob"),
            e.UserJoined(room_id="general", username="bob"),
            e.MessageSent(message_id=1, room_id="general", username="bob", text="one"),
        ]
    )
    old = [
        (
            4,
            "message_sent",
            0,
            '{"type": "message_sent", "message_id": 2, "room_id": "general",'
            ' "username": "bob", "body": "two"}',
        ),
        (5, "user_left", 0, '{"type": "user_left", "room_id": "general", "user": "bob"}'),
    ]

    async def run() -> tuple[ChatState, ChatState]:
        async with _journal_with_raw_rows(template, records, old) as journal:
            carol = e.UserJoined(room_id="general", username="carol")
            await journal.append(5, _recorded_from(6, [carol]))
            replayed, _ = await replay(journal, history_window=5)
            expected_rows = [r async for page in journal.read() for r in page]
            return replayed, fold(initial_state(5), expected_rows)

    replayed, expected = asyncio.run(run())
    assert replayed == expected
    room = replayed.rooms["general"]
    assert [m.text for m in room.recent] == ["one", "two"]
    assert set(room.members) == {"carol"}


def _recorded_from(first_seq: int, events: list[e.Event]) -> list[e.Recorded]:
    return [
        e.Recorded(seq=seq, at=T0, actor="bob", event=event)
        for seq, event in enumerate(events, start=first_seq)
    ]


def test_a_payload_that_spills_into_the_next_row_is_named_not_folded(template) -> None:
    """A payload crafted to close its row and open another inside the packed page: the page
    no longer has the rows SQLite counted, so it is read row by row, which names the row."""
    records = _recorded(
        [
            e.RoomCreated(room_id="general", room_name="general", created_by="bob"),
            e.MessageSent(message_id=1, room_id="general", username="bob", text="ok"),
        ]
    )
    message = (
        '{"type": "message_sent", "message_id": %d, "room_id": "general",'
        ' "username": "bob", "text": "x", "client_msg_id": null}'
    )
    spilled = (message % 2) + '],["m",99,0,1,' + (message % 3)

    async def run() -> int:
        raw = [(3, "message_sent", 1, spilled)]
        async with _journal_with_raw_rows(template, records, raw) as journal:
            with pytest.raises(CorruptJournal) as info:
                await replay(journal)
            return info.value.seq

    assert asyncio.run(run()) == 3
