"""One order per connection, and resume with `since` (docs/protocol.md section 5).
Socket-free: the real connection set-up (its resume backlog), reader, hub and processor in
process over the in-memory journal (frames_kit), talked to by the end-to-end tests' own client;
resume through a real socket and a SQLite journal is tested end to end (tests/e2e/test_restart,
tests/reliability/test_resume_churn)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

from frames_kit import InProcessChat, InProcessServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rpc_client import Client, durable, unique


def stripped(notifications: list[dict[str, Any]], after: int) -> list[dict[str, Any]]:
    """The durable notifications with seq > `after`, without the helper's arrival stamp."""
    return [
        {key: value for key, value in n.items() if key != "_received_at"}
        for n in notifications
        if "seq" in n["params"] and n["params"]["seq"] > after
    ]


def last_seq(client: Client) -> int:
    """The `since` a client would resume from: the last seq it saw, else the journal head it
    was told at connect time."""
    seqs = [seq for _, seq in durable(client.notifications)]
    return max(seqs, default=client.established["params"]["journal_seq"])


def assert_one_order(client: Client) -> None:
    seqs = [seq for _, seq in durable(client.notifications)]
    assert all(a < b for a, b in itertools.pairwise(seqs)), seqs


async def marker(sender: Client, room_id: str, *readers: Client) -> str:
    text = f"marker {uuid.uuid4().hex}"
    await sender.call("send_message", room_id=room_id, text=text)
    for reader in readers:
        await reader.params_of("message_received", room_id=room_id, text=text, timeout=10)
    return text


# --- one order ---------------------------------------------------------------------------------


async def test_each_connection_receives_seqs_in_strictly_increasing_order(
    chat: InProcessChat,
) -> None:
    _, a = await chat.user_client("a")
    _, b = await chat.user_client("b")
    _, c = await chat.user_client("c")
    room = unique("order")
    for client in (a, b, c):
        await client.call("join_room", room_name=room)
    room_id = room.lower()
    admin = await chat.admin_client()

    async def chatter(client: Client, tag: str) -> None:
        for i in range(25):
            await client.call("send_message", room_id=room_id, text=f"{tag}{i}")

    async def churn() -> None:
        for i in range(5):
            await c.call("join_room", room_name=f"{room}_{i}")
            await admin.call("broadcast_announcement", message=f"{room} {i}")

    await asyncio.gather(chatter(a, "a"), chatter(b, "b"), churn())
    await marker(a, room_id, a, b, c)
    for client in (a, b, c):
        assert_one_order(client)
        texts = [m["text"] for m in client.received("message_received")]
        for tag in ("a", "b"):
            assert [t for t in texts if t.startswith(tag) and t[1:].isdigit()] == [
                f"{tag}{i}" for i in range(25)
            ]


# --- resume ------------------------------------------------------------------------------------


async def test_resume_delivers_exactly_what_a_twin_connection_received(chat: InProcessChat) -> None:
    user, twin = await chat.user_client("resumer")
    leaving = await chat.connect(user)
    victim, victim_client = await chat.user_client("victim")
    _, v = await chat.user_client("v")
    _, w = await chat.user_client("w")
    admin = await chat.admin_client()
    r1, r2, r3 = unique("r1"), unique("r2"), unique("r3")
    for client, room in ((twin, r1), (v, r1), (victim_client, r1), (twin, r2), (w, r2)):
        await client.call("join_room", room_name=room)
    await marker(v, r1.lower(), leaving, twin)
    since = last_seq(leaving)
    await leaving.close()

    # While away: messages, a room left, a room joined, a new room, an announcement, a role
    # change of the user, a ban in a shared room.
    await v.call("send_message", room_id=r1.lower(), text="while away 1")
    await w.call("send_message", room_id=r2.lower(), text="while away 2")
    await twin.call("leave_room", room_id=r2.lower())
    await w.call("send_message", room_id=r2.lower(), text="not for the user any more")
    await twin.call("join_room", room_name=r3)
    await w.call("join_room", room_name=r3)
    await w.call("send_message", room_id=r3.lower(), text="in the new room")
    await admin.call("broadcast_announcement", message=f"away {uuid.uuid4().hex}")
    await admin.call("set_role", target_username=user.username, role="moderator")
    await admin.call("ban_user", target_username=victim.username, reason="resume test")
    await admin.call("unban_user", target_username=victim.username)

    # Reconnect while messages keep flowing: the seam between replay and live must hold.
    async def keep_talking() -> None:
        for i in range(15):
            await v.call("send_message", room_id=r1.lower(), text=f"during reconnect {i}")

    talker = asyncio.create_task(keep_talking())
    resumed = await chat.connect(user, since=since)
    await talker
    assert resumed.established["params"]["resumed"] is True
    await marker(v, r1.lower(), resumed, twin)

    expected = stripped(twin.notifications, since)
    got = stripped(resumed.notifications, since)
    assert durable(got) == durable(expected)
    assert got == expected
    assert_one_order(resumed)
    # Nothing at or before `since` is replayed.
    assert all(seq > since for _, seq in durable(resumed.notifications))
    texts = [m["text"] for m in resumed.received("message_received")]
    assert "not for the user any more" not in texts
    assert {"while away 1", "in the new room"} <= set(texts)


