"""PostgreSQL for tests: a database of its own per test module, created and dropped here.

The server is `CHAT_POSTGRES_ADMIN_URL` (default the local one, user postgres, trust). Where none
answers, the tests that need it are skipped, unless `CHAT_POSTGRES_TESTS=required` (CI): then
they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg
import pytest

ADMIN_URL = os.environ.get(
    "CHAT_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")
# Why the PostgreSQL tests were skipped this session (None: not skipped, or not run).
skipped_because: list[str] = []


def _required() -> bool:
    return os.environ.get("CHAT_POSTGRES_TESTS") == "required"


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def admin_sql(sql: str) -> None:
    """Run `sql` on the test server as its administrator (from a test's own event loop)."""
    await _execute(sql)


def _in_thread(function: Callable[..., T], *args: Any) -> T:
    # Fixtures may be set up while a test's event loop runs (getfixturevalue from an async
    # fixture): asyncio.run, and alembic's own loop, need a thread of their own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


def _admin(sql: str) -> None:
    _in_thread(lambda: asyncio.run(_execute(sql)))


def require_server() -> None:
    """Skip (or fail, where required) unless the PostgreSQL server answers."""
    try:
        _admin("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        why = f"no PostgreSQL server at {ADMIN_URL.rsplit('@', 1)[-1]} ({type(exc).__name__})"
        if _required():
            pytest.fail(f"{why}, and CHAT_POSTGRES_TESTS=required")
        if not skipped_because:
            skipped_because.append(why)
        pytest.skip(why)


def journal_url(database: str) -> str:
    """The SQLAlchemy URL of `database` on the test server."""
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


def fresh_database() -> Iterator[str]:
    """A new empty database (its journal URL), dropped afterwards: a fixture's body."""
    require_server()
    name = f"chat_test_{secrets.token_hex(6)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield journal_url(name)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def migrated_database() -> Iterator[str]:
    """`fresh_database`, migrated to the head: a fixture's body."""
    from chat_core.journal.migrate import upgrade

    for url in fresh_database():
        _in_thread(upgrade, url)
        yield url


async def empty_journal(url: str) -> None:
    """Remove every event (the append-only triggers set aside for this session only)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
    try:
        await conn.execute("SET session_replication_role = replica; TRUNCATE events")
    finally:
        await conn.close()


def stop_all(nodes: list[Any], stop_one: Callable[[Any], None]) -> None:
    """Stop every node (server processes on one database), then report the first that
    failed: one failure must not leave the others running."""
    failures: list[AssertionError] = []
    for node in nodes:
        try:
            stop_one(node)
        except AssertionError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
