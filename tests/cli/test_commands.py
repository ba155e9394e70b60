"""Slash-command parsing and the pure helpers of the client: no server, no terminal."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from chat_cli import commands as cmd
from chat_cli.config_store import normalize_server
from chat_cli.offline import Outbox
from chat_cli.session import Session, backoff_delay, ws_url
from chat_cli.ui import PALETTE, name_style, plural, stamp


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", cmd.Say("hello")),
        ("//shrug", cmd.Say("/shrug")),
        ("/rooms", cmd.Run("rooms")),
        ("/join Lobby", cmd.Run("join", target="Lobby")),
        ("/leave", cmd.Run("leave")),
        ("/history", cmd.Run("history", count=20)),
        ("/history 5", cmd.Run("history", count=5)),
        ("/kick bob be nice", cmd.Run("kick", target="bob", text="be nice")),
        ("/kick bob", cmd.Run("kick", target="bob")),
        ("/ban bob 10 spam", cmd.Run("ban", target="bob", seconds=600, text="spam")),
        ("/ban bob 10m spam", cmd.Run("ban", target="bob", seconds=600, text="spam")),
        ("/ban bob 30s", cmd.Run("ban", target="bob", seconds=30)),
        ("/ban bob 2H be calm", cmd.Run("ban", target="bob", seconds=7200, text="be calm")),
        ("/ban bob 7d", cmd.Run("ban", target="bob", seconds=7 * 86_400)),
        ("/join #general", cmd.Run("join", target="general")),
        ("/leave #Lobby", cmd.Run("leave", target="Lobby")),
        ("/switch side", cmd.Run("switch", target="side")),
        ("/ban bob spam forever", cmd.Run("ban", target="bob", text="spam forever")),
        ("/announce warning going down", cmd.Run("announce", level="warning", text="going down")),
        ("/announce tea time", cmd.Run("announce", level="info", text="tea time")),
        ("/QUIT", cmd.Run("quit")),
    ],
)
def test_lines_parse_to_what_they_ask(line: str, expected: cmd.Parsed) -> None:
    assert cmd.parse(line) == expected


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("/join", "usage: /join <room>"),
        ("/kick", "usage: /kick <user> [reason]"),
        ("/history lots", "usage: /history [n]"),
        ("/ban bob 0", "at least 1 second"),
        ("/ban bob 0s spam", "at least 1 second"),
        ("/ban bob -5m spam", "bad duration '-5m'"),
        ("/ban bob 10x spam", "bad duration '10x'"),
        ("/ban bob 10mins spam", "bad duration '10mins'"),
        ("/ban bob 36500001d", "at most 100 years"),
        ("/join my room", "room names are letters, digits, _ and -"),
        ("/join bad!name", "no spaces"),
        ("/switch two words", "usage: /switch <room>"),
        ("/announce error", "usage: /announce"),
        ("/jion x", "unknown command /jion (did you mean /join?)"),
        ("/", "unknown command /"),
    ],
)
def test_bad_lines_get_a_short_hint(line: str, hint: str) -> None:
    parsed = cmd.parse(line)
    assert isinstance(parsed, cmd.Hint)
    assert hint in parsed.text


def test_blank_lines_do_nothing() -> None:
    assert cmd.parse("   ") is None


def test_every_command_has_help() -> None:
    text = "\n".join(cmd.help_lines())
    assert all(f"/{name}" in text for name in cmd.COMMANDS)


def test_ws_url_follows_the_http_scheme() -> None:
    assert ws_url("http://h:3000", None) == "ws://h:3000/ws?batch=1"
    assert ws_url("https://h/", 42) == "wss://h/ws?batch=1&since=42"


def test_backoff_grows_is_capped_and_jittered() -> None:
    for attempt in range(12):
        ceiling = min(10.0, 0.5 * 2**attempt)
        delays = {backoff_delay(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


def test_server_urls_are_normalized() -> None:
    assert normalize_server("127.0.0.1:3000/") == "http://127.0.0.1:3000"


def test_username_colours_are_stable_and_case_insensitive() -> None:
    assert name_style("Bob") == name_style("bob") in PALETTE


def test_counts_agree_with_their_noun() -> None:
    assert plural(1, "user") == "1 user"
    assert plural(0, "user") == "0 users"
    assert plural(2, "room") == "2 rooms"


def test_ban_times_are_shown_in_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert stamp(moment) == "2030-01-02 08:34:05 IST"
        assert stamp(None) == "for ever"
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_the_outbox_is_bounded_in_messages_and_bytes_and_says_why_it_refuses() -> None:
    # Never started: the queued messages wait for a connection that does not come.
    session = Session("http://127.0.0.1:9", "token")
    outbox = Outbox(session, lambda line: None, max_items=3, max_bytes=10)
    assert outbox.refusal("12345") is None
    outbox.put("lobby", "12345")
    outbox.put("lobby", "é")  # two bytes in UTF-8
    assert outbox.refusal("1234") == "the messages waiting to be sent would pass 10 bytes"
    assert outbox.refusal("123") is None
    outbox.put("lobby", "123")
    assert len(outbox) == 3
    assert outbox.refusal("x") == "3 messages are already waiting to be sent"
    await outbox.close()
    assert len(outbox) == 3  # closing sends nothing and drops nothing silently
