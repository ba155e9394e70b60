"""The writes of one batch frame (chat_web.ws.pipeline.BatchWrites), socket-free: the real
reader, handlers and CommandProcessor over the in-memory journal. They share one group commit
and the batch is answered once, as one array in request order; a read, a write naming no room
and the write after a join wait for the writes before them, so a batch means what it meant
when its requests ran one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from frames_kit import WITHIN, world

from chat_core.settings.schema import RateLimitSettings, Settings


def _call(request_id: int, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


async def test_a_batch_of_writes_is_one_group_commit_and_one_answer() -> None:
    async with world() as w:
        bob = w.peer("bob")
        w.journal.hold()
        before = len(w.journal.appended)
        bob.send([_call(i, "send_message", room_id="general", text=f"m{i}") for i in (1, 2, 3)])
        async with asyncio.timeout(WITHIN):
            await w.journal.appending.wait()
        w.journal.release()
        (answer,) = await bob.answers(1)
        assert [a["id"] for a in answer] == [1, 2, 3]
        seqs = [a["result"]["seq"] for a in answer]
        assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
        assert w.journal.appended[before:] == [3]  # one append, not one per request


async def test_a_refused_write_in_a_batch_fails_alone() -> None:
    async with world() as w:
        bob = w.peer("bob")
        bob.send(
            [
                _call(1, "send_message", room_id="general", text="one"),
                _call(2, "send_message", room_id="general", text="   "),  # blank: refused
                _call(3, "send_message", room_id="nowhere", text="not a member"),
                _call(4, "send_message", room_id="general", text="four"),
            ]
        )
        (answer,) = await bob.answers(1)
        assert [a["id"] for a in answer] == [1, 2, 3, 4]
        assert "result" in answer[0] and "result" in answer[3]
        assert answer[1]["error"]["code"] == -32602
        assert "error" in answer[2]
        assert answer[3]["result"]["seq"] == answer[0]["result"]["seq"] + 1


async def test_a_write_naming_no_room_after_a_join_in_the_same_batch_goes_to_that_room() -> None:
    async with world() as w:
        bob = w.peer("bob")
        bob.send(
            [
                _call(1, "join_room", room_name="batchroom"),
                _call(2, "send_message", text="in the room just joined"),
                _call(3, "get_history", room_id="batchroom"),
            ]
        )
        (answer,) = await bob.answers(1)
        joined, sent, history = answer
        assert sent["result"]["room_id"] == joined["result"]["room_id"]
        # The read ran after the writes before it: it sees the message.
        texts = [m["text"] for m in history["result"]["messages"]]
        assert texts == ["in the room just joined"]


async def test_a_read_between_writes_sees_the_writes_before_it() -> None:
    async with world() as w:
        bob = w.peer("bob")
        bob.send(
            [
                _call(1, "send_message", room_id="general", text="first"),
                _call(2, "get_history", room_id="general"),
                _call(3, "send_message", room_id="general", text="second"),
            ]
        )
        (answer,) = await bob.answers(1)
        first, history, second = answer
        texts = [m["text"] for m in history["result"]["messages"]]
        assert texts[-1] == "first" and "second" not in texts
        assert second["result"]["seq"] == first["result"]["seq"] + 1


async def test_a_batch_spending_the_message_budget_gets_each_refusal_in_its_place() -> None:
    limited = Settings(rate_limit=RateLimitSettings(messages_per_minute=2, requests_per_minute=600))
    async with world(limited) as w:
        bob = w.peer("bob")
        bob.send([_call(i, "send_message", room_id="general", text=f"m{i}") for i in range(4)])
        (answer,) = await bob.answers(1)
        assert [a["id"] for a in answer] == [0, 1, 2, 3]
        assert ["result" in a for a in answer] == [True, True, False, False]
        assert {a["error"]["code"] for a in answer[2:]} == {-32029}
