"""`chat-cli` against a real server: login, send, and the interactive chat in a pseudo-terminal.

A `chat-web serve --port 0` subprocess per module (bcrypt cost 4: logins in milliseconds);
clients are the real console script, driven by pexpect. Nothing sleeps: every step waits
for the text it expects, with a timeout. The helpers live in pty_kit.py beside this file.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from pty_kit import (
    CHAT_CLI,
    TIMEOUT,
    Server,
    alice_in_lobby,
    chat_in_room,
    cli,
    client_env,
    login,
    server,
    spawn_chat,
    wait_exit,
)

from chat_kit import CLIPBOARD, CLIPBOARD_SHOWN, FORGED, FORGED_SHOWN, plant_old_messages

__all__ = ["server"]  # a fixture: imported to be found, not called

# -- login, register, logout, send ------------------------------------------------------------


def test_login_saves_a_private_token_and_logout_forgets_it(server: Server, tmp_path: Path) -> None:
    env = client_env(server, tmp_path / "alice")
    login(env, "alice", "alice123")
    saved = tmp_path / "alice" / "chat-cli" / "credentials.json"
    assert saved.exists()
    assert saved.stat().st_mode & 0o777 == 0o600
    assert "alice" in saved.read_text()
    done = cli(env, "logout")
    assert done.returncode == 0
    assert "logged out alice" in done.stdout
    done = cli(env, "send", "--room", "general", "hi")
    assert done.returncode == 1
    assert "not logged in" in done.stderr and "chat-cli login --username" in done.stderr


def test_wrong_password_is_refused_in_one_line(server: Server, tmp_path: Path) -> None:
    env = client_env(server, tmp_path / "alice")
    done = cli(env, "login", "--username", "alice", "--password-stdin", stdin="nope-nope\n")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: login refused: wrong username or password"


def test_register_then_taken_name(server: Server, tmp_path: Path) -> None:
    env = client_env(server, tmp_path / "zoe")
    done = cli(env, "register", "--username", "zoe", "--password-stdin", stdin="zoe-secret\n")
    assert done.returncode == 0, done.stderr
    assert "registered zoe" in done.stdout
    done = cli(env, "register", "--username", "ZOE", "--password-stdin", stdin="zoe-secret\n")
    assert done.returncode == 1
    assert "taken" in done.stderr
    done = cli(env, "register", "--username", "x", "--password-stdin", stdin="zoe-secret\n")
    assert done.returncode == 2


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    done = subprocess.run(
        [CHAT_CLI, "login", "-u", "alice", "--password-stdin", "--server", "http://127.0.0.1:9"],
        input="alice123\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the server at http://127.0.0.1:9")
    assert len(done.stderr.strip().splitlines()) == 1


def test_send_joins_and_is_acknowledged(server: Server, tmp_path: Path) -> None:
    env = client_env(server, tmp_path / "bob")
    login(env, "bob", "bob123")
    done = cli(env, "send", "--room", "Lounge", "first!")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sent to lounge (seq ")
    done = cli(env, "send", "--room", "lounge", " ")
    assert done.returncode == 1
    assert "empty" in done.stderr
    done = cli(env, "send", "--room", "lounge", "--token", "not-a-token", "x")
    assert done.returncode == 1


# -- the interactive chat ---------------------------------------------------------------------


def test_chat_session_join_send_receive_who_history_and_kick(
    server: Server, tmp_path: Path
) -> None:
    alice_env = client_env(server, tmp_path / "alice")
    bob_env = client_env(server, tmp_path / "bob")
    mod_env = client_env(server, tmp_path / "mod")
    login(bob_env, "bob", "bob123")
    login(mod_env, "moderator", "mod123")

    # No saved token: the chat asks for the password itself.
    alice = spawn_chat(alice_env, "--username", "alice")
    alice.expect("Password")
    alice.sendline("alice123")
    alice.expect("connected to .* as alice")
    alice.sendline("/join lobby")
    alice.expect(r"#lobby: \d+ users?:")
    alice.sendline("hello from alice")
    alice.expect("<alice> hello from alice")

    done = cli(bob_env, "send", "--room", "lobby", "hi alice, bob here")
    assert done.returncode == 0, done.stderr
    alice.expect("<bob> hi alice, bob here")

    alice.sendline("/who")
    alice.expect(r"#lobby: .*alice.*bob")
    alice.sendline("/history 5")
    alice.expect("last 2 messages of #lobby")
    alice.expect("<alice> hello from alice")
    alice.expect("<bob> hi alice, bob here")
    alice.sendline("/frobnicate")
    alice.expect("unknown command /frobnicate")
    alice.sendline("/join")
    alice.expect(re.escape("usage: /join <room>"))

    # The moderator kicks alice from the chat: her client says why and exits with 3.
    mod = spawn_chat(mod_env)
    mod.expect("connected to .* as moderator")
    mod.sendline("/kick alice be nice")
    mod.expect("kicked alice")
    alice.expect("kicked from the chat by moderator: be nice")
    assert wait_exit(alice) == 3
    mod.sendline("/quit")
    assert wait_exit(mod) == 0


def test_banned_client_exits_with_4(server: Server, tmp_path: Path) -> None:
    bob_env = client_env(server, tmp_path / "bob")
    mod_env = client_env(server, tmp_path / "mod")
    login(bob_env, "bob", "bob123")
    login(mod_env, "moderator", "mod123")
    bob = spawn_chat(bob_env)
    bob.expect("connected to .* as bob")
    bob.sendline("/join general")
    bob.expect(r"#general: \d+ users?:")
    mod = spawn_chat(mod_env)
    mod.expect("connected to .* as moderator")
    mod.sendline("/ban bob 5 flooding")
    mod.expect("banned bob until")
    bob.expect("banned")
    assert wait_exit(bob) == 4
    # Refused at once from now on, with the same code.
    again = spawn_chat(bob_env)
    assert wait_exit(again) in (1, 4)
    mod.sendline("/unban bob")
    mod.expect("unbanned bob")
    mod.sendline("/quit")
    assert wait_exit(mod) == 0


def test_messages_from_another_joined_room_carry_its_name(server: Server, tmp_path: Path) -> None:
    alice_env = client_env(server, tmp_path / "alice")
    bob_env = client_env(server, tmp_path / "bob")
    login(alice_env, "alice", "alice123")
    login(bob_env, "bob", "bob123")
    assert cli(bob_env, "send", "--room", "side", "warming up").returncode == 0
    alice = spawn_chat(alice_env)
    alice.expect("connected")
    alice.sendline("/join side")
    alice.expect("<bob> warming up")  # recent history on join
    alice.sendline("/join main")
    alice.expect(r"#main: \d+ users?:")
    assert cli(bob_env, "send", "--room", "side", "over here").returncode == 0
    alice.expect(re.escape("#side <bob> over here"))
    alice.sendline("/switch side")
    alice.expect("now in #side")
    # Ctrl-D on an empty line leaves. Type a character and see it echoed first: the prompt
    # is then reading raw keys (a ^D sent earlier would reach the terminal's line discipline).
    alice.send("x")
    alice.expect("x")
    alice.send("\x7f")
    alice.sendcontrol("d")
    assert wait_exit(alice) == 0


def test_reconnect_resumes_without_loss_or_repeat(tmp_path: Path) -> None:
    data, first, bob_env, alice, transcript = alice_in_lobby(tmp_path)
    port = first.port
    assert cli(bob_env, "send", "--room", "lobby", "before restart").returncode == 0
    alice.expect("<bob> before restart")

    first.stop()
    alice.expect("connection lost; reconnecting")
    second = Server(data, port=port)  # same journal, same port: tokens stay valid
    try:
        assert cli(bob_env, "send", "--room", "lobby", "while away").returncode == 0
        alice.expect("<bob> while away", timeout=60)
        assert cli(bob_env, "send", "--room", "lobby", "after").returncode == 0
        alice.expect("<bob> after")
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
        screen = transcript.getvalue()
        # Each message exactly once: the resume neither lost nor repeated any.
        for text in ("before restart", "while away", "after"):
            assert screen.count(f"<bob> {text}") == 1, screen
    finally:
        second.stop()


def test_a_message_typed_while_disconnected_is_queued_and_sent_once_after_the_resume(
    tmp_path: Path,
) -> None:
    data, first, bob_env, alice, transcript = alice_in_lobby(tmp_path)
    port = first.port
    first.stop()
    alice.expect("connection lost; reconnecting")
    alice.sendline("typed while away")
    alice.expect(re.escape("queued until reconnected (1 message waiting)"))
    alice.sendline("and a second one")
    alice.expect(re.escape("queued until reconnected (2 messages waiting)"))
    # A dumb terminal has no status line: each try says when the next one is.
    alice.expect(r"still disconnected \(cannot reach .*\); next try in \d+\.\d s")
    second = Server(data, port=port)
    try:
        alice.expect("reconnected; sending 2 queued messages", timeout=60)
        alice.expect("<alice> typed while away")
        alice.expect("<alice> and a second one")
        # Another client sees each once, in the order typed (the recent history on join).
        bob, bob_screen = chat_in_room(bob_env, "lobby")
        bob.expect("<alice> and a second one")
        bob.sendline("/quit")
        assert wait_exit(bob) == 0
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
        seen = bob_screen.getvalue()
        assert seen.count("<alice> typed while away") == 1, seen
        assert seen.count("<alice> and a second one") == 1, seen
        assert seen.index("typed while away") < seen.index("and a second one")
        assert transcript.getvalue().count("<alice> typed while away") == 1
    finally:
        second.stop()


def test_the_status_line_counts_down_to_the_next_try_in_a_real_terminal(tmp_path: Path) -> None:
    """In a terminal that can draw it (one that answers the cursor position request
    prompt-toolkit sends before drawing the bottom toolbar), the status line counts down."""
    data = tmp_path / "data"
    data.mkdir()
    first = Server(data)
    env = dict(client_env(first, tmp_path / "alice"), TERM="xterm-256color")
    login(env, "alice", "alice123")
    alice = spawn_chat(env)

    def expect(pattern: str, timeout: float = TIMEOUT) -> None:
        while alice.expect([re.escape("\x1b[6n"), pattern], timeout=timeout) == 0:
            alice.send("\x1b[10;1R")  # the cursor's position: row 10, column 1

    expect("connected")
    alice.sendline("/join lobby")
    expect(r"#lobby: \d+ users?:")
    port = first.port
    first.stop()
    expect("connection lost; reconnecting")
    alice.sendline("typed in the dark")
    expect(re.escape("queued until reconnected (1 message waiting)"))
    # The status line is drawn whole after a line is printed above it (else only the cells
    # that changed): print some (/help) until it is drawn while counting down, not while a try
    # is under way ("reconnecting...", the first tries come quickly).
    for _ in range(40):
        alice.sendline("/help")
        expect("/quit")
        drawn = r"(disconnected: next try in \d+ s|reconnecting\.\.\.); 1 message queued"
        expect(drawn)
        if alice.match.group(1).startswith("disconnected"):
            break
    else:
        raise AssertionError("the status line never counted down")
    second = Server(data, port=port)
    try:
        expect("reconnected; sending 1 queued message", timeout=60)
        expect("<alice>.*typed in the dark")
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
    finally:
        second.stop()


def test_too_much_missed_while_away_refetches_the_rooms(tmp_path: Path) -> None:
    """More events than `chat.max_resume_events` while away: `resync_required`, and the client
    joins its rooms again, which shows their recent history."""
    data, first, bob_env, alice, transcript = alice_in_lobby(tmp_path)
    port = first.port
    first.stop()
    alice.expect("connection lost; reconnecting")
    # Bob talks on another port while alice keeps retrying the first one.
    elsewhere = Server(data)
    try:
        bob_elsewhere = dict(bob_env, CHAT_SERVER_URL=elsewhere.url)
        login(bob_elsewhere, "bob", "bob123")  # tokens are saved per server address
        for n in range(1, 5):
            assert cli(bob_elsewhere, "send", "--room", "lobby", f"away {n}").returncode == 0
    finally:
        elsewhere.stop()
    back = Server(data, port=port, settings={"CHAT__CHAT__MAX_RESUME_EVENTS": "2"})
    try:
        alice.expect("too much was missed while away; refetching the rooms", timeout=60)
        alice.expect(r"in #lobby: \d+ users?:")
        alice.expect("<bob> away 4")
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
        screen = transcript.getvalue()
        for n in range(1, 5):  # the history after the refetch: each message once
            assert screen.count(f"<bob> away {n}") == 1, screen
    finally:
        back.stop()


def test_a_colour_terminal_gets_coloured_names_and_a_dumb_one_none(
    server: Server, tmp_path: Path
) -> None:
    """Usernames are coloured (the user's own in a colour of its own) where the terminal can
    show it; TERM=dumb, as the other tests use, gets plain text."""
    escape = re.compile(r"\x1b\[[0-9;]*m")
    bob_env = client_env(server, tmp_path / "bob")
    login(bob_env, "bob", "bob123")
    screens = {}
    for term in ("xterm-256color", "dumb"):
        env = dict(client_env(server, tmp_path / f"alice-{term}"), TERM=term)
        login(env, "alice", "alice123")
        alice, screen = chat_in_room(env, "paint")
        alice.sendline(f"mine on {term}")
        alice.expect(f"<alice>.*mine on {term}")
        assert cli(bob_env, "send", "--room", "paint", f"theirs on {term}").returncode == 0
        alice.expect(f"<bob>.*theirs on {term}")
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
        screens[term] = screen.getvalue()
    coloured = screens["xterm-256color"]
    own = re.search(r"(\x1b\[[0-9;]*m)<alice>", coloured)
    other = re.search(r"(\x1b\[[0-9;]*m)<bob>", coloured)
    assert own is not None and other is not None, coloured
    assert own.group(1) != other.group(1)  # "you" never share a colour with anyone
    plain = screens["dumb"]
    assert "<alice>" in plain and "<bob>" in plain
    assert not escape.search(plain.split("connected", 1)[1]), plain


def test_typing_is_announced_to_the_room(server: Server, tmp_path: Path) -> None:
    alice_env = client_env(server, tmp_path / "alice")
    bob_env = client_env(server, tmp_path / "bob")
    login(alice_env, "alice", "alice123")
    login(bob_env, "bob", "bob123")
    bob = spawn_chat(bob_env)
    bob.expect("connected")
    bob.sendline("/join lobby")
    bob.expect(r"#lobby: \d+ users?:")
    alice = spawn_chat(alice_env)
    alice.expect("connected")
    alice.sendline("/join lobby")
    alice.expect(r"#lobby: 2 users:")
    alice.send("hel")
    alice.expect("hel")
    bob.expect(re.escape("alice is typing..."))
    # A message arrives while alice is half-way through her line: it is shown, and her
    # input survives intact (what she sends is exactly what she typed).
    bob.sendline("hi while you type")
    alice.expect("<bob> hi while you type")
    alice.sendline("lo")
    bob.expect("<alice> hello")
    for child in (alice, bob):
        child.sendline("/quit")
        assert wait_exit(child) == 0


def test_control_characters_of_an_old_message_reach_the_screen_escaped(tmp_path: Path) -> None:
    """A journal from before the text rule holds mallory's ESC sequences (a forged `<admin>`
    line, an OSC 52 clipboard write): alice's chat shows them as visible text, never raw."""
    data = tmp_path / "data"
    data.mkdir()
    plant_old_messages(data / "chat.db", "lobby", FORGED, CLIPBOARD, "line one\n<admin> two")
    server = Server(data)
    try:
        env = client_env(server, tmp_path / "alice")
        login(env, "alice", "alice123")
        alice, transcript = chat_in_room(env, "lobby")  # the join shows the recent history
        alice.expect(re.escape(f"<mallory> {CLIPBOARD_SHOWN}"))
        alice.sendline("/history 5")
        alice.expect("last 3 messages of #lobby")
        alice.expect(r"<mallory> line one\r?\n    <admin> two")
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
        screen = transcript.getvalue()
        assert f"<mallory> {FORGED_SHOWN}" in screen, screen
        assert "\x1b[2K\r<admin>" not in screen and "\x1b]52" not in screen, screen
        assert "\x07" not in screen, screen
        mallory = [line for line in screen.splitlines() if "mallory>" in line]
        assert len(mallory) == 6, screen
        # The prompt writes escape sequences of its own; mallory's lines hold none.
        assert not any("\x1b" in line or "\x07" in line for line in mallory), mallory
    finally:
        server.stop()
