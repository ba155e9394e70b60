"""`chat-cli password` (change one's own password) and `chat-cli admin ...` (an admin's
account actions: reset-password, disable, enable, revoke-tokens; docs/protocol.md section 4)."""

from __future__ import annotations

import asyncio
from typing import Annotated, NoReturn

import msgspec
import typer

from chat_cli import api, auth, config_store
from chat_cli.session import ConnectionLost, RpcError, Session, SessionEnded
from chat_core.protocol import params as p
from chat_core.protocol import results as r

admin_app = typer.Typer(help="Account actions of an admin.", no_args_is_help=True)

Server = Annotated[
    str | None,
    typer.Option(
        "--server", help="Server base URL; several, comma-separated, are one chat's nodes."
    ),
]
Username = Annotated[str | None, typer.Option("--username", "-u", help="Act as this saved login.")]
Target = Annotated[str, typer.Argument(help="The user acted on.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def password(server: Server = None, username: Username = None) -> None:
    """Change your password; every other session of yours is signed out."""
    urls = config_store.resolve_servers(server)
    try:
        credential = auth.saved_token(urls, username)
        old = auth.read_password(from_stdin=False, confirm=False)
        typer.echo("new password:")
        new = auth.read_password(from_stdin=False, confirm=True)
        auth.check_new_password(new)
        result = api.change_password(urls, credential.token, old, new)
        auth.save_token(urls, result)
    except auth.AuthError as exc:
        _fail(exc.message, exc.code)
    except api.ApiError as exc:
        _fail(f"refused: {exc.message}")
    except config_store.StoreError as exc:
        _fail(str(exc))
    typer.echo(f"password changed for {result.username}; other sessions signed out")


def _call(
    urls: list[str], username: str | None, params: p.Params, kind: type[msgspec.Struct]
) -> None:
    try:
        token = auth.saved_token(urls, username).token
    except auth.AuthError as exc:
        _fail(exc.message, exc.code)

    async def go() -> msgspec.Struct:
        session = Session(urls, token, reconnect=False)
        try:
            await session.start()
            return await session.call(params, kind)
        finally:
            await session.close()

    try:
        asyncio.run(go())
    except RpcError as exc:
        _fail(f"refused: {exc.message} ({exc.reason or exc.code})")
    except (SessionEnded, ConnectionLost) as exc:
        _fail(str(exc))


@admin_app.command("reset-password")
def reset_password(target: Target, server: Server = None, username: Username = None) -> None:
    """Set a user's password (prompted); their sessions are signed out."""
    urls = config_store.resolve_servers(server)
    try:
        new = auth.read_password(from_stdin=False, confirm=True)
        auth.check_new_password(new)
    except auth.AuthError as exc:
        _fail(exc.message, exc.code)
    params = p.ResetPasswordParams(target_username=target, new_password=new)
    _call(urls, username, params, r.ResetPasswordResult)
    typer.echo(f"password of {target} reset; their sessions are signed out")


@admin_app.command("disable")
def disable(target: Target, server: Server = None, username: Username = None) -> None:
    """Disable an account: no login, its sessions signed out."""
    urls = config_store.resolve_servers(server)
    _call(urls, username, p.DisableAccountParams(target_username=target), r.AccountStatusResult)
    typer.echo(f"{target} disabled")


@admin_app.command("enable")
def enable(target: Target, server: Server = None, username: Username = None) -> None:
    """Re-enable a disabled account (its old password works again)."""
    urls = config_store.resolve_servers(server)
    _call(urls, username, p.EnableAccountParams(target_username=target), r.AccountStatusResult)
    typer.echo(f"{target} enabled")


@admin_app.command("revoke-tokens")
def revoke_tokens(target: Target, server: Server = None, username: Username = None) -> None:
    """Sign a user out everywhere (they may log in again)."""
    urls = config_store.resolve_servers(server)
    _call(urls, username, p.RevokeTokensParams(target_username=target), r.RevokeTokensResult)
    typer.echo(f"every session of {target} signed out")
