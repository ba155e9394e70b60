"""`chat-cli`: the Typer application; each command parses options and hands over to a module.

Exit codes, relied on by scripts and tests:

    0  success
    1  refused (by the server or the journal), unreachable server, bad input file
    2  usage error (bad or conflicting options)
    3  kicked from the chat (close code 4001)
    4  banned (close code 4403)
  130  interrupted (Ctrl-C) outside the interactive chat
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sys
from collections.abc import Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from chat_cli.usage import suggesting_app
from chat_cli.visible import visible
from chat_core.errors import ChatError

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_KICKED = 3
EXIT_BANNED = 4

app = suggesting_app(
    name="chat-cli",
    help="Terminal client and offline journal tool of the chat.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback is never the answer to a user: errors are one line (see `fail`).
    pretty_exceptions_enable=False,
)


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


def say(line: str, err: bool = False) -> None:
    """Print a line that may hold server text: control characters shown escaped."""
    typer.echo(visible(line), err=err)


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Print a one-line error on stderr and exit with `code`."""
    say(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_async(coroutine: Coroutine[Any, Any, int]) -> NoReturn:
    """Run a command's coroutine and exit with the code it returns."""
    try:
        code = asyncio.run(coroutine)
    except KeyboardInterrupt:
        say("interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _show_version(value: bool) -> None:
    if value:
        try:
            number = version("chat-backend")
        except PackageNotFoundError:  # a source tree that was never installed
            number = "unknown"
        print(f"chat-cli {number}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Terminal client and offline journal tool of the chat."""


@app.command()
def replay(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory holding chat.db.")
    ] = None,
    database: Annotated[
        str | None, typer.Option("--database", help="Journal database URL (or a file path).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Server config file naming the journal.")
    ] = None,
    until: Annotated[
        int | None, typer.Option("--until", min=0, help="State as of this seq.")
    ] = None,
    room: Annotated[
        str | None, typer.Option("--room", help="Print this room's timeline instead.")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = (
        OutputFormat.text
    ),
    check: Annotated[
        bool, typer.Option("--verify", help="Check every row decodes and folds, seqs gapless.")
    ] = False,
) -> None:
    """Rebuild the chat's state offline from the journal (read-only, safe while serving)."""
    from chat_cli import replay as replaying

    if sum(option is not None for option in (data_dir, database, config)) > 1:
        fail("give at most one of --data-dir, --database, --config", EXIT_USAGE)
    if check and room is not None:
        fail("--verify and --room do not go together", EXIT_USAGE)
    try:
        url = replaying.journal_url(data_dir, database, config)
    except (replaying.SourceError, ChatError) as exc:
        fail(str(exc))

    async def go() -> int:
        try:
            return await replaying.run(
                url,
                until=until,
                room=room,
                as_json=output is OutputFormat.json,
                check=check,
                echo=typer.echo,
                show_progress=sys.stdout.isatty() and sys.stderr.isatty(),
            )
        except (replaying.SourceError, ChatError) as exc:
            fail(str(exc))

    run_async(go())


ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Server base URL (else CHAT_SERVER_URL, else http://127.0.0.1:3000); several,"
        " comma-separated, are the nodes of one chat: each is tried in turn while one is down,"
        " and a token saved for one serves them all.",
    ),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
]


@app.command()
def register(
    username: Annotated[str, typer.Option("--username", "-u", help="The new account's name.")],
    server: ServerOption = None,
    password_stdin: PasswordStdin = False,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="Optional display name.")
    ] = None,
) -> None:
    """Create an account, then log in with it and save the token."""
    from chat_cli import api, auth, config_store

    urls = config_store.resolve_servers(server)
    try:
        auth.check_username(username)
        password = auth.read_password(from_stdin=password_stdin, confirm=True)
        auth.check_new_password(password)
        try:
            created = api.register(urls, username, password, display_name)
        except api.ApiError as exc:
            fail(f"registration refused: {exc.message}" if exc.status else exc.message)
        say(f"registered {created.username} on {config_store.shown(urls)}")
        credential = auth.login(urls, username, password).credential
    except auth.AuthError as exc:
        fail(exc.message, exc.code)
    say(f"logged in as {credential.username} ({credential.role}); token saved")


