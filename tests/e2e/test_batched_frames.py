"""`batch=1`: several server messages to a frame (docs/protocol.md section 2)."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from helpers import (
    Client,
    HandshakeRefused,
    Harness,
    durable,
    open_socket,
    rpc_frame,
    unique,
)

BURST = 100


def texts(client: Client, prefix: str) -> list[str]:
    return [m["text"] for m in client.received("message_received") if m["text"].startswith(prefix)]


async def burst(
    sender: Client, room_id: str, prefix: str, pad: str = ""
) -> list[dict[str, object]]:
    """BURST lone send_message frames written back to back (the server pipelines them)."""
    frames = [
        rpc_frame(
            f"{prefix}-{i}", "send_message", {"room_id": room_id, "text": f"{prefix} {i}{pad}"}
        )
        for i in range(BURST)
    ]
    return await asyncio.gather(
        *(sender.request_raw(frame, f"{prefix}-{i}") for i, frame in enumerate(frames))
    )


async def wait_for_all(client: Client, prefix: str) -> None:
    await client.params_of("message_received", text=f"{prefix} {BURST - 1}", timeout=15)


async def test_a_burst_reaches_a_batching_client_in_arrays_in_order(chat: Harness) -> None:
    _, sender = await chat.user_client("s")
    user_b, _ = await chat.user_client("b")
    batched = await chat.connect(user_b, batch=True)
    _, plain = await chat.user_client("p")
    room = unique("batch")
    for client in (sender, batched, plain):
        await client.call("join_room", room_name=room)
    room_id = room.lower()
    first_frame = len(batched.frame_sizes)

    answers = await burst(sender, room_id, "burst")

    assert all("result" in answer for answer in answers), answers
    for client in (batched, plain):
        await wait_for_all(client, "burst")
        assert texts(client, "burst") == [f"burst {i}" for i in range(BURST)]
        seqs = [seq for _, seq in durable(client.notifications)]
        assert all(a < b for a, b in itertools.pairwise(seqs)), seqs
    # Both saw the same messages; the batching one in fewer frames, the plain one never in an
    # array (its Client would have recorded an array as one frame of several messages).
    assert [m["seq"] for m in batched.received("message_received")][-BURST:] == [
        m["seq"] for m in plain.received("message_received")
    ][-BURST:]
    sizes = batched.frame_sizes[first_frame:]
    assert sum(sizes) >= BURST
    assert max(sizes) > 1, sizes
    assert len(sizes) < BURST
    assert plain.batch is False and all(size == 1 for size in plain.frame_sizes)


async def test_a_batched_frame_stops_growing_past_64k_characters(chat: Harness) -> None:
    _, sender = await chat.user_client("s")
    reader = await chat.new_user("r")
    room = unique("big")
    await sender.call("join_room", room_name=room)
    ws = await open_socket(chat.ws_url, reader.token, extra_query={"batch": "1"})
    try:
        first = json.loads(await ws.recv())
        assert first["method"] == "connection_established"
        await ws.send(rpc_frame("j", "join_room", {"room_name": room}))
        pad = " " + "x" * 900  # ~1 KB a notification: the whole burst is ~100 KB
        answers = await burst(sender, room.lower(), "big", pad)
        assert all("result" in answer for answer in answers), answers
        frames: list[str] = []
        seen = 0
        async with asyncio.timeout(15):
            while seen < BURST:
                frame = await ws.recv()
                assert isinstance(frame, str)
                frames.append(frame)
                seen += frame.count('"message_received"')
    finally:
        await ws.close()
    longest_message = max(
        len(json.dumps(m, separators=(",", ":")))
        for f in frames
        for m in (json.loads(f) if f.startswith("[") else [json.loads(f)])
    )
    assert max(len(f) for f in frames) <= 65_536 + longest_message + 2
    assert any(f.startswith("[") for f in frames)


async def test_a_resume_backlog_reaches_a_batching_client_in_arrays(chat: Harness) -> None:
    reader, first = await chat.user_client("r")
    _, sender = await chat.user_client("s")
    room = unique("backlog")
    for client in (first, sender):
        await client.call("join_room", room_name=room)
    room_id = room.lower()
    since = await chat.journal_seq()
    await first.close()
    for i in range(30):
        await sender.call("send_message", room_id=room_id, text=f"missed {i}")

    batched = await chat.connect(reader, since=since, batch=True)
    plain = await chat.connect(reader, since=since)
    for client in (batched, plain):
        await client.params_of("message_received", text="missed 29", timeout=10)

    assert batched.established["params"]["resumed"] is True
    assert texts(batched, "missed") == [f"missed {i}" for i in range(30)]
    assert durable(batched.notifications) == durable(plain.notifications)
    assert max(batched.frame_sizes) > 1, batched.frame_sizes
    assert all(size == 1 for size in plain.frame_sizes)


async def test_a_client_batch_is_answered_by_one_array_never_nested(chat: Harness) -> None:
    user = await chat.new_user()
    client = await chat.connect(user, batch=True)
    await client.raw_send(f"[{rpc_frame('x1', 'ping')},{rpc_frame('x2', 'whoami')}]")
    one = await client.next_frame()
    two = await client.next_frame()

    assert [one["id"], two["id"]] == ["x1", "x2"]
    assert client.frame_sizes[-1] == 2


async def test_batch_takes_only_true_or_false(chat: Harness) -> None:
    user = await chat.new_user()
    for good in ("1", "true", "0", "false"):
        ws = await open_socket(chat.ws_url, user.token, extra_query={"batch": good})
        await ws.close()
    for bad in ("yes", "2", ""):
        with pytest.raises(HandshakeRefused) as refused:
            await open_socket(chat.ws_url, user.token, extra_query={"batch": bad})
        assert refused.value.status == 400
