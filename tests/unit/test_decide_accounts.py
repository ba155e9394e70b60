"""decide: registration, configured accounts, and actors whose account is gone."""

from __future__ import annotations

import pytest

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import authorize, decide
from chat_core.domain.rules import DISABLED_HASH
from chat_core.domain.state import initial_state
from chat_core.errors import Unauthenticated
from chat_core.passwords import verify_password
from chat_kit import HASH, T0, account, given, rejected, then, world


def register(username: str, state_hash: str = HASH) -> c.RegisterAccount:
    return c.RegisterAccount(actor=username, at=T0, username=username, password_hash=state_hash)


def ensure(username: str, role: str = "user", password_hash: str | None = HASH, actor="system"):
    return c.EnsureAccount(
        actor=actor,
        at=T0,
        username=username,
        role=role,  # type: ignore[arg-type]
        password_hash=password_hash,
    )


def test_registration_records_the_account_with_the_user_role():
    new_events, after = then(register("Zoe_1.x"), initial_state())
    assert new_events == [e.AccountRegistered(username="Zoe_1.x", password_hash=HASH)]
    assert after.accounts["zoe_1.x"].role == "user"
    assert after.accounts["zoe_1.x"].username == "Zoe_1.x"


@pytest.mark.parametrize(
    "username",
    ["ab", "x" * 33, "has space", "semi;colon", "new\nline", "bob\n", "ümlaut", "", "a/b"],
)
def test_registration_refuses_invalid_usernames(username):
    rejected(register(username), initial_state(), -32602, "invalid_username")


def test_registration_accepts_names_of_3_and_32_characters():
    assert decide(register("abc"), initial_state())
    assert decide(register("y" * 32), initial_state())


@pytest.mark.parametrize("username", ["system", "System", "SYSTEM"])
def test_registration_refuses_the_reserved_system_name(username):
    rejected(register(username), initial_state(), -32602, "invalid_username")


@pytest.mark.parametrize("username", ["alice", "ALICE", "Alice"])
def test_registration_refuses_a_name_taken_in_any_letter_case(username):
    rejected(register(username), given(account("Alice")), -32009, "username_taken")


def test_ensure_account_is_only_for_the_system_actor():
    rejected(ensure("newbie", actor="admin"), world(), -32002, "insufficient_role")


def test_ensure_account_creates_a_missing_account_with_its_role():
    new_events, after = then(ensure("root", "admin"), initial_state())
    assert new_events == [e.AccountRegistered(username="root", password_hash=HASH, role="admin")]
    assert after.accounts["root"].role == "admin"


def test_ensure_account_needs_a_password_for_a_new_account():
    rejected(ensure("root", "admin", password_hash=None), initial_state(), -32602, "invalid_params")


def test_ensure_account_refuses_the_reserved_name():
    rejected(ensure("system", "admin"), initial_state(), -32602, "invalid_username")


def test_ensure_account_changes_the_role_and_records_the_previous_one():
    new_events, after = then(ensure("bob", "moderator"), world())
    assert new_events == [
        e.RoleChanged(username="bob", role="moderator", by="system", previous="user")
    ]
    assert after.accounts["bob"].role == "moderator"


def test_ensure_account_changes_the_password():
    new_events, after = then(ensure("BOB", "user", password_hash="new-hash"), world())
    assert new_events == [e.PasswordChanged(username="bob", password_hash="new-hash")]
    assert after.accounts["bob"].password_hash == "new-hash"


def test_ensure_account_changes_role_and_password_at_once():
    new_events = decide(ensure("bob", "admin", password_hash="new-hash"), world())
    assert [type(event) for event in new_events] == [e.RoleChanged, e.PasswordChanged]


@pytest.mark.parametrize("password_hash", [HASH, None])
def test_ensure_account_of_an_unchanged_account_appends_nothing(password_hash):
    assert decide(ensure("bob", "user", password_hash=password_hash), world()) == []


