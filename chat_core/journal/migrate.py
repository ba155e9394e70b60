"""Apply alembic migrations programmatically, with the URL the server uses.

Alembic is imported only to migrate: a start-up on a journal already at the head checks its
revision against `REVISIONS` (a test holds it equal to alembic's own list), which saves a
tenth of a second of imports on every start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Final

from chat_core.errors import DamagedJournal, UnsupportedJournal
from chat_core.settings.paths import ensure_sqlite_file, sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# The revisions under migrations/versions, oldest first.
REVISIONS: Final = ("0001_events", "0002_secrets")


def alembic_config(url: str) -> Config:
    """An alembic Config for the project's migrations and the given database URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    return REVISIONS[-1]


def check_revision(revision: str, url: str) -> None:
    """Refuse a journal migrated by a newer version of this code (a revision we do not know)."""
    if revision not in REVISIONS:
        raise UnsupportedJournal(
            f"{url} has schema revision {revision!r}, unknown to this version: it was written"
            " by a newer release; upgrade the server"
        )
    if revision != head_revision():
        raise UnsupportedJournal(
            f"{url} is at schema revision {revision!r}; run `alembic upgrade head` first"
        )


def upgrade(url: str) -> None:
    """Bring the database to the latest revision (blocking: call it off the event loop)."""
    if preflight(url) == head_revision():
        return  # already there: alembic would only connect and find nothing to do
    from alembic import command

    # Created 0600 here, not by SQLite (which would make it world-readable).
    ensure_sqlite_file(url)
    command.upgrade(alembic_config(url), "head")


def preflight(url: str) -> str | None:
    """Refuse, before anything is written, a file that is not a journal we may migrate; else
    its schema revision (None: not migrated yet).

    A corrupt or foreign database, or one from a newer release, stops start-up with one line;
    an empty or missing file is fine (the migrations create the journal).
    """
    path = sqlite_file(url)
    if path is None or not path.exists() or path.stat().st_size == 0:
        return None
    try:
        connection = sqlite3.connect(f"file:{path.absolute()}?mode=ro", uri=True)
        try:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            revision = None
            if "alembic_version" in tables:
                found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = found[0] if found else None
        finally:
            connection.close()
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.DatabaseError) and "malformed" in str(exc):
            # A SQLite file whose schema page is damaged: say so, and what to do.
            raise DamagedJournal.at(path.absolute(), str(exc)) from exc
        raise UnsupportedJournal(
            f"{path} is not a readable SQLite database ({exc}): if it held the journal, it is"
            " damaged; restore it from a backup"
        ) from exc
    if revision is None and tables - {"sqlite_sequence", "alembic_version"}:
        raise UnsupportedJournal(
            f"{path} holds tables {sorted(tables)} but is not a chat journal; refusing to touch it"
        )
    if revision is not None and revision not in REVISIONS:
        raise UnsupportedJournal(
            f"{path} has schema revision {revision!r}, written by a newer release;"
            " upgrade the server"
        )
    return revision
