"""`alembic upgrade head` from the project root, and the tables it makes match tables.py."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, Text, create_engine

from chat_core.journal.migrate import head_revision
from chat_core.journal.tables import metadata

ROOT = Path(__file__).resolve().parents[2]


def _alembic_upgrade(
    data_dir: Path, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT")}
    env["CHAT_DATA_DIR"] = str(data_dir)
    env.update(settings or {})
    alembic = Path(sys.executable).with_name("alembic")
    return subprocess.run(
        [str(alembic), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _schema(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_alembic_upgrade_head_creates_the_journal_then_is_a_no_op(tmp_path):
    data_dir = tmp_path / "data"
    first = _alembic_upgrade(data_dir)
    assert first.returncode == 0, first.stderr
    journal = data_dir / "chat.db"
    assert journal.exists()
    schema = _schema(journal)
    names = {row[1] for row in schema}
    assert {"events", "alembic_version", "events_no_update", "events_no_delete"} <= names
    assert _revision(journal) == head_revision()

    second = _alembic_upgrade(data_dir)
    assert second.returncode == 0, second.stderr
    assert "Running upgrade" not in second.stderr
    assert _schema(journal) == schema


def test_the_migrations_and_the_table_definitions_agree(tmp_path):
    assert _alembic_upgrade(tmp_path).returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'chat.db'}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
            # The comparison is not vacuous: a column the migrations lack is seen.
            changed = MetaData()
            for table in metadata.tables.values():
                table.to_metadata(changed)
            changed.tables["events"].append_column(Column("extra", Text))
            drift = compare_metadata(context, changed)
    finally:
        engine.dispose()
    assert diffs == []
    assert [diff[0] for diff in drift] == ["add_column"]


def test_the_revisions_start_up_knows_are_alembics_own():
    # Start-up checks a journal's revision against chat_core.journal.migrate.REVISIONS without
    # importing alembic: the list must be exactly the migrations, oldest first.
    from alembic.script import ScriptDirectory

    from chat_core.journal.migrate import REVISIONS, alembic_config

    script = ScriptDirectory.from_config(alembic_config(""))
    walked = [rev.revision for rev in script.walk_revisions()]  # newest first
    assert list(REVISIONS) == walked[::-1]
    assert REVISIONS[-1] == script.get_current_head()


@pytest.fixture(scope="module")
def empty_postgres():
    from pg_kit import fresh_database

    yield from fresh_database()


def test_alembic_upgrade_head_migrates_postgresql_and_agrees_with_the_tables(
    tmp_path, empty_postgres
):
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    env_url = {"CHAT__DATABASE__URL": empty_postgres}
    first = _alembic_upgrade(tmp_path, env_url)
    assert first.returncode == 0, first.stderr
    second = _alembic_upgrade(tmp_path, env_url)
    assert second.returncode == 0, second.stderr
    assert "Running upgrade" not in second.stderr

    async def compare():
        engine = create_async_engine(empty_postgres)
        try:
            async with engine.connect() as conn:
                revision = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                found = revision.scalar()
                diffs = await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
                triggers = await conn.exec_driver_sql(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass"
                )
                names = {row[0] for row in triggers}
        finally:
            await engine.dispose()
        return found, diffs, names

    found, diffs, names = asyncio.run(compare())
    assert found == head_revision()
    assert diffs == []
    assert {"events_no_update", "events_no_delete", "events_no_truncate"} <= names
