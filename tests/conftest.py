"""Shared fixtures. Helpers that tests import live in `chat_kit.py` beside this file."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """The URL of a fresh (not yet created) SQLite journal in a temporary directory."""
    return f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
