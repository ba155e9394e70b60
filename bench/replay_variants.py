"""Where replay time goes, and what the proposed chat_core changes would buy (monkeypatched).

    .venv/bin/python bench/replay_variants.py [--events 1000000] [--repeats 2]

Uses the journal file that bench/journal.py generates and caches (bench/data/).  Every
variant is timed in this process against the raw baseline of bench/journal.py (sqlite3 read +
msgspec decode of each payload), interleaved, best of --repeats; every variant's final state
is checked equal to the state `chat_core.replay.replay` builds.  chat_core is not modified:
the variants are written here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from msgspec.structs import replace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import journal as bench  # bench/journal.py

from chat_core import codec
from chat_core import events as e
from chat_core.errors import CorruptJournal
from chat_core.evolve import evolve
from chat_core.journal import Journal
from chat_core.replay import replay
from chat_core.state import ChatState, Message, initial_state

_EPOCH = codec._EPOCH
_DEC = msgspec.json.Decoder(e.Event)
_CLASS = {cls.__struct_config__.tag: cls for cls in e.EVENT_TYPES}
_VERSIONS = codec.VERSIONS
_FLUSH_TAGS = frozenset({"room_created", "room_deleted"})


def from_micros_fast(micros: int) -> Any:
    """Proposal P3: positional timedelta(days, seconds, microseconds) avoids the float path."""
    return _EPOCH + timedelta(0, micros // 1_000_000, micros % 1_000_000)


def decode_rows(rows: list[tuple[Any, ...]]) -> list[e.Recorded]:
    """Proposal P2: one page-level decoder in codec (locals bound once, no per-row calls)."""
    out: list[e.Recorded] = []
    append = out.append
    decode = _DEC.decode
    recorded = e.Recorded
    for seq, tag, version, payload, actor, command_id, at in rows:
        if version != _VERSIONS.get(tag):
            append(codec.decode_row(seq, tag, version, payload, actor, command_id, at))
            continue
        try:
            event = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptJournal(seq, str(exc)) from exc
        if type(event) is not _CLASS[tag]:
            raise CorruptJournal(seq, f"payload type {e.tag_of(event)!r} under tag {tag!r}")
        append(
            recorded(
                seq=seq,
                at=_EPOCH + timedelta(0, at // 1_000_000, at % 1_000_000),
                actor=actor,
                event=event,
                command_id=command_id,
            )
        )
    return out


async def read_fast(
    self: Journal, after: int = 0, until: int | None = None, page_size: int = 10_000
) -> Any:
    async for rows in self.read_rows(after, until, page_size):
        yield decode_rows(rows)


class BulkFolder:
    """Proposal P4: fold raw rows; runs of message_sent are folded in bulk.

    A message goes to its room's deque(maxlen=window) of (seq, micros, event); only the last
    `window` of each room become `Message` values (with a datetime), when the run is flushed:
    at the end, or before a room_created / room_deleted (a room appears or disappears).  Every
    other event goes through the ordinary `evolve` without ending the run: none of them reads
    or writes a room's recent/message_count or last_message_id (a property test must hold
    that).  Same result as folding `evolve` over every event: checked below against the real
    replay.
    """

    def __init__(self, state: ChatState) -> None:
        self.state = state
        self.window = max(state.history_window, 1)
        self.pending: dict[str, deque[tuple[int, int, e.MessageSent]]] = {}
        self.counts: dict[str, int] = {}

    def flush(self, seq: int, last_id: int) -> None:
        state = self.state
        rooms = state.rooms
        window = self.window
        for room_id, run in self.pending.items():
            room = rooms[room_id]
            messages = tuple(
                Message(
                    seq=s,
                    message_id=ev.message_id,
                    room_id=ev.room_id,
                    username=ev.username,
                    text=ev.text,
                    timestamp=_EPOCH + timedelta(0, at // 1_000_000, at % 1_000_000),
                    client_msg_id=ev.client_msg_id,
                )
                for s, at, ev in run
            )
            recent = (*room.recent, *messages)[-window:]
            count = room.message_count + self.counts[room_id]
            rooms = rooms.set(room_id, replace(room, recent=recent, message_count=count))
        self.pending.clear()
        self.counts.clear()
        self.state = replace(state, seq=seq, last_message_id=last_id, rooms=rooms)

    def feed(self, rows: list[tuple[Any, ...]]) -> None:
        decode = _DEC.decode
        message_cls = e.MessageSent
        pending = self.pending
        counts = self.counts
        window = self.window
        state = self.state
        rooms = state.rooms
        seq = state.seq
        last_id = state.last_message_id
        for row in rows:
            row_seq, tag, version, payload, _actor, _command_id, at = row
            if tag == "message_sent" and version == 1:
                try:
                    event = decode(payload)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise CorruptJournal(row_seq, str(exc)) from exc
                if type(event) is not message_cls:
                    raise CorruptJournal(row_seq, f"payload {e.tag_of(event)!r} under {tag!r}")
                seq = row_seq
                if event.message_id > last_id:
                    last_id = event.message_id
                room_id = event.room_id
                run = pending.get(room_id)
                if run is None:
                    if room_id not in rooms:
                        continue  # as evolve: only seq and last_message_id move
                    run = pending[room_id] = deque(maxlen=window)
                    counts[room_id] = 0
                run.append((row_seq, at, event))
                counts[room_id] += 1
            else:
                if tag in _FLUSH_TAGS:
                    self.flush(seq, last_id)
                    state = self.state
                self.state = state = evolve(state, decode_rows([row])[0])
                rooms = state.rooms
                seq = state.seq
        # Between pages the run goes on; state.seq/last_message_id are settled by finish().
        self.state = replace(state, seq=seq, last_message_id=last_id)

    def finish(self) -> ChatState:
        self.flush(self.state.seq, self.state.last_message_id)
        return self.state


async def replay_fast(
    journal: Journal, *, history_window: int = 50, prefetch: bool = False
) -> tuple[ChatState, int]:
    folder = BulkFolder(initial_state(history_window))
    count = 0
    pages = read_rows_prefetch(journal) if prefetch else journal.read_rows(0, None, 10_000)
    async for rows in pages:
        folder.feed(rows)
        count += len(rows)
    return folder.finish(), count


async def read_rows_prefetch(journal: Journal, page_size: int = 10_000) -> Any:
    """Proposal P5: ask for page n+1 before the caller folds page n (the read overlaps)."""
    async with journal._reader.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        sql = (
            "SELECT seq, tag, version, payload, actor, command_id, recorded_at FROM events"
            f" WHERE seq > ? ORDER BY seq LIMIT {page_size}"
        )

        async def fetch(after: int) -> list[tuple[Any, ...]]:
            cursor = await driver.execute(sql, (after,))
            rows = list(await cursor.fetchall())
            await cursor.close()
            return rows

        rows = await fetch(0)
        while rows:
            # The next page is read in aiosqlite's thread while this one is folded.
            nxt = asyncio.ensure_future(fetch(rows[-1][0]))
            yield rows
            rows = await nxt


# ---------------------------------------------------------------------------------------


async def _with_journal(path: Path, body: Callable[[Journal], Any]) -> tuple[float, Any]:
    journal = await Journal.open(bench.url_of(path))
    try:
        started = time.perf_counter()
        result = await body(journal)
        return time.perf_counter() - started, result
    finally:
        await journal.close()


async def v_read_rows(j: Journal) -> int:
    n = 0
    async for rows in j.read_rows():
        n += len(rows)
    return n


async def v_read(j: Journal) -> int:
    n = 0
    async for page in j.read():
        n += len(page)
    return n


async def v_read_fast(j: Journal) -> int:
    n = 0
    async for page in read_fast(j):
        n += len(page)
    return n


async def v_replay(j: Journal) -> ChatState:
    state, _ = await replay(j)
    return state


async def v_replay_p2p3(j: Journal) -> ChatState:
    original = Journal.read
    Journal.read = read_fast  # type: ignore[method-assign,assignment]
    try:
        state, _ = await replay(j)
    finally:
        Journal.read = original  # type: ignore[method-assign]
    return state


async def v_replay_fast(j: Journal) -> ChatState:
    state, _ = await replay_fast(j)
    return state


async def v_replay_fast_prefetch(j: Journal) -> ChatState:
    state, _ = await replay_fast(j, prefetch=True)
    return state


def no_gc(body: Callable[[Journal], Any]) -> Callable[[Journal], Any]:
    """Proposal P1: no cyclic GC passes during the replay (gc.disable / enable around it)."""

    async def wrapped(j: Journal) -> Any:
        gc.disable()
        try:
            return await body(j)
        finally:
            gc.enable()

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    path = bench.ensure_journal(args.events)
    bench.raw_scan(path)

    variants: list[tuple[str, Callable[[Journal], Any]]] = [
        ("Journal.read_rows only (aiosqlite pages)", v_read_rows),
        ("Journal.read (rows + decode_row)", v_read),
        ("Journal.read with P2+P3 decode_rows", v_read_fast),
        ("replay (current)", v_replay),
        ("replay + P1 gc.disable", no_gc(v_replay)),
        ("replay + P2+P3 page decoder", v_replay_p2p3),
        ("replay + P1+P2+P3", no_gc(v_replay_p2p3)),
        ("replay_fast P4 (bulk message fold) + P3", v_replay_fast),
        ("replay_fast P4 + P1 gc.disable", no_gc(v_replay_fast)),
        ("replay_fast P4 + P1 + P5 prefetch", no_gc(v_replay_fast_prefetch)),
    ]
    best: dict[str, float] = {}
    raw_best = 0.0
    reference: ChatState | None = None
    for _ in range(args.repeats):
        n, s = bench.raw_scan(path)
        raw_best = max(raw_best, n / s)
        for name, body in variants:
            seconds, result = asyncio.run(_with_journal(path, body))
            best[name] = max(best.get(name, 0.0), args.events / seconds)
            if isinstance(result, ChatState):
                if reference is None:
                    reference = result
                assert result == reference, f"{name}: state differs from replay"
            del result
            gc.collect()
    print(
        f"{args.events:,} events; raw baseline (sqlite3 read + msgspec decode):"
        f" {raw_best:,.0f} ev/s = {1e6 / raw_best:.2f} us/event"
    )
    print(f"{'variant':48s} {'ev/s':>12s} {'us/event':>9s} {'vs raw':>7s} {'1M in':>7s}")
    for name, _ in variants:
        rate = best[name]
        print(
            f"{name:48s} {rate:12,.0f} {1e6 / rate:9.2f} {rate / raw_best:6.2f}x {1e6 / rate:6.2f}s"
        )
    print("all replay variants built a state equal to chat_core.replay.replay's")


if __name__ == "__main__":
    main()
