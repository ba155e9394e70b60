"""Password hashing: bcrypt behind a SHA-256 pre-hash, length rule, constant-ish failures."""

from __future__ import annotations

import pytest

from chat_core.errors import InvalidParams
from chat_core.passwords import (
    dummy_hash,
    dummy_verify,
    hash_password,
    validate_password,
    verify_password,
)

ROUNDS = 4


def test_hash_verifies_the_right_password_only() -> None:
    hashed = hash_password("correct horse", ROUNDS)
    assert hashed.startswith("$2b$04$")
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct horsf", hashed)


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password("password1", ROUNDS) != hash_password("password1", ROUNDS)


def test_long_passwords_sharing_72_bytes_differ() -> None:
    prefix = "x" * 72
    hashed = hash_password(prefix + "a", ROUNDS)
    assert verify_password(prefix + "a", hashed)
    assert not verify_password(prefix + "b", hashed)
    assert not verify_password(prefix, hashed)


def test_password_longer_than_72_bytes_is_accepted() -> None:
    password = "é" * 128  # 256 UTF-8 bytes
    assert verify_password(password, hash_password(password, ROUNDS))


def test_non_ascii_passwords_round_trip() -> None:
    hashed = hash_password("пароль-密码-🔑", ROUNDS)
    assert verify_password("пароль-密码-🔑", hashed)
    assert not verify_password("пароль-密码-🔒", hashed)


def test_password_with_nul_bytes_is_not_cut_short() -> None:
    hashed = hash_password("abc\x00def", ROUNDS)
    assert not verify_password("abc\x00xyz", hashed)


@pytest.mark.parametrize("malformed", ["", "not a hash", "$2b$04$short", "$2b$04$" + "é" * 53])
def test_malformed_hash_verifies_false(malformed: str) -> None:
    assert verify_password("whatever", malformed) is False


def test_dummy_verify_is_always_false_and_hash_is_cached() -> None:
    assert dummy_verify("admin123", ROUNDS) is False
    assert dummy_hash(ROUNDS) is dummy_hash(ROUNDS)
    assert dummy_hash(ROUNDS).startswith("$2b$04$")


@pytest.mark.parametrize("password", ["12345678", "x" * 128, "ñ" * 8])
def test_password_of_8_to_128_characters_is_valid(password: str) -> None:
    validate_password(password)


@pytest.mark.parametrize("password", ["", "1234567", "x" * 129])
def test_weak_password_is_refused(password: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        validate_password(password)
    assert caught.value.reason == "weak_password"
