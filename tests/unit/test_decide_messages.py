"""decide: sending messages and announcements."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.rules import Limits
from chat_kit import T0, rejected, then, world

TEN = Limits(max_message_length=10)


def send(actor: str, text: str, room_id: str = "general", **extra) -> c.SendMessage:
    return c.SendMessage(actor=actor, at=T0, room_id=room_id, text=text, limits=TEN, **extra)


def test_a_member_sends_a_message_with_the_next_message_id():
    new_events, after = then(send("ALICE", "hello", client_msg_id="m1"), world())
    assert new_events == [
        e.MessageSent(
            message_id=1, room_id="general", username="Alice", text="hello", client_msg_id="m1"
        )
    ]
    new_events, _ = then(send("bob", "again"), after)
    assert new_events[0].message_id == 2  # type: ignore[union-attr]


def test_non_member_cannot_send():
    rejected(send("carol", "hi"), world(), -32004, "not_a_member")


def test_sending_to_an_unknown_room_is_refused():
    rejected(send("bob", "hi", room_id="nowhere"), world(), -32003, "room_not_found")


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000"])
def test_empty_or_blank_messages_are_refused(text):
    rejected(send("bob", text), world(), -32602, "empty_message")


def test_a_message_of_exactly_the_maximum_length_is_sent():
    assert decide(send("bob", "x" * 10), world())


def test_a_message_over_the_maximum_length_is_refused():
    rejected(send("bob", "x" * 11), world(), -32602, "message_too_long")


def test_message_length_counts_code_points_so_an_emoji_counts_as_one():
    emoji = "😀" * 10  # 10 code points, 40 UTF-8 bytes, 20 UTF-16 units
    assert decide(send("bob", emoji), world())
    rejected(send("bob", emoji + "!"), world(), -32602, "message_too_long")


def test_a_banned_member_cannot_send():
    ban = c.BanUser(actor="mod", at=T0, target="bob", duration_seconds=60)
    _, state = then(ban, world())
    rejected(send("bob", "hi"), state, -32006, "banned")


def announce(actor: str, message: str, level: str = "info") -> c.BroadcastAnnouncement:
    return c.BroadcastAnnouncement(actor=actor, at=T0, message=message, level=level, limits=TEN)


@pytest.mark.parametrize("level", ["info", "warning", "error"])
def test_an_admin_announces_at_each_level(level):
    assert decide(announce("admin", "restart", level), world()) == [
        e.AnnouncementBroadcast(message="restart", level=level, by="admin")  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("actor", ["mod", "bob"])
def test_only_admins_announce(actor):
    rejected(announce(actor, "restart"), world(), -32002, "insufficient_role")


def test_an_announcement_level_must_be_known():
    rejected(announce("admin", "restart", "loud"), world(), -32602, "invalid_level")


@pytest.mark.parametrize("message", ["", "   "])
def test_an_empty_announcement_is_refused(message):
    rejected(announce("admin", message), world(), -32602, "empty_message")


def test_an_announcement_changes_no_state_but_the_seq():
    before = world()
    _, after = then(announce("admin", "hi"), before)
    assert after.seq == before.seq + 1
    assert after.rooms == before.rooms and after.accounts == before.accounts


def test_a_banned_user_may_join_again_once_the_ban_expired():
    ban = c.BanUser(actor="mod", at=T0, target="bob", duration_seconds=60)
    _, state = then(ban, world())
    join = c.JoinRoom(actor="bob", at=T0 + timedelta(seconds=60), room_name="general")
    assert decide(join, state) == [e.UserJoined(room_id="general", username="bob")]


@pytest.mark.parametrize("text", ["a\x1bb", "\x00", "x\x7f", "\x9b31m"])
def test_messages_with_control_characters_are_refused(text):
    error = rejected(send("bob", text), world(), -32602, "invalid_text")
    assert error.data == {"field": "text"}  # type: ignore[attr-defined]


def test_a_message_of_zero_width_characters_is_empty():
    rejected(send("bob", "\u200b\u200d\ufeff"), world(), -32602, "empty_message")


def test_an_announcement_with_a_control_character_is_refused():
    error = rejected(announce("admin", "up\x1b[2J"), world(), -32602, "invalid_text")
    assert error.data == {"field": "message"}  # type: ignore[attr-defined]