async def test_resume_from_the_journal_head_replays_nothing(chat: InProcessChat) -> None:
    user, first = await chat.user_client("head")
    _, other = await chat.user_client("other")
    room = unique("head")
    await first.call("join_room", room_name=room)
    await other.call("join_room", room_name=room)
    since = (await first.call("ping"))["journal_seq"]
    await first.close()
    again = await chat.connect(user, since=since)
    assert again.established["params"]["resumed"] is True
    await marker(other, room.lower(), again)
    assert [m for m, _ in durable(again.notifications)] == ["message_received"]


async def test_a_connection_without_since_is_not_resumed_and_replays_nothing(
    chat: InProcessChat,
) -> None:
    user, first = await chat.user_client("fresh")
    _, other = await chat.user_client("other")
    room = unique("fresh")
    await first.call("join_room", room_name=room)
    await other.call("join_room", room_name=room)
    await first.close()
    await other.call("send_message", room_id=room.lower(), text="missed")
    again = await chat.connect(user)
    assert again.established["params"]["resumed"] is False
    await marker(other, room.lower(), again)
    assert "missed" not in [m["text"] for m in again.received("message_received")]


async def test_resume_far_behind_the_head_resyncs_without_a_scan(start_server: Any) -> None:
    """Further behind than 10 x max_resume_events: resync_required, even for a client that
    would receive nothing of it (a resume never costs a scan of the whole journal)."""
    server = start_server({"CHAT__CHAT__MAX_RESUME_EVENTS": "2"})
    async with server.harness() as chat:
        user, away = await chat.user_client("away")
        _, busy = await chat.user_client("busy")
        quiet, loud = unique("quiet"), unique("loud")
        await away.call("join_room", room_name=quiet)
        await busy.call("join_room", room_name=loud)
        since = (await away.call("ping"))["journal_seq"]
        await away.close()
        for i in range(21):
            await busy.call("send_message", room_id=loud.lower(), text=f"elsewhere {i}")
        late = await chat.connect(user, since=since)
        assert (await late.params_of("resync_required"))["journal_seq"] >= since + 21
        assert late.received("message_received") == []

        # Within the bound, the same client resumes with exactly what it missed: nothing.
        since = (await late.call("ping"))["journal_seq"]
        await late.close()
        for i in range(19):
            await busy.call("send_message", room_id=loud.lower(), text=f"still elsewhere {i}")
        again = await chat.connect(user, since=since)
        # The backlog leaves before any answer: after this one, nothing more can arrive.
        assert (await again.call("whoami"))["rooms"] == [quiet.lower()]
        assert again.received("resync_required") == []
        assert durable(again.notifications) == []


