"""evolve: the projection of each event; bounded history; total on any event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given as hgiven
from hypothesis import strategies as st

from chat_core.domain import events as e
from chat_core.domain.evolve import evolve, fold
from chat_core.domain.state import current_room_of, initial_state, is_member, rooms_of
from chat_kit import T0, account, given, joined, record_all, room, world


def message(message_id: int, room_id: str = "general", username: str = "bob") -> e.MessageSent:
    return e.MessageSent(message_id=message_id, room_id=room_id, username=username, text="m")


def test_every_event_moves_the_state_seq_to_its_position():
    state = world()
    recorded = e.Recorded(
        seq=99,
        at=T0,
        actor="x",
        event=e.AnnouncementBroadcast(message="m", level="info", by="admin"),
    )
    assert evolve(state, recorded).seq == 99


@pytest.mark.parametrize("window", [1, 2, 5])
def test_a_room_keeps_only_the_last_history_window_messages(window):
    state = given(account("bob"), room("general"), *joined("general", "bob"), history_window=window)
    _, after = record_all(state, [message(i) for i in range(1, 9)])
    recent = after.rooms["general"].recent
    assert [m.message_id for m in recent] == list(range(9 - window, 9))
    assert after.rooms["general"].message_count == 8


def test_a_message_keeps_its_seq_time_and_client_id():
    state = world()
    event = e.MessageSent(
        message_id=5, room_id="general", username="bob", text="hi", client_msg_id="c"
    )
    when = T0 + timedelta(minutes=3)
    after = evolve(state, e.Recorded(seq=state.seq + 1, at=when, actor="bob", event=event))
    kept = after.rooms["general"].recent[-1]
    assert (kept.seq, kept.message_id, kept.timestamp, kept.client_msg_id) == (
        state.seq + 1,
        5,
        when,
        "c",
    )


def test_the_last_message_id_never_goes_back():
    _, after = record_all(world(), [message(10), message(3)])
    assert after.last_message_id == 10


def test_a_message_to_a_missing_room_still_reserves_its_id():
    _, after = record_all(world(), [message(4, room_id="gone")])
    assert after.last_message_id == 4
    assert "gone" not in after.rooms


def test_the_current_room_is_the_most_recently_joined_one():
    state = given(*joined("random", "bob"), state=world())
    assert current_room_of(state, "bob") == "random"
    state = given(e.UserLeft(room_id="random", username="bob"), state=state)
    assert current_room_of(state, "bob") == "general"


def test_a_ban_and_its_removals_leave_the_user_in_no_room():
    state = given(
        e.UserBanned(username="bob", rooms=("general",), reason=None, by="mod", until=None),
        e.UserLeft(room_id="general", username="bob", reason="banned"),
        state=world(),
    )
    assert rooms_of(state, "bob") == []
    assert "bob" in state.bans
    state = given(e.UserUnbanned(username="bob", by="mod"), state=state)
    assert "bob" not in state.bans


def test_a_repeated_room_created_keeps_the_first_room():
    state = given(room("General", created_by="admin"), room("GENERAL", created_by="bob"))
    assert state.rooms["general"].created_by == "admin"
    assert state.seq == 2


ABOUT_MISSING = [
    e.UserJoined(room_id="nowhere", username="nobody"),
    e.UserLeft(room_id="nowhere", username="nobody"),
    e.UserLeft(room_id="general", username="nobody", reason="kicked"),
    e.MessageSent(message_id=1, room_id="nowhere", username="nobody", text="x"),
    e.RoomDeleted(room_id="nowhere", room_name="nowhere", by="nobody"),
    e.RoleChanged(username="nobody", role="admin", by="x"),
    e.PasswordChanged(username="nobody", password_hash="h"),
    e.UserKicked(username="nobody", room_id="nowhere", rooms=("nowhere",), reason=None, by="x"),
    e.UserBanned(username="nobody", rooms=("nowhere",), reason=None, by="x", until=None),
    e.UserUnbanned(username="nobody", by="x"),
]


@pytest.mark.parametrize("event", ABOUT_MISSING, ids=lambda ev: e.tag_of(ev))
def test_evolve_is_total_on_events_about_missing_rooms_and_users(event):
    for state in (initial_state(), world()):
        after = evolve(state, e.Recorded(seq=state.seq + 1, at=T0, actor="x", event=event))
        assert after.seq == state.seq + 1
        assert "nobody" not in after.accounts


def test_a_join_to_a_missing_room_creates_no_membership():
    after = given(e.UserJoined(room_id="nowhere", username="bob"), state=world())
    assert not is_member(after, "bob", "nowhere")
    assert "nowhere" not in after.rooms


@hgiven(st.lists(st.sampled_from(ABOUT_MISSING), max_size=20))
def test_evolve_never_raises_on_any_sequence_of_such_events(events):
    records = [e.Recorded(seq=i + 1, at=T0, actor="x", event=ev) for i, ev in enumerate(events)]
    assert fold(initial_state(), records).seq == len(events)


def test_a_history_window_of_zero_keeps_no_messages_but_counts_them():
    # chat.history_on_join may be 0 (NonNegativeInt): join_room then returns no history.
    state = given(account("bob"), room("general"), *joined("general", "bob"), history_window=0)
    _, after = record_all(state, [message(1), message(2)])
    assert after.rooms["general"].recent == ()
    assert after.rooms["general"].message_count == 2
    assert after.last_message_id == 2
