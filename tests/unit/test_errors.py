"""The error table: each class carries the JSON-RPC code and reason of docs/protocol.md 3."""

from __future__ import annotations

import pytest

from chat_core import errors
from chat_core.errors import (
    Banned,
    ChatError,
    CorruptJournal,
    Forbidden,
    InternalError,
    InvalidParams,
    JournalConflict,
    JournalError,
    NotAMember,
    NotFound,
    RateLimited,
    Rejected,
    RoomFull,
    Unauthenticated,
    UnsupportedJournal,
    UsernameTaken,
)

PINNED = {
    InvalidParams: (-32602, "invalid_params"),
    Forbidden: (-32002, "insufficient_role"),
    NotFound: (-32003, "not_found"),
    NotAMember: (-32004, "not_a_member"),
    RoomFull: (-32005, "room_full"),
    Banned: (-32006, "banned"),
    UsernameTaken: (-32009, "username_taken"),
    RateLimited: (-32029, "rate_limited"),
    Unauthenticated: (-32001, "token_expired"),
    InternalError: (-32603, "internal_error"),
}


def test_the_error_code_table_is_pinned():
    assert {cls: code for cls, (code, _) in PINNED.items()} == errors.ERROR_CODES


@pytest.mark.parametrize(
    ("cls", "pinned"), PINNED.items(), ids=lambda v: getattr(v, "__name__", "")
)
def test_each_error_carries_its_code_and_default_reason(cls, pinned):
    error = cls("boom")
    assert (error.code, error.reason) == pinned


def test_the_json_rpc_codes_not_tied_to_a_rejection_are_pinned():
    assert (errors.PARSE_ERROR, errors.INVALID_REQUEST, errors.METHOD_NOT_FOUND) == (
        -32700,
        -32600,
        -32601,
    )


def test_error_object_has_code_message_and_reason_with_extra_data():
    error = RateLimited("slow down", retry_after_ms=250)
    assert error.error_object() == {
        "code": -32029,
        "message": "slow down",
        "data": {"reason": "rate_limited", "retry_after_ms": 250},
    }


def test_an_explicit_reason_replaces_the_default():
    assert Forbidden("no", "cannot_target_self").error_object()["data"] == {
        "reason": "cannot_target_self"
    }


def test_the_tree_has_one_root_and_rejections_are_separate_from_journal_errors():
    for cls in PINNED:
        assert issubclass(cls, ChatError)
    for cls in (InvalidParams, Forbidden, NotFound, NotAMember, RoomFull, Banned, UsernameTaken):
        assert issubclass(cls, Rejected)
    for cls in (JournalConflict, CorruptJournal, UnsupportedJournal):
        assert issubclass(cls, JournalError)
        assert not issubclass(cls, Rejected)
    assert not issubclass(Unauthenticated, Rejected)


def test_corrupt_journal_carries_the_seq_in_one_line():
    error = CorruptJournal(17, "bad json")
    assert error.seq == 17
    assert "seq=17" in str(error)
    assert "\n" not in str(error)
