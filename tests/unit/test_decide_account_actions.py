"""decide and evolve: password change and logout by a user; reset, disable, enable and
revoke-all by an admin; the token epoch and the bounded set of revoked jtis."""

from __future__ import annotations

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import authorize
from chat_core.domain.evolve import evolve
from chat_core.domain.rules import DISABLED_HASH
from chat_core.domain.state import token_refused
from chat_core.errors import Unauthenticated
from chat_kit import HASH, T0, at, given, rejected, then, world


def test_a_password_change_records_the_new_hash_and_raises_the_token_epoch():
    state = world()
    new_events, after = then(
        c.ChangePassword(actor="bob", at=T0, old_hash=HASH, password_hash="new"), state
    )
    assert new_events == [e.PasswordSet(username="bob", password_hash="new", by="bob")]
    bob = after.accounts["bob"]
    assert (bob.password_hash, bob.token_epoch) == ("new", 1)
    assert token_refused(after, bob, 0, "any") and not token_refused(after, bob, 1, "any")


def test_a_password_change_loses_to_a_change_made_while_the_old_one_was_checked():
    rejected(
        c.ChangePassword(actor="bob", at=T0, old_hash="stale", password_hash="new"),
        world(),
        -32001,
        "invalid_credentials",
    )


def test_a_logout_revokes_that_jti_only_and_once():
    new_events, after = then(c.Logout(actor="bob", at=T0, jti="j1", expires_at=10**10), world())
    assert new_events == [e.TokenRevoked(username="bob", jti="j1", expires_at=10**10)]
    bob = after.accounts["bob"]
    assert token_refused(after, bob, 0, "j1") and not token_refused(after, bob, 0, "j2")
    again, _ = then(c.Logout(actor="bob", at=T0, jti="j1", expires_at=10**10), after)
    assert again == []


def _revoked(state, jti: str, expires_at: int, seconds: float):
    event = e.TokenRevoked(username="bob", jti=jti, expires_at=expires_at)
    return evolve(state, e.Recorded(seq=state.seq + 1, at=at(seconds), actor="bob", event=event))


def test_revoked_jtis_are_forgotten_after_their_expiry():
    state = world()
    expiry = int(at(60).timestamp())
    for i in range(64):
        state = _revoked(state, f"old{i}", expiry, 0)
    assert len(state.revoked_tokens) <= 64
    # Folded after their expiry (evolve takes the time from the event): the old ones go.
    for i in range(64):
        state = _revoked(state, f"new{i}", expiry + 3600, 120)
    assert not any(jti.startswith("old") for jti in state.revoked_tokens)
    assert len(state.revoked_tokens) == 64


def test_an_admin_resets_a_password_and_the_old_tokens_die():
    new_events, after = then(
        c.ResetPassword(actor="admin", at=T0, target="BOB", password_hash="reset"), world()
    )
    assert new_events == [e.PasswordSet(username="bob", password_hash="reset", by="admin")]
    assert after.accounts["bob"].token_epoch == 1


def test_disable_refuses_the_account_and_enable_restores_its_kept_password():
    new_events, disabled = then(c.DisableUser(actor="admin", at=T0, target="bob"), world())
    assert new_events == [e.AccountDisabled(username="bob", by="admin")]
    assert disabled.accounts["bob"].password_hash == HASH
    try:
        authorize(disabled, "bob", T0)
        raise AssertionError("a disabled account was authorized")
    except Unauthenticated as exc:
        assert exc.reason == "invalid_token"
    assert then(c.DisableUser(actor="admin", at=T0, target="bob"), disabled)[0] == []
    new_events, enabled = then(c.EnableUser(actor="admin", at=T0, target="bob"), disabled)
    assert new_events == [e.AccountEnabled(username="bob", by="admin")]
    assert authorize(enabled, "bob", T0).username == "bob"
    # The tokens the disable revoked stay revoked.
    assert enabled.accounts["bob"].token_epoch == 1


def test_enable_refuses_an_account_the_server_disabled_reset_makes_it_usable():
    state = given(e.PasswordChanged(username="bob", password_hash=DISABLED_HASH), state=world())
    rejected(c.EnableUser(actor="admin", at=T0, target="bob"), state, -32602, "no_password")
    _, after = then(c.ResetPassword(actor="admin", at=T0, target="bob", password_hash="x"), state)
    assert authorize(after, "bob", T0).username == "bob"


def test_revoke_all_raises_the_epoch():
    new_events, after = then(c.RevokeTokens(actor="admin", at=T0, target="carol"), world())
    assert new_events == [e.TokensRevoked(username="carol", by="admin")]
    assert after.accounts["carol"].token_epoch == 1


def test_only_admins_act_and_only_on_lower_roles_never_on_themselves():
    state = given(
        e.AccountRegistered(username="root2", password_hash=HASH, role="admin"), state=world()
    )
    for make in (
        lambda actor, target: c.DisableUser(actor=actor, at=T0, target=target),
        lambda actor, target: c.EnableUser(actor=actor, at=T0, target=target),
        lambda actor, target: c.RevokeTokens(actor=actor, at=T0, target=target),
        lambda actor, target: c.ResetPassword(
            actor=actor, at=T0, target=target, password_hash=HASH
        ),
    ):
        rejected(make("mod", "bob"), state, -32002, "insufficient_role")
        rejected(make("admin", "admin"), state, -32002, "cannot_target_self")
        rejected(make("admin", "root2"), state, -32002, "cannot_moderate_peer")
        rejected(make("admin", "ghost"), state, -32003, "user_not_found")
