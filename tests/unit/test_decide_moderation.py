"""decide: kicks, bans, unbans and role changes: the role hierarchy and its edges."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.rules import with_article
from chat_core.domain.state import active_ban, rooms_of
from chat_core.errors import Forbidden
from chat_kit import T0, given, joined, rejected, then, world


def kick(actor: str, target: str, room_id: str | None = None, reason: str | None = None):
    return c.KickUser(actor=actor, at=T0, target=target, room_id=room_id, reason=reason)


def ban(actor: str, target: str, duration: int | None = None, when=T0, reason=None):
    return c.BanUser(actor=actor, at=when, target=target, duration_seconds=duration, reason=reason)


def unban(actor: str, target: str, when=T0) -> c.UnbanUser:
    return c.UnbanUser(actor=actor, at=when, target=target)


def set_role(actor: str, target: str, role: str) -> c.SetRole:
    return c.SetRole(actor=actor, at=T0, target=target, role=role)


# --- kick -----------------------------------------------------------------------------------


def test_a_user_cannot_kick():
    rejected(kick("Alice", "bob"), world(), -32002, "insufficient_role")


@pytest.mark.parametrize("target", ["mod2", "admin"])
def test_a_moderator_cannot_kick_a_moderator_or_an_admin(target):
    rejected(kick("mod", target), world(), -32002, "cannot_moderate_peer")


def test_an_admin_can_kick_a_moderator():
    new_events = decide(kick("admin", "mod", "general"), world())
    assert new_events[-1] == e.UserLeft(room_id="general", username="mod", reason="kicked")


@pytest.mark.parametrize("actor", ["mod", "admin"])
def test_nobody_can_kick_themselves(actor):
    rejected(kick(actor, actor.upper()), world(), -32002, "cannot_target_self")


def test_kicking_an_unknown_user_is_refused():
    rejected(kick("mod", "ghost"), world(), -32003, "user_not_found")


def test_kicking_from_an_unknown_room_is_refused():
    rejected(kick("mod", "bob", "nowhere"), world(), -32003, "room_not_found")


def test_a_room_kick_of_a_non_member_is_refused():
    rejected(kick("mod", "carol", "general"), world(), -32004, "not_a_member")


def test_a_room_kick_removes_the_target_from_that_room_only():
    state = given(*joined("random", "bob"), state=world())
    new_events, after = then(kick("mod", "BOB", "General", "spam"), state)
    assert new_events == [
        e.UserKicked(
            username="bob", room_id="general", rooms=("general",), reason="spam", by="mod"
        ),
        e.UserLeft(room_id="general", username="bob", reason="kicked"),
    ]
    assert rooms_of(after, "bob") == ["random"]


def test_a_chat_wide_kick_emits_user_kicked_and_user_left_per_room():
    state = given(*joined("random", "bob"), state=world())
    new_events, after = then(kick("mod", "bob"), state)
    assert new_events == [
        e.UserKicked(
            username="bob", room_id=None, rooms=("general", "random"), reason=None, by="mod"
        ),
        e.UserLeft(room_id="general", username="bob", reason="kicked"),
        e.UserLeft(room_id="random", username="bob", reason="kicked"),
    ]
    assert rooms_of(after, "bob") == []
    assert "bob" in after.accounts  # a kick is not a ban: the user may come back


# --- ban and unban --------------------------------------------------------------------------


def test_a_ban_with_a_duration_records_its_end_and_removes_the_user_from_every_room():
    state = given(*joined("random", "bob"), state=world())
    new_events, after = then(ban("mod", "bob", 90, reason="flood"), state)
    until = T0 + timedelta(seconds=90)
    assert new_events == [
        e.UserBanned(
            username="bob", rooms=("general", "random"), reason="flood", by="mod", until=until
        ),
        e.UserLeft(room_id="general", username="bob", reason="banned"),
        e.UserLeft(room_id="random", username="bob", reason="banned"),
    ]
    assert rooms_of(after, "bob") == []
    assert active_ban(after, "bob", T0) is not None


def test_a_ban_without_a_duration_lasts_for_ever():
    new_events, after = then(ban("mod", "carol"), world())
    assert new_events[0].until is None  # type: ignore[union-attr]
    assert active_ban(after, "carol", T0 + timedelta(days=10_000)) is not None


@pytest.mark.parametrize("duration", [0, -5])
def test_a_ban_duration_must_be_positive(duration):
    rejected(ban("mod", "bob", duration), world(), -32602, "invalid_params")


def test_a_user_cannot_ban():
    rejected(ban("bob", "carol"), world(), -32002, "insufficient_role")


def test_a_moderator_cannot_ban_a_moderator():
    rejected(ban("mod", "mod2"), world(), -32002, "cannot_moderate_peer")


def test_nobody_can_ban_themselves():
    rejected(ban("admin", "admin"), world(), -32002, "cannot_target_self")


def test_banning_an_unknown_user_is_refused():
    rejected(ban("mod", "ghost"), world(), -32003, "user_not_found")


@pytest.mark.parametrize(
    "command",
    [
        c.JoinRoom(actor="bob", at=T0, room_name="random"),
        c.JoinRoom(actor="bob", at=T0, room_name="brand-new"),
        c.LeaveRoom(actor="bob", at=T0, room_id="general"),
        c.SendMessage(actor="bob", at=T0, room_id="general", text="hi"),
        c.KickUser(actor="bob", at=T0, target="carol"),
        c.BanUser(actor="bob", at=T0, target="carol"),
        c.UnbanUser(actor="bob", at=T0, target="carol"),
        c.SetRole(actor="bob", at=T0, target="carol", role="user"),
        c.BroadcastAnnouncement(actor="bob", at=T0, message="hi"),
        c.DeleteRoom(actor="bob", at=T0, room_id="general"),
    ],
)
def test_a_banned_actor_is_refused_on_every_command(command):
    state = world()
    _, state = then(ban("admin", "bob"), state)
    rejected(command, state, -32006, "banned")


def test_a_banned_moderator_cannot_moderate():
    _, state = then(ban("admin", "mod"), world())
    rejected(kick("mod", "bob"), state, -32006, "banned")


def test_a_ban_expires_at_its_end_without_an_event():
    _, state = then(ban("mod", "bob", 60), world())
    join = c.JoinRoom(actor="bob", at=T0 + timedelta(seconds=59), room_name="random")
    rejected(join, state, -32006, "banned")
    join = c.JoinRoom(actor="bob", at=T0 + timedelta(seconds=60), room_name="random")
    assert decide(join, state) == [e.UserJoined(room_id="random", username="bob")]


def test_unbanning_lifts_the_ban():
    _, state = then(ban("mod", "bob"), world())
    new_events, after = then(unban("mod", "Bob"), state)
    assert new_events == [e.UserUnbanned(username="bob", by="mod")]
    assert active_ban(after, "bob", T0) is None
    assert decide(c.JoinRoom(actor="bob", at=T0, room_name="general"), after)


def test_unbanning_a_user_who_is_not_banned_appends_nothing():
    assert decide(unban("mod", "bob"), world()) == []


def test_unbanning_after_the_ban_expired_appends_nothing():
    _, state = then(ban("mod", "bob", 10), world())
    assert decide(unban("mod", "bob", when=T0 + timedelta(seconds=10)), state) == []


def test_a_user_cannot_unban():
    _, state = then(ban("mod", "bob"), world())
    rejected(unban("carol", "bob"), state, -32002, "insufficient_role")


def test_unbanning_an_unknown_user_is_refused():
    rejected(unban("mod", "ghost"), world(), -32003, "user_not_found")


# --- set_role -------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["mod", "bob"])
def test_only_admins_set_roles(actor):
    rejected(set_role(actor, "carol", "moderator"), world(), -32002, "insufficient_role")


def test_an_admin_promotes_a_user_and_records_the_previous_role():
    new_events, after = then(set_role("admin", "CAROL", "moderator"), world())
    assert new_events == [
        e.RoleChanged(username="carol", role="moderator", by="admin", previous="user")
    ]
    assert after.accounts["carol"].role == "moderator"


def test_an_admin_may_change_another_admin():
    state = given(*[], state=then(set_role("admin", "bob", "admin"), world())[1])
    new_events = decide(set_role("bob", "admin", "user"), state)
    assert new_events == [e.RoleChanged(username="admin", role="user", by="bob", previous="admin")]


def test_an_admin_cannot_change_their_own_role():
    rejected(set_role("admin", "admin", "user"), world(), -32002, "cannot_target_self")


def test_setting_the_role_a_user_has_appends_nothing():
    assert decide(set_role("admin", "mod", "moderator"), world()) == []


def test_setting_an_unknown_role_is_refused():
    rejected(set_role("admin", "bob", "root"), world(), -32602, "invalid_params")


def test_setting_the_role_of_an_unknown_user_is_refused():
    rejected(set_role("admin", "ghost", "user"), world(), -32003, "user_not_found")


def test_a_demoted_moderator_loses_moderation_rights_at_once():
    _, state = then(set_role("admin", "mod", "user"), world())
    rejected(kick("mod", "bob"), state, -32002, "insufficient_role")


def test_kick_and_ban_reasons_with_control_characters_are_refused():
    for command in (kick("mod", "bob", reason="bye\x1b[2K"), ban("mod", "bob", reason="\x07")):
        error = rejected(command, world(), -32602, "invalid_text")
        assert error.data == {"field": "reason"}  # type: ignore[attr-defined]


def test_a_reason_may_be_blank_or_hold_newlines():
    assert decide(kick("mod", "bob", reason=""), world())
    assert decide(ban("mod", "bob", reason="spam\n\tagain"), world())


def test_refusals_name_roles_with_the_right_article() -> None:
    with pytest.raises(Forbidden, match=r"^a moderator cannot act on an admin$"):
        decide(kick("mod", "admin"), world())
    assert with_article("admin") == "an admin"
    assert with_article("moderator") == "a moderator"
    assert with_article("user") == "a user"
