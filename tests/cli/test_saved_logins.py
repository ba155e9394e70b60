"""Saved logins: several per server, keyed by user; the last login is the default."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chat_cli import auth, config_store
from chat_cli.config_store import Credential

SERVER = "http://127.0.0.1:3000"


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("CHAT_SERVER_URL", raising=False)
    return tmp_path


def credential(username: str, token: str = "t", server: str = SERVER) -> Credential:
    return Credential(
        server=server,
        username=username,
        token=f"{token}-{username}",
        expires_at=int(time.time()) + 3600,
    )


def test_a_second_user_keeps_the_first_and_becomes_the_default() -> None:
    first = config_store.save(credential("alice"))
    assert first.replaced is None and first.previous_default is None
    assert auth.replaced_note(first) == "alice is the default user"
    second = config_store.save(credential("bob"))
    assert second.replaced is None and second.previous_default == "alice"
    assert "alice's session is kept" in auth.replaced_note(second)
    assert config_store.users(SERVER) == ["alice", "bob"]
    assert auth.saved_token(SERVER, None).username == "bob"
    assert auth.saved_token(SERVER, "ALICE").token == "t-alice"


def test_logging_in_again_as_the_same_user_says_it_replaced_that_session() -> None:
    config_store.save(credential("alice", "old"))
    again = config_store.save(credential("alice", "new"))
    assert again.replaced is not None and again.replaced.token == "old-alice"
    assert auth.replaced_note(again) == "replaced alice's earlier session"
    assert config_store.load(SERVER, "alice") == credential("alice", "new")


def test_removing_one_user_keeps_the_other() -> None:
    config_store.save(credential("alice"))
    config_store.save(credential("bob"))
    removed = config_store.remove(SERVER)  # the default: bob
    assert removed is not None and removed.username == "bob"
    assert config_store.users(SERVER) == ["alice"]
    assert auth.saved_token(SERVER, None).username == "alice"  # the one left


def test_no_default_among_several_asks_for_a_username() -> None:
    config_store.save(credential("alice"))
    config_store.save(credential("bob"))
    config_store.save(credential("carol"))
    config_store.remove(SERVER, "carol")
    with pytest.raises(auth.AuthError, match=r"several saved sessions .*alice, bob.*--username"):
        auth.saved_token(SERVER, None)
    with pytest.raises(auth.AuthError, match=r"no saved session for zoe .*\(saved: alice, bob\)"):
        auth.saved_token(SERVER, "zoe")


def test_servers_never_share_tokens() -> None:
    config_store.save(credential("alice", server="http://other:3000"))
    assert config_store.load(SERVER) is None
    assert config_store.load(SERVER, "alice") is None


def test_a_file_from_before_is_still_read(config_home: Path) -> None:
    path = config_home / "chat-cli" / "credentials.json"
    path.parent.mkdir(parents=True)
    old = {"server": SERVER, "username": "alice", "token": "tok", "expires_at": 2**40}
    path.write_text(json.dumps({"credentials": {SERVER: old}}))
    assert auth.saved_token(SERVER, None).token == "tok"
    saved = config_store.save(credential("bob"))
    assert saved.previous_default == "alice"
    assert config_store.users(SERVER) == ["alice", "bob"]
