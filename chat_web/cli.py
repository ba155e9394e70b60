"""`chat-web`: the server's command line (docs/protocol.md section 6, docs/deploy.md).

A bad setting exits 2 and a journal that cannot be opened exits 1, each with one line on
stderr (`chat-web: error: ...`), never a traceback. Each flag's help names its default and
the environment variables that set it too; the values themselves come from the layered
settings (`chat_core.settings.sources`), so a flag given wins and a flag left out changes
nothing.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer

from chat_core.errors import ChatError
from chat_core.settings.schema import Settings, SettingsError, sqlite_path
from chat_core.settings.sources import load_settings
from chat_web.logging_setup import setup_logging
from chat_web.usage import suggesting_app

app = suggesting_app(add_completion=False, no_args_is_help=True, help="The chat server.")
_DEFAULTS = Settings()


def package_version() -> str:
    try:
        return version("chat-backend")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"chat-web {package_version()}")
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
    """The chat server (subcommands below)."""


def _fail(message: str, code: int) -> typer.Exit:
    print(f"chat-web: error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def _help(text: str, default: Any, *variables: str) -> str:
    """A flag's help with its default and the environment variables that set it."""
    # Parentheses: rich would take square brackets for markup.
    env = f"; env: {', '.join(variables)}" if variables else ""
    return f"{text} (default: {default}{env})"


ConfigOption = Annotated[
    Path | None,
    typer.Option(help=_help("TOML settings file.", "./config.toml if present", "CHAT_CONFIG_FILE")),
]
DataDirOption = Annotated[
    str | None,
    typer.Option(
        help=_help(
            "Journal and secret directory.",
            _DEFAULTS.chat.data_dir,
            "CHAT_DATA_DIR",
            "CHAT__CHAT__DATA_DIR",
        )
    ),
]
EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        help=_help(
            "KEY=VALUE file read below the real environment, above the TOML file.",
            "./.env if present",
        )
    ),
]


def _settings(config: Path | None, env_file: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(config, overrides=overrides, env_file=env_file)
    except SettingsError as exc:
        raise _fail(exc.message, 2) from None


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            help=_help("Address to listen on.", _DEFAULTS.server.host, "HOST", "CHAT__SERVER__HOST")
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help=_help(
                "Port; 0 picks a free one.", _DEFAULTS.server.port, "PORT", "CHAT__SERVER__PORT"
            )
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help=_help(
                "debug, info, warning or error.",
                _DEFAULTS.logging.level,
                "LOG_LEVEL",
                "CHAT__LOGGING__LEVEL",
            )
        ),
    ] = None,
    env_file: EnvFileOption = None,
) -> None:
    """Migrate and replay the journal, then serve HTTP and WebSocket clients."""
    from chat_web.server import run

    overrides = {
        "server.host": host,
        "server.port": port,
        "chat.data_dir": data_dir,
        "logging.level": log_level,
    }
    settings = _settings(config, env_file, overrides)
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


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="The file to write (must not exist).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    env_file: EnvFileOption = None,
) -> None:
    """Copy the journal (SQLite's online backup, while the server runs) to DEST and verify it."""
    import asyncio

    from chat_core.journal.backup import backup as copy_journal

    settings = _settings(config, env_file, {"chat.data_dir": data_dir})
    try:
        source = sqlite_path(settings)
    except SettingsError as exc:
        raise _fail(exc.message, 2) from None
    if source is None:
        raise _fail("backup copies SQLite journals only (database.url is not a file)", 2)
    try:
        report = asyncio.run(copy_journal(source, dest.absolute()))
    except ChatError as exc:
        raise _fail(exc.message, 1) from None
    print(
        f"backed up {source} to {dest}: {report.events} events up to seq {report.head},"
        f" {report.bytes} bytes, verified"
    )


@app.command("migrate-journal")
def migrate_journal(
    source: Annotated[
        str, typer.Option("--from", help="The journal to copy: a database URL or a SQLite file.")
    ],
    dest: Annotated[
        str,
        typer.Option("--to", help="An empty journal to fill: a database URL or a SQLite file."),
    ],
) -> None:
    """Copy a journal, event by event, into an empty one (SQLite to PostgreSQL, or back) and
    verify it; stop the server on the source first."""
    import asyncio

    from chat_core.journal.transfer import as_url, transfer

    try:
        report = asyncio.run(transfer(as_url(source), as_url(dest)))
    except ChatError as exc:
        raise _fail(exc.message, 1) from None
    print(
        f"copied {report.events} events up to seq {report.head} in {report.seconds:.2f}s"
        f" ({report.rate:,.0f} events/s), verified event by event and replayed to the same state"
    )


def main() -> None:
    app(prog_name="chat-web")
