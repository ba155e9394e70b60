"""`chat-web serve`: the server's command line (docs/protocol.md section 6).

A bad setting exits 2 and a journal that cannot be opened exits 1, each with one line on
stderr (`chat-web: error: ...`), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chat_core.errors import ChatError
from chat_core.settings.schema import SettingsError
from chat_core.settings.sources import load_settings
from chat_web.logging_setup import setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The chat server.")


@app.callback()
def _root() -> None:
    """The chat server (subcommands below)."""


def _fail(message: str, code: int) -> typer.Exit:
    print(f"chat-web: error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port; 0 picks a free one.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Journal and secret directory.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Migrate and replay the journal, then serve HTTP and WebSocket clients."""
    from chat_web.server import run

    overrides = {
        "server.host": host,
        "server.port": port,
        "chat.data_dir": data_dir,
        "logging.level": log_level,
    }
    try:
        settings = load_settings(config, overrides=overrides)
    except SettingsError as exc:
        raise _fail(exc.message, 2) from None
    setup_logging(settings.logging.level, settings.logging.format)
    try:
        run(settings)
    except SettingsError as exc:
        raise _fail(exc.message, 2) from None
    except ChatError as exc:
        raise _fail(exc.message, 1) from None
    except OSError as exc:
        raise _fail(
            f"cannot listen on {settings.server.host}:{settings.server.port}: {exc}", 1
        ) from None
    except KeyboardInterrupt:
        pass


def main() -> None:
    app(prog_name="chat-web")