@pytest.mark.parametrize(
    "command",
    [
        c.JoinRoom(actor="gone", at=T0, room_name="general"),
        c.SendMessage(actor="gone", at=T0, room_id="general", text="hi"),
        c.LeaveRoom(actor="gone", at=T0, room_id="general"),
        c.KickUser(actor="gone", at=T0, target="bob"),
        c.DeleteRoom(actor="gone", at=T0, room_id="general"),
    ],
)
def test_an_actor_without_an_account_is_unauthenticated(command):
    rejected(command, world(), -32001, "invalid_token")


def rehash(username: str, old: str, new: str, actor: str = "system") -> c.RehashPassword:
    return c.RehashPassword(actor=actor, at=T0, username=username, old_hash=old, password_hash=new)


def test_a_rehash_replaces_the_hash_it_was_made_from():
    state = given(account("bob"))
    new_events, after = then(rehash("BOB", HASH, "$2b$12$new"), state)
    assert new_events == [e.PasswordChanged(username="bob", password_hash="$2b$12$new")]
    assert after.accounts["bob"].password_hash == "$2b$12$new"


def test_a_rehash_loses_to_a_password_changed_meanwhile_and_to_a_missing_account():
    state = given(account("bob"), e.PasswordChanged(username="bob", password_hash="changed"))
    assert then(rehash("bob", HASH, "$2b$12$new"), state)[0] == []
    assert then(rehash("nobody", HASH, "$2b$12$new"), state)[0] == []


def test_only_the_server_rehashes():
    rejected(
        rehash("bob", HASH, "x", actor="bob"), given(account("bob")), -32002, "insufficient_role"
    )


def named(display_name: str) -> c.RegisterAccount:
    return c.RegisterAccount(
        actor="zoe", at=T0, username="zoe", password_hash=HASH, display_name=display_name
    )


@pytest.mark.parametrize("display_name", ["Z", "Zoë 🦊 the\tfox", "z" * 64])
def test_a_display_name_of_1_to_64_shown_characters_is_recorded(display_name):
    new_events, after = then(named(display_name), initial_state())
    assert new_events[0] == e.AccountRegistered(
        username="zoe", password_hash=HASH, display_name=display_name
    )
    assert after.accounts["zoe"].display_name == display_name


@pytest.mark.parametrize(
    ("display_name", "reason"),
    [
        ("", "empty_message"),
        ("\u200b\u2060", "empty_message"),
        ("z" * 65, "message_too_long"),
        ("<admin>\x1b[2K", "invalid_text"),
        ("zoe\x85", "invalid_text"),
    ],
)
def test_a_bad_display_name_is_refused_with_its_field(display_name, reason):
    error = rejected(named(display_name), initial_state(), -32602, reason)
    assert error.data == {"field": "display_name"}  # type: ignore[attr-defined]


def disable(username: str, actor: str = "system") -> c.DisableAccount:
    return c.DisableAccount(actor=actor, at=T0, username=username)


def test_disabling_an_account_records_an_unusable_password_hash():
    new_events, after = then(disable("BOB"), world())
    assert new_events == [e.PasswordChanged(username="bob", password_hash=DISABLED_HASH)]
    assert not verify_password("bob123", after.accounts["bob"].password_hash)
    # Once disabled, again is nothing to record.
    assert decide(disable("bob"), after) == []


def test_a_disabled_account_is_refused_on_every_command_like_a_revoked_token():
    _, after = then(disable("bob"), world())
    join = c.JoinRoom(actor="bob", at=T0, room_name="general")
    rejected(join, after, -32001, "invalid_token")
    with pytest.raises(Unauthenticated):
        authorize(after, "bob", T0)


def test_only_the_server_disables_an_existing_account():
    rejected(disable("bob", actor="admin"), world(), -32002, "insufficient_role")
    rejected(disable("nobody"), world(), -32003, "user_not_found")


def test_configuring_the_account_again_gives_it_a_usable_hash():
    _, after = then(disable("bob"), world())
    new_events, again = then(ensure("bob", password_hash=HASH), after)
    assert new_events == [e.PasswordChanged(username="bob", password_hash=HASH)]
    assert authorize(again, "bob", T0).username == "bob"
