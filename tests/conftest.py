"""Shared fixtures. Helpers that tests import live in `chat_kit.py` beside this file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI machines are shared and noisy: a property must fail on its law, not on a slow example.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """The URL of a fresh (not yet created) SQLite journal in a temporary directory."""
    return f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture(scope="module")
def postgres_url():
    """A migrated PostgreSQL database of this test module's own (skipped where none runs)."""
    from pg_kit import migrated_database

    yield from migrated_database()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    from pg_kit import skipped_because

    if skipped_because:
        terminalreporter.write_line(
            f"PostgreSQL tests skipped: {skipped_because[0]};"
            " CHAT_POSTGRES_TESTS=required makes this a failure"
        )