@app.command()
def login(
    username: Annotated[str, typer.Option("--username", "-u", help="Your account's name.")],
    server: ServerOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Log in and save the token for later commands (until it expires)."""
    from chat_cli import auth, config_store

    urls = config_store.resolve_servers(server)
    try:
        auth.check_username(username)
        password = auth.read_password(from_stdin=password_stdin, confirm=False)
        saved = auth.login(urls, username, password)
    except auth.AuthError as exc:
        fail(exc.message, exc.code)
    credential = saved.credential
    say(
        f"logged in to {config_store.shown(urls)} as {credential.username} ({credential.role});"
        f" token saved; {auth.replaced_note(saved)}"
    )


@app.command()
def logout(
    server: ServerOption = None,
    username: Annotated[
        str | None,
        typer.Option("--username", "-u", help="Log out this saved user (else the default)."),
    ] = None,
) -> None:
    """Revoke and forget a saved token for the server (other users' stay)."""
    from chat_cli import config_store

    urls = config_store.resolve_servers(server)
    where = config_store.shown(urls)
    from chat_cli import api

    try:
        saved = next(filter(None, (config_store.load(url, username) for url in urls)), None)
        if saved is not None and not saved.expired():
            # Revoked on the server first; an unreachable server still forgets it here.
            with contextlib.suppress(api.ApiError):
                api.logout(urls, saved.token)
        removed = [config_store.remove(url, username) for url in urls]
    except config_store.StoreError as exc:
        fail(str(exc))
    gone = next(filter(None, removed), None)
    if gone is None:
        who = f" as {username}" if username else ""
        say(f"not logged in to {where}{who}")
    else:
        say(f"logged out {gone.username} from {where}")


TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="CHAT_TOKEN", help="Session token (else the saved one)."),
]


def _token(servers: list[str], token: str | None, username: str | None = None) -> str:
    """--token / CHAT_TOKEN, else the saved unexpired token for the server."""
    from chat_cli import auth

    if token:
        return token
    try:
        return auth.saved_token(servers, username).token
    except auth.AuthError as exc:
        fail(exc.message, exc.code)


@app.command()
def send(
    room: Annotated[str, typer.Option("--room", "-r", help="Room to send to (joined if needed).")],
    text: Annotated[str, typer.Argument(help="The message.")],
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Send one message and exit once the server has acknowledged it."""
    from chat_cli import config_store
    from chat_cli.send import send as send_message

    urls = config_store.resolve_servers(server)
    secret = _token(urls, token)

    async def go() -> int:
        code, line = await send_message(urls, secret, room, text)
        if code == 0:
            say(line)
        else:
            say(f"error: {line}", err=True)
        return code

    run_async(go())


@app.command()
def chat(
    server: ServerOption = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Log in as this user if needed.")
    ] = None,
    token: TokenOption = None,
) -> None:
    """Interactive chat: /help inside lists the commands. Exit 3 when kicked, 4 when banned."""
    from chat_cli import auth, config_store
    from chat_cli.chat import Chat
    from chat_cli.session import Session, SessionEnded

    urls = config_store.resolve_servers(server)
    given = token
    for attempt in range(2):
        if given:
            secret = given
        else:
            try:
                secret = auth.saved_token(urls, username).token
            except auth.AuthError as exc:
                # Only the first clause: the "run chat-cli login" advice is what happens next.
                secret = _interactive_login(urls, username, exc.message.split(";")[0])

        async def go(secret: str = secret) -> int:
            session = Session(urls, secret)
            try:
                info = await session.start()
            except SessionEnded as ended:
                if ended.kind == "unauthenticated":
                    return -1
                say(f"error: {ended.message}", err=True)
                return {"kicked": EXIT_KICKED, "banned": EXIT_BANNED}.get(ended.kind, 1)
            name = info.username or username or "me"
            return await Chat(session, name).main(info)

        try:
            code = asyncio.run(go())
        except KeyboardInterrupt:
            code = 0
        if code != -1:
            raise typer.Exit(code)
        if given or attempt == 1:
            fail(f"the server refused the token; run `{auth.login_hint(urls, username)}`")
        # The saved token was refused (revoked, or the server's secret changed): log in again.
        _forget(urls, username)
        secret = _interactive_login(urls, username, "the saved session was refused")


def _forget(servers: list[str], username: str | None) -> None:
    from chat_cli import config_store

    for url in servers:
        config_store.remove(url, username)


def _interactive_login(servers: list[str], username: str | None, why: str) -> str:
    """Prompt for username (unless given) and password, log in, save and return the token."""
    from chat_cli import auth

    if not sys.stdin.isatty():
        fail(why)
    say(f"{why}; log in to {servers[0]}", err=True)
    try:
        name = username or typer.prompt("Username")
        auth.check_username(name)
        password = auth.read_password(from_stdin=False, confirm=False)
        return auth.login(servers, name, password).credential.token
    except auth.AuthError as exc:
        fail(exc.message, exc.code)
    except (typer.Abort, EOFError):
        fail("login cancelled")


def _account_commands() -> None:
    from chat_cli.account_cmds import admin_app, password

    app.command()(password)
    app.add_typer(admin_app, name="admin")


_account_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="chat-cli")
    except KeyboardInterrupt:
        sys.exit(130)
