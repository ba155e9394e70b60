"""The reader's pipeline (chat_web.ws.reader), socket-free: the real reader loop, handlers and
CommandProcessor over the in-memory journal, whose appends the test holds and releases. Lone
write frames are pipelined; answers leave in request order; the pipeline is bounded; any other
frame waits for the writes in flight; one failed write changes nobody else's answer."""

from __future__ import annotations

import asyncio
import time

from frames_kit import WITHIN, Peer, World, settings_with, world

from chat_core.protocol.codes import Close
from chat_core.settings.schema import RateLimitSettings, ServerSettings, Settings


async def _in_flight(w: World) -> None:
    """Wait until the processor is appending (and the test's gate holds it)."""
    await asyncio.wait_for(w.journal.appending.wait(), WITHIN)


async def _read_up_to(client: Peer, left: int) -> None:
    """Wait until the reader has taken all but `left` frames from the socket."""
    await client.socket.wait_for(lambda: client.socket.inbox.qsize() <= left)


def _ids(answers: list[dict]) -> list[object]:
    return [answer["id"] for answer in answers]


async def test_answers_leave_in_request_order_when_a_later_one_is_ready_first() -> None:
    # One message a minute: the second send is refused at the edge at once, but its answer
    # waits for the first one's commit.
    limited = Settings(
        rate_limit=RateLimitSettings(messages_per_minute=1, requests_per_minute=10_000)
    )
    async with world(limited) as w:
        bob = w.peer("bob")
        w.journal.hold()
        bob.call(1, "send_message", room_id="general", text="one")
        await _in_flight(w)
        bob.call(2, "send_message", room_id="general", text="two")
        await _read_up_to(bob, 0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert bob.responses == []  # the refusal is ready, the commit before it is not
        w.journal.release()
        first, second = await bob.answers(2)
        assert _ids([first, second]) == [1, 2]
        assert first["result"]["seq"] == w.processor.state.seq
        assert second["error"]["code"] == -32029


async def test_the_pipeline_is_bounded_and_stops_reading_until_answers_leave() -> None:
    # send_queue_limit 8: at most 8 // 4 = 2 writes in flight per connection.
    async with world(settings_with(send_queue_limit=8)) as w:
        bob = w.peer("bob")
        w.journal.hold()
        for i in range(1, 6):
            bob.call(i, "send_message", room_id="general", text=f"m{i}")
        await _in_flight(w)
        # Two frames pipelined, the third read and waiting for room: two left unread.
        await _read_up_to(bob, 2)
        for _ in range(50):
            await asyncio.sleep(0)
        assert bob.socket.inbox.qsize() == 2  # TCP would push back on the client now
        assert bob.responses == []
        w.journal.release()
        answers = await bob.answers(5)
        assert _ids(answers) == [1, 2, 3, 4, 5]
        seqs = [answer["result"]["seq"] for answer in answers]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5


async def test_a_batch_answer_over_the_send_queue_bytes_closes_with_4008_unsent() -> None:
    async with world(settings_with(send_queue_bytes=2_000)) as w:
        bob = w.peer("bob")
        batch = [{"jsonrpc": "2.0", "id": i, "method": "list_rooms"} for i in range(40)]
        bob.send(batch)
        await bob.socket.wait_for(lambda: bob.socket.close_code is not None)
        assert bob.socket.close_code == Close.SLOW_READER
        assert bob.responses == []
        # A batch that fits is answered whole, as one array.
        carol = w.peer("carol")
        carol.send(batch[:3])
        (answer,) = await carol.answers(1)
        assert _ids(answer) == [0, 1, 2]


async def test_a_frame_that_is_not_a_lone_write_waits_for_the_writes_in_flight() -> None:
    async with world() as w:
        bob = w.peer("bob")
        w.journal.hold()
        bob.call(1, "send_message", room_id="general", text="one")
        await _in_flight(w)
        bob.call(2, "ping")
        bob.call(3, "send_message", room_id="general", text="after the ping")
        await _read_up_to(bob, 1)  # the ping is read, and waits; the write after it is not
        for _ in range(50):
            await asyncio.sleep(0)
        assert bob.socket.inbox.qsize() == 1
        assert bob.responses == []
        w.journal.release()
        sent, ping, later = await bob.answers(3)
        assert _ids([sent, ping, later]) == [1, 2, 3]
        # The ping ran after the commit: it sees the message's seq.
        assert ping["result"]["journal_seq"] == sent["result"]["seq"]
        assert later["result"]["seq"] == sent["result"]["seq"] + 1


async def test_a_write_after_a_join_waits_for_the_room_the_join_sets() -> None:
    async with world() as w:
        bob = w.peer("bob")
        w.journal.hold()
        bob.call(1, "join_room", room_name="lobby")
        await _in_flight(w)
        bob.call(2, "send_message", text="in the new room")  # no room_id: the current room
        w.journal.release()
        joined, sent = await bob.answers(2)
        assert joined["result"]["room_id"] == "lobby"
        assert sent["result"]["room_id"] == "lobby"


async def test_a_failed_write_changes_neither_the_order_nor_the_other_answers() -> None:
    async with world() as w:
        bob = w.peer("bob")
        head = w.processor.state.seq
        w.journal.hold(fail=True)
        bob.call(1, "send_message", room_id="general", text="lost")
        await _in_flight(w)
        # Decided while the first is appended; the first's failure does not fail them.
        bob.call(2, "send_message", room_id="general", text="kept")
        # A notification (no id), naming no room: it waits for the writes in flight.
        bob.send({"jsonrpc": "2.0", "method": "send_message", "params": {"text": "no id"}})
        bob.call(3, "send_message", room_id="random", text="not a member there")
        bob.call(4, "send_message", room_id="general", text="kept too")
        await _read_up_to(bob, 2)
        w.journal.release()
        lost, kept, refused, kept_too = await bob.answers(4)
        assert _ids([lost, kept, refused, kept_too]) == [1, 2, 3, 4]
        assert lost["error"]["code"] == -32603
        assert refused["error"]["data"]["reason"] == "not_a_member"
        # Nothing of the failed batch was recorded: the next message has the next seq.
        assert kept["result"]["seq"] == head + 1
        assert kept_too["result"]["seq"] == head + 3  # the notification's message between
        assert len(bob.responses) == 4  # the notification got no answer


async def test_writes_refused_by_the_decider_keep_their_places() -> None:
    async with world() as w:
        bob = w.peer("bob")
        w.journal.hold()
        bob.call(1, "send_message", room_id="general", text="one")
        await _in_flight(w)
        bob.call(2, "kick_user", target_username="carol")  # bob is no moderator
        bob.call(3, "send_message", room_id="nowhere", text="no such room")
        w.journal.release()
        answers = await bob.answers(3)
        assert _ids(answers) == [1, 2, 3]
        assert "result" in answers[0]
        assert [a["error"]["data"]["reason"] for a in answers[1:]] == [
            "insufficient_role",
            "room_not_found",
        ]


def test_the_settings_helper_keeps_the_other_server_defaults() -> None:
    settings = settings_with(send_queue_limit=8)
    assert settings.server.send_queue_limit == 8
    assert settings.server.send_queue_bytes == ServerSettings().send_queue_bytes
    assert settings.rate_limit.enabled is False


async def test_an_expired_token_gets_32001_then_4401_on_the_pipelined_path_and_the_other() -> None:
    async with world() as w:
        expired = int(time.time()) - 1
        writer, reader = w.peer("bob", expires=expired), w.peer("carol", expires=expired)
        head = w.processor.state.seq
        writer.call(1, "send_message", room_id="general", text="too late")
        reader.call(1, "ping")
        for peer in (writer, reader):
            (answer,) = await peer.answers(1)
            assert answer["id"] == 1
            assert (answer["error"]["code"], answer["error"]["data"]["reason"]) == (
                -32001,
                "token_expired",
            )
            await peer.socket.wait_for(lambda p=peer: p.socket.close_code is not None)
            assert peer.socket.close_code == Close.UNAUTHORIZED
        assert w.processor.state.seq == head  # the write was never queued
