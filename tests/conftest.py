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
