"""Tokens: HS256 only, exact claims, expiry against an explicit clock."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from chat_core.errors import Unauthenticated
from chat_web.tokens import Claims, issue_token, verify_token

SECRET = "k" * 32
OTHER_SECRET = "o" * 32
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TTL = 3600


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    issued_at = int(NOW.timestamp())
    base: dict[str, Any] = {"sub": "alice", "role": "user", "iat": issued_at, "jti": "j1"}
    base["exp"] = issued_at + TTL
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def assert_refused(token: str, reason: str = "invalid_token", now: datetime = NOW) -> None:
    with pytest.raises(Unauthenticated) as caught:
        verify_token(SECRET, token, now=now)
    assert caught.value.reason == reason


def test_issued_token_verifies_with_its_claims() -> None:
    token, expires_at = issue_token(SECRET, "alice", "moderator", NOW, TTL)
    got = verify_token(SECRET, token, now=NOW)
    assert isinstance(got, Claims)
    assert (got.sub, got.role) == ("alice", "moderator")
    assert got.iat == int(NOW.timestamp())
    assert got.exp == expires_at == got.iat + TTL
    assert len(got.jti) == 32


def test_each_token_has_its_own_jti() -> None:
    first, _ = issue_token(SECRET, "alice", "user", NOW, TTL)
    second, _ = issue_token(SECRET, "alice", "user", NOW, TTL)
    assert verify_token(SECRET, first, NOW).jti != verify_token(SECRET, second, NOW).jti


def test_token_header_says_hs256() -> None:
    token, _ = issue_token(SECRET, "alice", "user", NOW, TTL)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_token_is_valid_until_just_before_exp() -> None:
    token, expires_at = issue_token(SECRET, "alice", "user", NOW, TTL)
    verify_token(SECRET, token, now=NOW + timedelta(seconds=TTL - 1))
    assert_refused(token, "token_expired", now=datetime.fromtimestamp(expires_at, UTC))


def test_expired_token_rejected_as_expired() -> None:
    token, _ = issue_token(SECRET, "alice", "user", NOW - timedelta(days=2), TTL)
    assert_refused(token, "token_expired")


def test_verify_defaults_to_the_wall_clock() -> None:
    token, _ = issue_token(SECRET, "alice", "user", datetime.now(UTC), TTL)
    assert verify_token(SECRET, token).sub == "alice"
    old, _ = issue_token(SECRET, "alice", "user", NOW, TTL)
    with pytest.raises(Unauthenticated, match="expired"):
        verify_token(SECRET, old)


def test_alg_none_token_rejected() -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    assert_refused(token)


def test_other_hmac_algorithm_rejected() -> None:
    # Same key, stronger algorithm: still refused, only HS256 is accepted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = sign(claims(), algorithm="HS512")
    assert_refused(token)


def test_token_signed_with_another_key_rejected() -> None:
    assert_refused(sign(claims(), key=OTHER_SECRET))


def test_tampered_payload_rejected() -> None:
    token, _ = issue_token(SECRET, "alice", "user", NOW, TTL)
    header, _, signature = token.split(".")
    forged = f"{header}.{b64(claims(role='admin'))}.{signature}"
    assert_refused(forged)


def test_expired_and_tampered_token_is_invalid_not_expired() -> None:
    token = sign(claims(exp=int(NOW.timestamp()) - 10), key=OTHER_SECRET)
    assert_refused(token, "invalid_token")


@pytest.mark.parametrize("missing", ["sub", "role", "iat", "exp", "jti"])
def test_token_missing_a_claim_rejected(missing: str) -> None:
    assert_refused(sign(claims(**{missing: None})))


@pytest.mark.parametrize(
    "changes",
    [{"sub": ""}, {"exp": "tomorrow"}, {"iat": 1.5}, {"role": 1}, {"jti": 7}],
)
def test_token_with_malformed_claims_rejected(changes: dict[str, Any]) -> None:
    assert_refused(sign(claims(**changes)))


def test_token_not_valid_before_a_future_nbf() -> None:
    future = int(NOW.timestamp()) + 60
    assert_refused(sign(claims(nbf=future)))
    assert verify_token(SECRET, sign(claims(nbf=future)), NOW + timedelta(seconds=61)).sub


def test_token_issued_in_the_future_rejected() -> None:
    assert_refused(sign(claims(iat=int(NOW.timestamp()) + 60)))


def test_token_with_an_audience_rejected() -> None:
    assert_refused(sign(claims(aud="someone-else")))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "💥.💥.💥"])
def test_garbage_rejected(garbage: str) -> None:
    assert_refused(garbage)


def test_failure_keeps_the_pyjwt_cause() -> None:
    with pytest.raises(Unauthenticated) as caught:
        verify_token(SECRET, sign(claims(), key=OTHER_SECRET), NOW)
    assert isinstance(caught.value.__cause__, jwt.InvalidSignatureError)


def test_short_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        issue_token("short", "alice", "user", NOW, TTL)
    with pytest.raises(ValueError, match="32 bytes"):
        verify_token("short", "a.b.c", NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        naive = datetime(2025, 1, 1)  # noqa: DTZ001 (naive on purpose)
        issue_token(SECRET, "alice", "user", naive, TTL)
