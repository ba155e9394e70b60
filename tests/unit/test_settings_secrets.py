"""Settings: the database URL, and the JWT secret (configured, or generated and kept)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from chat_core.settings.schema import (
    AuthSettings,
    ChatSettings,
    DatabaseSettings,
    Settings,
    SettingsError,
    database_url,
    resolve_jwt_secret,
    sqlite_path,
)
from chat_core.settings.sources import load_settings

SECRET = "s" * 32


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty directory (relative data directories resolve there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_default_database_url_is_sqlite_in_the_absolute_data_dir(tmp_path: Path) -> None:
    settings = load_settings(env={"CHAT_DATA_DIR": "data"})
    expected = (tmp_path / "data" / "chat.db").absolute()
    assert database_url(settings) == f"sqlite+aiosqlite:///{expected.as_posix()}"
    assert sqlite_path(settings) == expected


def test_configured_database_url_is_used_as_is() -> None:
    url = "postgresql+asyncpg://chat@db/chat"
    settings = load_settings(env={"CHAT__DATABASE__URL": url})
    assert database_url(settings) == url
    assert sqlite_path(settings) is None


def test_sqlite_path_of_a_configured_sqlite_url(tmp_path: Path) -> None:
    file_url = Settings(database=DatabaseSettings(url="sqlite:///rel/chat.db"))
    assert sqlite_path(file_url) == tmp_path / "rel" / "chat.db"
    memory = Settings(database=DatabaseSettings(url="sqlite+aiosqlite:///:memory:"))
    assert sqlite_path(memory) is None


# The JWT secret


def test_configured_jwt_secret_is_used() -> None:
    settings = load_settings(env={"JWT_SECRET": SECRET})
    assert resolve_jwt_secret(settings) == SECRET


def test_short_jwt_secret_refused() -> None:
    with pytest.raises(SettingsError, match=r"auth\.jwt_secret.*32 bytes.*\(from JWT_SECRET\)"):
        load_settings(env={"JWT_SECRET": "s" * 31})
    # Built directly, the settings skip validation; the secret is still refused where used.
    with pytest.raises(SettingsError, match=r"auth\.jwt_secret"):
        resolve_jwt_secret(Settings(auth=AuthSettings(jwt_secret="short")))


def test_jwt_secret_length_counts_utf8_bytes() -> None:
    # 11 characters of 3 bytes each: 33 bytes.
    assert load_settings(env={"JWT_SECRET": "€" * 11}).auth.jwt_secret == "€" * 11


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_generated_secret_is_kept_with_mode_0600(tmp_path: Path) -> None:
    data = tmp_path / "new" / "dir"
    settings = Settings(chat=ChatSettings(data_dir=str(data)))
    first = resolve_jwt_secret(settings)
    assert len(first.encode()) >= 32
    secret_file = data / "jwt_secret"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    # Kept: the same secret on the next start, so tokens survive restarts.
    assert resolve_jwt_secret(settings) == first
    # No temporary files are left behind.
    assert sorted(p.name for p in data.iterdir()) == ["jwt_secret"]


def test_existing_secret_file_is_read(tmp_path: Path) -> None:
    write(tmp_path / "jwt_secret", SECRET + "\n")
    settings = Settings(chat=ChatSettings(data_dir=str(tmp_path)))
    assert resolve_jwt_secret(settings) == SECRET


def test_short_secret_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "jwt_secret", "short")
    settings = Settings(chat=ChatSettings(data_dir=str(tmp_path)))
    with pytest.raises(SettingsError, match=r"auth\.jwt_secret.*jwt_secret\)"):
        resolve_jwt_secret(settings)
