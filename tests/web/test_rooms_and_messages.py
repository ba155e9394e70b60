"""Rooms, membership, messages and the read methods (docs/protocol.md sections 4 and 5).
Socket-free: the real reader, handlers, hub and processor in process (frames_kit), talked to by
the end-to-end tests' own client; nothing here is the network's (tests/e2e has the socket)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from frames_kit import GENEROUS_LIMITS, InProcessChat
from rpc_client import Client, parse_time, unique

HISTORY_ON_JOIN = 5
MESSAGE_FIELDS = {"seq", "message_id", "room_id", "username", "text", "timestamp"}


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {
        "CHAT__CHAT__HISTORY_ON_JOIN": str(HISTORY_ON_JOIN),
        **GENEROUS_LIMITS,
    }


def assert_message(message: dict[str, Any], **expected: Any) -> None:
    assert message.keys() >= MESSAGE_FIELDS, message
    assert isinstance(message["seq"], int) and message["seq"] > 0
    assert isinstance(message["message_id"], int) and message["message_id"] > 0
    parse_time(message["timestamp"])
    for key, value in expected.items():
        assert message[key] == value, (key, message)


async def sentinel(sender: Client, room_id: str, *readers: Client) -> None:
    """Send a marker message and wait until every reader got it: anything sent before it to
    those readers has arrived by then."""
    text = f"sentinel {uuid.uuid4().hex}"
    await sender.call("send_message", room_id=room_id, text=text)
    for reader in readers:
        await reader.params_of("message_received", room_id=room_id, text=text)


# --- join --------------------------------------------------------------------------------------


async def test_joining_a_new_room_creates_it_and_tells_everyone(chat: InProcessChat) -> None:
    _, observer = await chat.user_client("obs")
    creator, client = await chat.user_client("creator")
    name = unique("Room")
    result = await client.call("join_room", room_name=name)
    assert result["room_id"] == name.lower()
    assert result["room_name"] == name
    assert result["created"] is True
    assert result["user_count"] == 1
    assert result["existing_users"] == [creator.username]
    assert result["history"] == []
    assert isinstance(result["journal_seq"], int)
    for someone in (observer, client):
        created = await someone.params_of("room_created", room_id=name.lower())
        assert created["room_name"] == name
        assert created["created_by"] == creator.username
        assert isinstance(created["seq"], int)
        parse_time(created["timestamp"])
    joined = await client.params_of("user_joined", room_id=name.lower())
    assert joined["username"] == creator.username
    assert joined["user_count"] == 1
    assert joined["seq"] > created["seq"]
    assert result["journal_seq"] >= joined["seq"]


async def test_room_names_are_case_insensitive_and_keep_the_creators_spelling(
    chat: InProcessChat,
) -> None:
    _, first = await chat.user_client("first")
    second_user, second = await chat.user_client("second")
    name = unique("MiXeD")
    await first.call("join_room", room_name=name)
    result = await second.call("join_room", room_name=name.upper())
    assert result["room_id"] == name.lower()
    assert result["room_name"] == name
    assert result["created"] is False
    assert result["user_count"] == 2
    joined = await first.params_of("user_joined", username=second_user.username)
    assert joined == {**joined, "room_id": name.lower(), "user_count": 2}


async def test_rejoining_a_room_appends_nothing_and_succeeds(chat: InProcessChat) -> None:
    _, client = await chat.user_client("rejoin")
    name = unique("again")
    await client.call("join_room", room_name=name)
    await client.params_of("user_joined", room_id=name.lower())
    before = await chat.journal_seq()
    again = await client.call("join_room", room_name=name)
    assert again["created"] is False
    assert again["user_count"] == 1
    assert await chat.journal_seq() == before
    await sentinel(client, name.lower(), client)
    assert len(client.received("user_joined")) == 1
    assert len([c for c in client.received("room_created") if c["room_id"] == name.lower()]) == 1


async def test_existing_users_are_all_members_sorted_case_insensitively(
    chat: InProcessChat,
) -> None:
    tag = uuid.uuid4().hex[:6]
    names = [f"c_{tag}", f"B_{tag}", f"a_{tag}", f"D_{tag}"]
    room = unique("sorted")
    result: dict[str, Any] = {}
    for name in names:
        client = await chat.connect(await chat.named_user(name))
        result = await client.call("join_room", room_name=room)
    assert result["existing_users"] == sorted(names, key=str.lower)
    assert result["user_count"] == len(names)


async def test_join_returns_the_last_messages_of_the_room_oldest_first(chat: InProcessChat) -> None:
    author, talker = await chat.user_client("talker")
    room = unique("hist")
    room_id = room.lower()
    await talker.call("join_room", room_name=room)
    sent = []
    for index in range(HISTORY_ON_JOIN + 2):
        extra = {"client_msg_id": f"m-{index}"} if index % 2 else {}
        sent.append(await talker.call("send_message", room_id=room_id, text=f"n{index}", **extra))
    _, late = await chat.user_client("late")
    history = (await late.call("join_room", room_name=room))["history"]
    assert [m["text"] for m in history] == [f"n{i}" for i in range(2, HISTORY_ON_JOIN + 2)]
    assert [m["seq"] for m in history] == [r["seq"] for r in sent[2:]]
    assert [m["message_id"] for m in history] == [r["message_id"] for r in sent[2:]]
    for index, message in zip(range(2, HISTORY_ON_JOIN + 2), history, strict=True):
        assert_message(message, room_id=room_id, username=author.username)
        if index % 2:
            assert message["client_msg_id"] == f"m-{index}"
        else:
            assert message.get("client_msg_id") is None


async def test_join_sets_the_current_room(chat: InProcessChat) -> None:
    _, client = await chat.user_client("cur")
    first, second = unique("one"), unique("two")
    await client.call("join_room", room_name=first)
    await client.call("join_room", room_name=second)
    assert (await client.call("whoami"))["current_room"] == second.lower()
    # A re-join also sets it.
    await client.call("join_room", room_name=first)
    assert (await client.call("whoami"))["current_room"] == first.lower()
    sent = await client.call("send_message", text="where am I")
    assert sent["room_id"] == first.lower()


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/etc",
        "a/b",
        "bad\x00name",
        "tab\tname",
        "new\nline",
        "",
        "-lead",
        "_lead",
        "a b",
        "é",
        "room.name",
        "x" * 51,
    ],
)
async def test_join_rejects_invalid_room_names(chat: InProcessChat, name: str) -> None:
    _, client = await chat.user_client("badroom")
    error = await client.error_of("join_room", room_name=name)
    assert (error.code, error.reason) == (-32602, "invalid_room_name"), error


async def test_room_names_of_the_maximum_length_are_accepted(chat: InProcessChat) -> None:
    _, client = await chat.user_client("longroom")
    name = (unique("R") + "x" * 50)[:50]
    assert (await client.call("join_room", room_name=name))["room_id"] == name.lower()


# --- leave -------------------------------------------------------------------------------------


async def test_leaving_a_room_tells_its_members_and_the_leaver(chat: InProcessChat) -> None:
    leaver, client = await chat.user_client("leaver")
    _, other = await chat.user_client("stayer")
    room = unique("exit")
    await other.call("join_room", room_name=room)
    await client.call("join_room", room_name=room)
    result = await client.call("leave_room", room_id=room.lower())
    assert result == {"room_id": room.lower(), "user_count": 1}
    for someone in (client, other):
        left = await someone.params_of("user_left", username=leaver.username)
        assert left["room_id"] == room.lower()
        assert left["reason"] == "left"
        assert left["user_count"] == 1
        assert isinstance(left["seq"], int)
    assert room.lower() not in (await client.call("whoami"))["rooms"]
    error = await client.error_of("leave_room", room_id=room.lower())
    assert (error.code, error.reason) == (-32004, "not_a_member")


async def test_leave_without_a_room_leaves_the_current_one_and_falls_back(
    chat: InProcessChat,
) -> None:
    _, client = await chat.user_client("fallback")
    first, second = unique("aa"), unique("bb")
    await client.call("join_room", room_name=first)
    await client.call("join_room", room_name=second)
    assert (await client.call("leave_room"))["room_id"] == second.lower()
    me = await client.call("whoami")
    assert me["current_room"] == first.lower()
    assert me["rooms"] == [first.lower()]
    assert (await client.call("leave_room"))["room_id"] == first.lower()
    assert (await client.call("whoami"))["current_room"] is None


async def test_membership_survives_a_reconnect(chat: InProcessChat) -> None:
    user, client = await chat.user_client("durable")
    room = unique("stay")
    await client.call("join_room", room_name=room)
    await client.close()
    again = await chat.connect(user)
    me = await again.call("whoami")
    assert me["rooms"] == [room.lower()]
    assert me["current_room"] == room.lower()


# --- messages ----------------------------------------------------------------------------------


async def test_a_message_reaches_the_members_and_not_the_others(chat: InProcessChat) -> None:
    sender_user, sender = await chat.user_client("sender")
    _, member = await chat.user_client("member")
    _, outsider = await chat.user_client("outsider")
    room, elsewhere = unique("talk"), unique("else")
    await sender.call("join_room", room_name=room)
    await member.call("join_room", room_name=room)
    await outsider.call("join_room", room_name=elsewhere)
    await sender.call("join_room", room_name=elsewhere)

    result = await sender.call("send_message", room_id=room.lower(), text="secret plans")
    assert result["room_id"] == room.lower()
    assert result["duplicate"] is False
    assert isinstance(result["message_id"], int) and isinstance(result["seq"], int)
    parse_time(result["timestamp"])
    for someone in (sender, member):
        message = await someone.params_of("message_received", text="secret plans")
        assert_message(
            message,
            room_id=room.lower(),
            username=sender_user.username,
            seq=result["seq"],
            message_id=result["message_id"],
        )
    # The outsider gets a later message of its own room; the secret must not precede it.
    await sentinel(sender, elsewhere.lower(), outsider)
    assert all(m["room_id"] != room.lower() for m in outsider.received("message_received"))


async def test_a_connection_of_the_sender_outside_the_room_still_gets_the_message(
    chat: InProcessChat,
) -> None:
    user, first = await chat.user_client("multi")
    second = await chat.connect(user)
    room = unique("both")
    await first.call("join_room", room_name=room)
    await first.call("send_message", room_id=room.lower(), text="to all my sockets")
    await second.params_of("message_received", text="to all my sockets")


async def test_non_member_cannot_send_or_read_history(chat: InProcessChat) -> None:
    _, owner = await chat.user_client("owner")
    _, stranger = await chat.user_client("stranger")
    room = unique("private")
    await owner.call("join_room", room_name=room)
    error = await stranger.error_of("send_message", room_id=room.lower(), text="let me in")
    assert (error.code, error.reason) == (-32004, "not_a_member")
    error = await stranger.error_of("get_history", room_id=room.lower())
    assert (error.code, error.reason) == (-32004, "not_a_member")


async def test_sending_to_a_room_that_does_not_exist_is_not_found(chat: InProcessChat) -> None:
    _, client = await chat.user_client("nowhere")
    error = await client.error_of("send_message", room_id=unique("ghost"), text="hello?")
    assert (error.code, error.reason) == (-32003, "room_not_found")


async def test_a_repeated_client_msg_id_returns_the_first_result_and_delivers_once(
    chat: InProcessChat,
) -> None:
    _, sender = await chat.user_client("retry")
    _, reader = await chat.user_client("reader")
    room = unique("idem")
    await sender.call("join_room", room_name=room)
    await reader.call("join_room", room_name=room)
    first = await sender.call("send_message", room_id=room.lower(), text="once", client_msg_id="k1")
    before = await chat.journal_seq()
    second = await sender.call(
        "send_message", room_id=room.lower(), text="once", client_msg_id="k1"
    )
    assert first["duplicate"] is False
    assert second == {**first, "duplicate": True}
    assert await chat.journal_seq() == before
    message = await reader.params_of("message_received", client_msg_id="k1")
    assert message["message_id"] == first["message_id"]
    await sentinel(sender, room.lower(), reader, sender)
    for someone in (reader, sender):
        copies = [m for m in someone.received("message_received") if m.get("client_msg_id") == "k1"]
        assert len(copies) == 1
    history = (await reader.call("get_history", room_id=room.lower()))["messages"]
    assert [m["text"] for m in history].count("once") == 1


async def test_the_same_client_msg_id_from_two_users_is_two_messages(chat: InProcessChat) -> None:
    _, one = await chat.user_client("one")
    _, two = await chat.user_client("two")
    room = unique("shared")
    await one.call("join_room", room_name=room)
    await two.call("join_room", room_name=room)
    a = await one.call("send_message", room_id=room.lower(), text="hi", client_msg_id="same")
    b = await two.call("send_message", room_id=room.lower(), text="hi", client_msg_id="same")
    assert a["duplicate"] is False and b["duplicate"] is False
    assert a["message_id"] != b["message_id"]


async def test_message_length_is_counted_in_code_points(chat: InProcessChat) -> None:
    _, client = await chat.user_client("len")
    room = unique("len")
    await client.call("join_room", room_name=room)
    for char in ("a", "é", "😀"):
        ok = await client.call("send_message", room_id=room.lower(), text=char * 1000)
        assert ok["duplicate"] is False
        error = await client.error_of("send_message", room_id=room.lower(), text=char * 1001)
        assert (error.code, error.reason) == (-32602, "message_too_long"), char
    emoji = await client.params_of("message_received", text="😀" * 1000)
    assert emoji["text"] == "😀" * 1000


@pytest.mark.parametrize("text", ["", " ", "   \n\t  "])
async def test_empty_or_blank_messages_are_refused(chat: InProcessChat, text: str) -> None:
    _, client = await chat.user_client("blank")
    room = unique("blank")
    await client.call("join_room", room_name=room)
    error = await client.error_of("send_message", room_id=room.lower(), text=text)
    assert (error.code, error.reason) == (-32602, "empty_message")


@pytest.mark.parametrize("text", ["\x1b[2K\r<admin> forged", "\x1b]52;c;aGVsbG8=\x07", "x\x9b"])
async def test_messages_with_control_characters_are_refused_as_invalid_text(
    chat: InProcessChat, text: str
) -> None:
    _, client = await chat.user_client("ctl")
    room = unique("ctl")
    await client.call("join_room", room_name=room)
    error = await client.error_of("send_message", room_id=room.lower(), text=text)
    assert (error.code, error.reason, error.data["field"]) == (-32602, "invalid_text", "text")
    ok = await client.call("send_message", room_id=room.lower(), text="line\n\tindented 👍")
    assert ok["duplicate"] is False


async def test_a_message_of_zero_width_characters_is_empty(chat: InProcessChat) -> None:
    _, client = await chat.user_client("zw")
    room = unique("zw")
    await client.call("join_room", room_name=room)
    error = await client.error_of("send_message", room_id=room.lower(), text="\u200b\ufeff")
    assert (error.code, error.reason, error.data["field"]) == (-32602, "empty_message", "text")


async def test_message_ids_and_seqs_grow(chat: InProcessChat) -> None:
    _, client = await chat.user_client("grow")
    room = unique("grow")
    await client.call("join_room", room_name=room)
    results = [
        await client.call("send_message", room_id=room.lower(), text=f"m{i}") for i in range(5)
    ]
    ids = [r["message_id"] for r in results]
    seqs = [r["seq"] for r in results]
    assert ids == sorted(set(ids)) and seqs == sorted(set(seqs))


# --- reads -------------------------------------------------------------------------------------


async def test_list_rooms_is_sorted_and_describes_each_room(chat: InProcessChat) -> None:
    creator, client = await chat.user_client("lister")
    tag = uuid.uuid4().hex[:6]
    for name in (f"Zz_{tag}", f"aa_{tag}", f"Mm_{tag}"):
        await client.call("join_room", room_name=name)
    rooms = (await client.call("list_rooms"))["rooms"]
    ids = [room["room_id"] for room in rooms]
    assert ids == sorted(ids, key=str.lower)
    assert "general" in ids
    mine = {room["room_id"]: room for room in rooms if room["room_id"].endswith(tag)}
    assert set(mine) == {f"zz_{tag}", f"aa_{tag}", f"mm_{tag}"}
    room = mine[f"zz_{tag}"]
    assert room["room_name"] == f"Zz_{tag}"
    assert room["user_count"] == 1
    assert room["online_count"] == 1
    assert room["created_by"] == creator.username
    parse_time(room["created_at"])


async def test_list_members_is_sorted_with_roles_and_presence(chat: InProcessChat) -> None:
    tag = uuid.uuid4().hex[:6]
    room = unique("members")
    clients = {}
    for name in (f"y_{tag}", f"X_{tag}", f"w_{tag}"):
        clients[name] = await chat.connect(await chat.named_user(name))
        await clients[name].call("join_room", room_name=room)
    await clients[f"y_{tag}"].close()
    result = await clients[f"w_{tag}"].call("list_members", room_id=room.lower())
    assert result["room_id"] == room.lower()
    members = result["members"]
    assert [m["username"] for m in members] == [f"w_{tag}", f"X_{tag}", f"y_{tag}"]
    assert all(m["role"] == "user" for m in members)
    online = {m["username"]: m["online"] for m in members}
    assert online[f"w_{tag}"] is True and online[f"X_{tag}"] is True


async def test_list_members_of_a_missing_room_is_not_found(chat: InProcessChat) -> None:
    _, client = await chat.user_client("lm")
    error = await client.error_of("list_members", room_id=unique("nope"))
    assert (error.code, error.reason) == (-32003, "room_not_found")


async def test_get_history_pages_backwards_with_before_seq(chat: InProcessChat) -> None:
    _, client = await chat.user_client("pager")
    room = unique("pages")
    room_id = room.lower()
    await client.call("join_room", room_name=room)
    sent = [await client.call("send_message", room_id=room_id, text=f"p{i}") for i in range(12)]
    pages = []
    before: int | None = None
    while True:
        params: dict[str, Any] = {"room_id": room_id, "limit": 5}
        if before is not None:
            params["before_seq"] = before
        page = await client.call("get_history", **params)
        assert page["room_id"] == room_id
        pages.append(page)
        if not page["has_more"]:
            break
        before = page["messages"][0]["seq"]
        assert len(pages) < 10
    assert [len(p["messages"]) for p in pages] == [5, 5, 2]
    assert [p["has_more"] for p in pages] == [True, True, False]
    everything = [m for page in reversed(pages) for m in page["messages"]]
    assert [m["seq"] for m in everything] == [s["seq"] for s in sent]
    assert [m["text"] for m in everything] == [f"p{i}" for i in range(12)]
    for message in everything:
        assert_message(message, room_id=room_id)


async def test_get_history_defaults_to_50_and_cuts_large_limits_to_200(chat: InProcessChat) -> None:
    _, client = await chat.user_client("bulk")
    room = unique("bulk")
    room_id = room.lower()
    await client.call("join_room", room_name=room)
    for start in range(0, 205, 41):
        await asyncio.gather(
            *(
                client.call("send_message", room_id=room_id, text=f"b{i}")
                for i in range(start, start + 41)
            )
        )
    default = await client.call("get_history", room_id=room_id)
    assert len(default["messages"]) == 50 and default["has_more"] is True
    big = await client.call("get_history", room_id=room_id, limit=10_000)
    assert len(big["messages"]) == 200 and big["has_more"] is True
    seqs = [m["seq"] for m in big["messages"]]
    assert seqs == sorted(seqs)
    rest = await client.call("get_history", room_id=room_id, before_seq=seqs[0], limit=200)
    assert len(rest["messages"]) == 5 and rest["has_more"] is False


async def test_whoami_describes_the_caller(chat: InProcessChat) -> None:
    user, client = await chat.user_client("me")
    assert await client.call("whoami") == {
        "username": user.username,
        "role": "user",
        "rooms": [],
        "current_room": None,
    }
    tag = uuid.uuid4().hex[:6]
    await client.call("join_room", room_name=f"Q_{tag}")
    await client.call("join_room", room_name=f"b_{tag}")
    me = await client.call("whoami")
    assert me["rooms"] == [f"b_{tag}", f"q_{tag}"]
    assert me["current_room"] == f"b_{tag}"


async def test_ping_returns_pong_and_the_journal_seq(chat: InProcessChat) -> None:
    _, client = await chat.user_client("ping")
    result = await client.call("ping")
    assert result["pong"] is True
    assert result["journal_seq"] == await chat.journal_seq()
