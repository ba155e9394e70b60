"""Laws of the pure core: decide is deterministic and pure, evolve never mutates its input,
and the two views of who receives a notification (live fan-out, resume) agree."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from chat_core.domain import events as e
from chat_core.domain.audience import UserView, audience
from chat_core.domain.decider import decide
from chat_core.domain.evolve import evolve
from chat_core.domain.rules import user_key
from chat_core.errors import ChatError
from chat_kit import COMMANDS, NEWCOMERS, USERS, run_pure, timed

SEQUENCES = st.lists(COMMANDS, min_size=10, max_size=50)


def _outcome(command, state):
    try:
        return ("events", decide(command, state))
    except ChatError as error:
        return ("rejected", type(error), error.code, error.reason)


@settings(max_examples=60)
@given(commands=SEQUENCES)
def test_decide_is_deterministic_and_does_not_mutate_its_state(commands):
    records, befores, final = run_pure(timed(commands))
    states = [*befores, final]
    for command in timed(commands):
        for state in states[:: max(1, len(states) // 6)]:
            snapshot = copy.deepcopy(state)
            first = _outcome(command, state)
            assert _outcome(command, state) == first
            assert _outcome(command, snapshot) == first
            assert state == snapshot
    assert len(records) == final.seq


@settings(max_examples=60)
@given(commands=SEQUENCES)
def test_evolve_never_mutates_its_input(commands):
    records, befores, _ = run_pure(timed(commands))
    for recorded, before in zip(records, befores, strict=True):
        snapshot = copy.deepcopy(before)
        after = evolve(before, recorded)
        assert before == snapshot
        assert after.seq == recorded.seq
        # Folding the same event into the same state again gives the same state.
        assert evolve(snapshot, recorded) == after


def _live(records, befores, username, after):
    """The seqs a connection of `username`, open since `after`, got from the live fan-out."""
    key = user_key(username)
    got = set()
    for recorded, before in zip(records[after:], befores[after:], strict=True):
        receivers = audience(recorded, before)
        if (receivers.everyone and key in before.accounts) or key in set(receivers.users):
            got.add(recorded.seq)
    return got


def _resumed(records, final, username, after):
    """The seqs a resume from `after` selects by walking back from the final state."""
    view = UserView.now(final, username)
    later = records[after:]
    view.rewind(later)
    return {recorded.seq for recorded in later if view.receives(recorded)}


@settings(max_examples=150, deadline=None)
@given(commands=SEQUENCES)
def test_resume_from_any_seq_delivers_what_a_live_connection_got(commands):
    records, befores, final = run_pure(timed(commands))
    for username in (*USERS, *NEWCOMERS, "ghost"):
        for after in range(len(records) + 1):
            live = _live(records, befores, username, after)
            assert _resumed(records, final, username, after) == live, (username, after)


def test_the_audience_law_sees_room_events_of_a_member():
    # A fixed run, so the law above is known not to hold vacuously.
    from chat_core.domain import commands as c
    from chat_kit import T0

    commands = [
        c.JoinRoom(actor="bob", at=T0, room_name="Lounge"),
        c.SendMessage(actor="bob", at=T0, room_id="lounge", text="hi"),
    ]
    records, befores, final = run_pure(timed(commands))
    sent = next(r.seq for r in records if isinstance(r.event, e.MessageSent))
    assert sent in _live(records, befores, "bob", 0)
    assert sent in _resumed(records, final, "bob", 0)
    assert sent not in _resumed(records, final, "carol", 0)