async def test_resume_beyond_max_resume_events_sends_resync_required(start_server: Any) -> None:
    server = start_server({"CHAT__CHAT__MAX_RESUME_EVENTS": "5"})
    async with server.harness() as chat:
        user, first = await chat.user_client("slowpoke")
        _, other = await chat.user_client("other")
        room = unique("resync")
        room_id = room.lower()
        await first.call("join_room", room_name=room)
        await other.call("join_room", room_name=room)
        await marker(other, room_id, first)

        # Exactly the limit: replayed in full.
        since = last_seq(first)
        await first.close()
        sent = [
            await other.call("send_message", room_id=room_id, text=f"fits {i}") for i in range(5)
        ]
        again = await chat.connect(user, since=since)
        await marker(other, room_id, again)
        replayed = [n for n in durable(again.notifications) if n[1] <= sent[-1]["seq"]]
        assert replayed == [("message_received", s["seq"]) for s in sent]
        assert again.received("resync_required") == []

        # One more than the limit: resync_required instead of the events.
        since = last_seq(again)
        await again.close()
        for i in range(6):
            await other.call("send_message", room_id=room_id, text=f"too many {i}")
        head = await chat.journal_seq()
        late = await chat.connect(user, since=since)
        resync = await late.params_of("resync_required")
        assert resync["journal_seq"] >= head
        await marker(other, room_id, late)
        assert not [m for m in late.received("message_received") if "too many" in m["text"]]
        # The client refetches with get_history, which has everything.
        history = (await late.call("get_history", room_id=room_id))["messages"]
        assert [m["text"] for m in history if "too many" in m["text"]] == [
            f"too many {i}" for i in range(6)
        ]


# --- resume at random points -------------------------------------------------------------------

ACTIONS = [
    "v_message",
    "w_message",
    "join_new",
    "leave_last",
    "announce",
    "new_room_by_w",
    "toggle_role",
    "ban_a_member",
    "kick_from_last",
    "delete_last",
]


async def _resume_scenario(server: InProcessServer, actions: list[str], away: int) -> None:
    async with server.harness() as chat:
        user, twin = await chat.user_client("hyp")
        dropped = await chat.connect(user)
        _, v = await chat.user_client("hv")
        _, w = await chat.user_client("hw")
        admin = await chat.admin_client()
        base = unique("hb")
        await twin.call("join_room", room_name=base)
        await v.call("join_room", room_name=base)
        joined: list[str] = []

        async def act(action: str) -> None:
            if action == "v_message":
                await v.call("send_message", room_id=base.lower(), text=unique("t"))
            elif action == "w_message" and joined:
                await w.call("send_message", room_id=joined[-1], text=unique("t"))
            elif action == "join_new":
                room = unique("hj")
                await twin.call("join_room", room_name=room)
                await w.call("join_room", room_name=room)
                joined.append(room.lower())
            elif action == "leave_last" and joined:
                await twin.call("leave_room", room_id=joined.pop())
            elif action == "announce":
                await admin.call("broadcast_announcement", message=unique("a"))
            elif action == "new_room_by_w":
                await w.call("join_room", room_name=unique("hw"))
            elif action == "toggle_role":
                role = "user" if (await twin.call("whoami"))["role"] != "user" else "moderator"
                await admin.call("set_role", target_username=user.username, role=role)
            elif action == "ban_a_member":
                member, member_client = await chat.user_client("hx")
                await member_client.call("join_room", room_name=base)
                await admin.call("ban_user", target_username=member.username)
                await admin.call("unban_user", target_username=member.username)
            elif action == "kick_from_last" and joined:
                room = joined.pop()
                await admin.call("kick_user", target_username=user.username, room_id=room)
            elif action == "delete_last" and joined:
                await admin.call("delete_room", room_id=joined.pop())

        before, during, after = actions[:away], actions[away : away * 2], actions[away * 2 :]
        for action in before:
            await act(action)
        await marker(v, base.lower(), dropped, twin)
        since = last_seq(dropped)
        await dropped.close()
        for action in during:
            await act(action)
        resumed = await chat.connect(user, since=since)
        for action in after:
            await act(action)
        await marker(v, base.lower(), resumed, twin)
        assert resumed.established["params"]["resumed"] is True
        assert stripped(resumed.notifications, since) == stripped(twin.notifications, since)


@settings(
    max_examples=50,  # in process, 50 examples take less time than 10 did over a socket
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=12),
    away=st.integers(min_value=0, max_value=5),
)
def test_resume_at_any_point_matches_a_connection_that_stayed(
    actions: list[str], away: int
) -> None:
    asyncio.run(_resume_scenario(InProcessServer(), actions, away))
