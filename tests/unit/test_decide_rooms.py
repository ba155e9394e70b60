"""decide: joining and leaving rooms, creating and deleting them."""

from __future__ import annotations

import pytest

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.rules import Limits
from chat_kit import LIMITS, T0, account, given, joined, rejected, room, then, world


def join(actor: str, room_name: str, limits: Limits = LIMITS) -> c.JoinRoom:
    return c.JoinRoom(actor=actor, at=T0, room_name=room_name, limits=limits)


def test_joining_a_missing_room_creates_it_and_joins_it():
    new_events, after = then(join("bob", "Lounge"), world())
    assert new_events == [
        e.RoomCreated(room_id="lounge", room_name="Lounge", created_by="bob"),
        e.UserJoined(room_id="lounge", username="bob"),
    ]
    assert after.rooms["lounge"].room_name == "Lounge"
    assert dict(after.rooms["lounge"].members) == {"bob": "bob"}
    assert "lounge" in after.memberships["bob"]


def test_joining_an_existing_room_in_another_letter_case_joins_that_room():
    new_events, after = then(join("bob", "RANDOM"), world())
    assert new_events == [e.UserJoined(room_id="random", username="bob")]
    assert after.rooms["random"].room_name == "random"


def test_joining_records_the_account_spelling_of_the_username():
    new_events = decide(join("ALICE", "random"), world())
    assert new_events == [e.UserJoined(room_id="random", username="Alice")]


def test_rejoining_a_room_appends_nothing():
    assert decide(join("Alice", "general"), world()) == []
    assert decide(join("alice", "General"), world()) == []


@pytest.mark.parametrize(
    "room_name",
    ["../x", "/etc", "a/b", "_hidden", "-dash", "", "tab\there", "bell\x07", "nl\n", "x y", "é"],
)
def test_joining_refuses_invalid_room_names(room_name):
    rejected(join("bob", room_name), world(), -32602, "invalid_room_name")


def test_room_names_are_limited_to_the_configured_length():
    limits = Limits(max_room_name_length=5)
    assert decide(join("bob", "abcde", limits), world())
    rejected(join("bob", "abcdef", limits), world(), -32602, "invalid_room_name")


def test_joining_a_full_room_is_refused():
    three = Limits(max_users_per_room=3)  # general has 3 members
    rejected(join("carol", "general", three), world(), -32005, "room_full")
    rejected(join("CAROL", "General", three), world(), -32005, "room_full")


def test_a_member_of_a_full_room_may_rejoin_it():
    assert decide(join("bob", "general", Limits(max_users_per_room=3)), world()) == []


def test_an_unlimited_room_takes_any_number_of_members():
    assert decide(join("carol", "general", Limits(max_users_per_room=0)), world())


def test_leaving_records_user_left_with_reason_left():
    leave = c.LeaveRoom(actor="bob", at=T0, room_id="General")
    new_events, after = then(leave, world())
    assert new_events == [e.UserLeft(room_id="general", username="bob", reason="left")]
    assert "bob" not in after.rooms["general"].members
    assert "bob" not in after.memberships


def test_leaving_a_room_one_is_not_in_is_refused():
    leave = c.LeaveRoom(actor="carol", at=T0, room_id="general")
    rejected(leave, world(), -32004, "not_a_member")


def test_leaving_an_unknown_room_is_refused():
    leave = c.LeaveRoom(actor="bob", at=T0, room_id="nowhere")
    rejected(leave, world(), -32003, "room_not_found")


def test_creating_a_room_needs_admin():
    create = c.CreateRoom(actor="bob", at=T0, room_name="new")
    rejected(create, world(), -32002, "insufficient_role")


def test_the_system_creates_configured_rooms_once():
    create = c.CreateRoom(actor="system", at=T0, room_name="Lobby")
    new_events, after = then(create, world())
    assert new_events == [e.RoomCreated(room_id="lobby", room_name="Lobby", created_by="system")]
    assert decide(create, after) == []


def test_deleting_a_room_needs_admin():
    delete = c.DeleteRoom(actor="mod", at=T0, room_id="general")
    rejected(delete, world(), -32002, "insufficient_role")


def test_deleting_a_room_lists_its_members_and_removes_their_membership():
    delete = c.DeleteRoom(actor="admin", at=T0, room_id="General")
    new_events, after = then(delete, world())
    assert new_events == [
        e.RoomDeleted(
            room_id="general", room_name="General", by="admin", members=("Alice", "bob", "mod")
        )
    ]
    assert "general" not in after.rooms
    assert "alice" not in after.memberships
    assert "general" not in after.memberships.get("mod", {})


def test_deleting_an_unknown_room_is_refused():
    delete = c.DeleteRoom(actor="admin", at=T0, room_id="nowhere")
    rejected(delete, world(), -32003, "room_not_found")


def test_a_deleted_room_can_be_created_again_empty():
    state = given(account("bob"), room("r"), *joined("r", "bob"))
    state = given(e.RoomDeleted(room_id="r", room_name="r", by="x", members=("bob",)), state=state)
    new_events, after = then(join("bob", "R"), state)
    assert [type(event) for event in new_events] == [e.RoomCreated, e.UserJoined]
    assert dict(after.rooms["r"].members) == {"bob": "bob"}
