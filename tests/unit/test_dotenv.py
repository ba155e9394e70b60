"""`.env` files: the convention's lines, their place among the sources, a bad line's error."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_core.settings import dotenv
from chat_core.settings.schema import SettingsError
from chat_core.settings.sources import load_settings

SECRET = "s" * 40


def test_dotenv_lines_follow_the_convention() -> None:
    text = (
        "# a comment\n\n"
        f"JWT_SECRET={SECRET}\n"
        "export CHAT__CHAT__MAX_MESSAGE_LENGTH = 500\n"
        'QUOTED="a # kept"\n'
        "SINGLE='  spaced'\n"
        "EMPTY=\n"
    )
    assert dotenv.parse(text, ".env") == {
        "JWT_SECRET": SECRET,
        "CHAT__CHAT__MAX_MESSAGE_LENGTH": "500",
        "QUOTED": "a # kept",
        "SINGLE": "  spaced",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("line", "why"),
    [("no equals sign", "expected KEY=VALUE"), ("1BAD=x", "expected KEY=VALUE"),
     ("KEY=\"open", "unterminated quote")],
)  # fmt: skip
def test_a_bad_line_is_named_by_its_number_without_its_text(line: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        dotenv.parse(f"# ok\nA=1\n{line}\n", "/srv/chat/.env")
    assert caught.value.message == f"bad line 3 in /srv/chat/.env: {why}"
    assert line not in caught.value.message


def test_dotenv_is_below_the_environment_and_above_the_toml_file(tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text("[chat]\nmax_message_length = 100\nmax_room_name_length = 10\n")
    env_file = tmp_path / "other.env"
    env_file.write_text(
        "CHAT__CHAT__MAX_MESSAGE_LENGTH=200\nCHAT__CHAT__MAX_ROOM_NAME_LENGTH=20\n"
        f"JWT_SECRET={SECRET}\n"
    )
    real = {"CHAT__CHAT__MAX_MESSAGE_LENGTH": "300"}
    settings = load_settings(toml, env=real, env_file=env_file)
    assert settings.chat.max_message_length == 300  # the real environment wins
    assert settings.chat.max_room_name_length == 20  # .env wins over the TOML file
    assert settings.auth.jwt_secret == SECRET
    assert load_settings(toml, env={}).chat.max_room_name_length == 10


def test_dotenv_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JWT_SECRET", "CHAT_CONFIG_FILE", "CHAT__CHAT__MAX_MESSAGE_LENGTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CHAT__CHAT__MAX_MESSAGE_LENGTH=42\n")
    assert load_settings().chat.max_message_length == 42
    monkeypatch.setenv("CHAT__CHAT__MAX_MESSAGE_LENGTH", "43")
    assert load_settings().chat.max_message_length == 43


def test_a_named_env_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"cannot read env file .*missing\.env: no such file"):
        load_settings(env={}, env_file=tmp_path / "missing.env")
