"""Settings: layering of sources, validation messages naming the key, the JWT secret file."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from chat_core.settings.schema import (
    DEMO_USERS,
    AdminUser,
    Settings,
    SettingsError,
)
from chat_core.settings.sources import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
SECRET = "s" * 32


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty directory, so no ./config.toml leaks in."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# Defaults and the example file


def test_defaults_without_any_source() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 3000
    assert settings.chat.default_rooms == ["general"]
    assert settings.auth.jwt_secret is None
    assert settings.database.synchronous == "FULL"


def test_example_config_loads_into_the_defaults() -> None:
    assert load_settings(EXAMPLE, env={}) == Settings()


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")

    def keys(cls: type[msgspec.Struct], prefix: str) -> list[tuple[str, str]]:
        found = []
        for f in msgspec.structs.fields(cls):
            if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
                found += keys(f.type, f"{prefix}{f.name}.")
            else:
                found.append((prefix.rstrip("."), f.name))
        return found

    for section, key in keys(Settings, ""):
        assert f"[{section}]" in text
        body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        # Optional keys are shown commented out.
        assert f"\n{key} = " in body or f"\n# {key} = " in body, f"{section}.{key}"


def test_demo_users_are_the_documented_four() -> None:
    assert DEMO_USERS == (
        ("admin", "admin123", "admin"),
        ("moderator", "mod123", "moderator"),
        ("alice", "alice123", "user"),
        ("bob", "bob123", "user"),
    )


# The config file


def test_explicit_config_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.toml", "[server]\nport = 4000\n[server.cors]\nallow_any_origin = false"
    )
    settings = load_settings(path, env={})
    assert settings.server.port == 4000
    assert settings.server.cors.allow_any_origin is False
    # Keys the file leaves out keep their defaults.
    assert settings.server.host == "127.0.0.1"


def test_config_file_from_env_variable(tmp_path: Path) -> None:
    path = write(tmp_path / "b.toml", "[chat]\nmax_message_length = 500\n")
    settings = load_settings(env={"CHAT_CONFIG_FILE": str(path)})
    assert settings.chat.max_message_length == 500


def test_config_toml_in_cwd_is_read_when_present(tmp_path: Path) -> None:
    write(tmp_path / "config.toml", '[logging]\nformat = "json"\n')
    assert load_settings(env={}).logging.format == "json"


def test_explicit_config_file_wins_over_env_variable_and_cwd(tmp_path: Path) -> None:
    write(tmp_path / "config.toml", "[server]\nport = 1\n")
    other = write(tmp_path / "other.toml", "[server]\nport = 2\n")
    given = write(tmp_path / "given.toml", "[server]\nport = 3\n")
    assert load_settings(given, env={"CHAT_CONFIG_FILE": str(other)}).server.port == 3
    assert load_settings(env={"CHAT_CONFIG_FILE": str(other)}).server.port == 2


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml", env={})


def test_malformed_toml_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", "[server\nport = 1\n")
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(path, env={})


def test_config_file_admin_users_table_array(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        '[[admin.users]]\nusername = "root"\npassword = "rootpass1"\nrole = "admin"\n',
    )
    users = load_settings(path, env={}).admin.users
    assert users == [AdminUser(username="root", password="rootpass1", role="admin")]


# Environment variables


def test_env_scalars_are_converted_from_strings() -> None:
    settings = load_settings(
        env={
            "CHAT__SERVER__PORT": "8080",
            "CHAT__CHAT__PERSIST_MESSAGES": "false",
            "CHAT__CHAT__TYPING_TIMEOUT_SECONDS": "2.5",
            "CHAT__DATABASE__SYNCHRONOUS": "normal",
        }
    )
    assert settings.server.port == 8080
    assert settings.chat.persist_messages is False
    assert settings.chat.typing_timeout_seconds == 2.5
    assert settings.database.synchronous == "NORMAL"


def test_env_names_are_case_insensitive() -> None:
    assert load_settings(env={"chat__Server__port": "81"}).server.port == 81


def test_env_nested_section_sets_cors() -> None:
    settings = load_settings(env={"CHAT__SERVER__CORS__ALLOW_ANY_ORIGIN": "false"})
    assert settings.server.cors.allow_any_origin is False


def test_peer_urls_are_http_base_urls() -> None:
    env = {"CHAT__SERVER__PEER_URLS": "https://b.example, http://10.0.0.3:3000/chat/"}
    peers = load_settings(env=env).server.peer_urls
    assert peers == ["https://b.example", "http://10.0.0.3:3000/chat/"]
    assert load_settings(env={}).server.peer_urls == []
    for bad in ("ftp://b.example", "b.example", "https://b.example/?x=1"):
        with pytest.raises(SettingsError, match=r"server\.peer_urls"):
            load_settings(env={"CHAT__SERVER__PEER_URLS": bad})


def test_env_list_accepts_json() -> None:
    settings = load_settings(env={"CHAT__CHAT__DEFAULT_ROOMS": '["lobby", "random"]'})
    assert settings.chat.default_rooms == ["lobby", "random"]


def test_env_list_accepts_comma_separated_values() -> None:
    env = {"CHAT__SERVER__CORS__ALLOWED_ORIGINS": "https://a.example, https://b.example"}
    origins = load_settings(env=env).server.cors.allowed_origins
    assert origins == ["https://a.example", "https://b.example"]


def test_env_list_item_sets_admin_user() -> None:
    settings = load_settings(
        env={
            "CHAT__ADMIN__USERS__0__USERNAME": "root",
            "CHAT__ADMIN__USERS__0__PASSWORD": "rootpass1",
            "CHAT__ADMIN__USERS__0__ROLE": "admin",
            "CHAT__ADMIN__USERS__1__USERNAME": "carol",
            "CHAT__ADMIN__USERS__1__PASSWORD": "carolpass",
        }
    )
    assert settings.admin.users == [
        AdminUser(username="root", password="rootpass1", role="admin"),
        AdminUser(username="carol", password="carolpass", role="user"),
    ]


def test_env_list_items_are_ordered_numerically() -> None:
    env = {}
    for i in range(12):
        env[f"CHAT__CHAT__DEFAULT_ROOMS__{i}"] = f"room{i}"
    assert load_settings(env=env).chat.default_rooms == [f"room{i}" for i in range(12)]


def test_env_list_item_updates_the_file_item(tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.toml", '[[admin.users]]\nusername = "root"\npassword = "rootpass1"\n'
    )
    users = load_settings(path, env={"CHAT__ADMIN__USERS__0__ROLE": "moderator"}).admin.users
    assert users == [AdminUser(username="root", password="rootpass1", role="moderator")]


def test_env_list_item_with_a_gap_is_an_error() -> None:
    with pytest.raises(SettingsError, match=r"admin\.users\.1: .*without gaps"):
        load_settings(env={"CHAT__ADMIN__USERS__1__USERNAME": "root"})


def test_incomplete_env_list_item_names_the_item_and_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"CHAT__ADMIN__USERS__0__USERNAME": "root"})
    message = str(caught.value)
    assert "admin.users.0" in message
    assert "password" in message
    assert "CHAT__ADMIN__USERS__0__USERNAME" in message


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path / "f.toml", "[server]\nport = 4000\nhost = '0.0.0.0'\n")
    settings = load_settings(path, env={"CHAT__SERVER__PORT": "5000"})
    assert settings.server.port == 5000
    assert settings.server.host == "0.0.0.0"


def test_short_variables_set_their_keys() -> None:
    settings = load_settings(
        env={
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "JWT_SECRET": SECRET,
            "CHAT_DATA_DIR": "/srv/chat",
            "LOG_LEVEL": "WARNING",
        }
    )
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 9000
    assert settings.auth.jwt_secret == SECRET
    assert settings.chat.data_dir == "/srv/chat"
    assert settings.logging.level == "warning"


def test_short_variables_win_over_prefixed_ones() -> None:
    settings = load_settings(env={"PORT": "9000", "CHAT__SERVER__PORT": "8000"})
    assert settings.server.port == 9000


def test_empty_short_variable_counts_as_unset() -> None:
    assert load_settings(env={"HOST": "", "PORT": ""}).server.host == "127.0.0.1"


def test_unrelated_env_variables_are_ignored() -> None:
    assert load_settings(env={"CHAT_SERVER_URL": "http://x", "PATH": "/bin"}) == Settings()


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the developer's shell exports must not leak in.
    for name in list(os.environ):
        if name.upper().startswith("CHAT_") or name in {"HOST", "PORT", "JWT_SECRET", "LOG_LEVEL"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE", "5")
    assert load_settings().rate_limit.messages_per_minute == 5


# Overrides


def test_overrides_win_over_env_and_none_is_ignored() -> None:
    settings = load_settings(
        env={"PORT": "9000", "CHAT_DATA_DIR": "/env/dir"},
        overrides={"server.port": 0, "chat.data_dir": None},
    )
    assert settings.server.port == 0
    assert settings.chat.data_dir == "/env/dir"


def test_override_accepts_a_path(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"chat.data_dir": tmp_path})
    assert settings.chat.data_dir == str(tmp_path)


# Errors name the key


def test_unknown_key_names_the_key() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"CHAT__SERVER__PROT": "1"})
    assert str(caught.value) == "unknown setting server.prot (from CHAT__SERVER__PROT)"


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.toml", "[chat]\nmax_mesage_length = 5\n")
    with pytest.raises(
        SettingsError, match=r"unknown setting chat\.max_mesage_length \(from .*x\.toml\)"
    ):
        load_settings(path, env={})


def test_unknown_section_names_the_section(tmp_path: Path) -> None:
    path = write(tmp_path / "s.toml", "[sever]\nport = 1\n")
    with pytest.raises(SettingsError, match=r"unknown setting sever\b"):
        load_settings(path, env={})


def test_unknown_override_names_the_key() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting server\.nope"):
        load_settings(env={}, overrides={"server.nope": 1})


def test_bad_value_names_the_key_and_the_constraint(tmp_path: Path) -> None:
    path = write(tmp_path / "v.toml", "[chat]\nmax_message_length = -5\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(
        "invalid setting chat.max_message_length: expected an integer >= 1, got -5"
    )


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"PORT": "70000"}, "server.port"),
        ({"PORT": "http"}, "server.port"),
        ({"CHAT__SERVER__MAX_FRAME_BYTES": "0"}, "server.max_frame_bytes"),
        ({"CHAT__AUTH__BCRYPT_ROUNDS": "3"}, "auth.bcrypt_rounds"),
        ({"CHAT__AUTH__HASH_CONCURRENCY": "0"}, "auth.hash_concurrency"),
        ({"CHAT__CHAT__MAX_USERS_PER_ROOM": "-1"}, "chat.max_users_per_room"),
        ({"CHAT__CHAT__TYPING_TIMEOUT_SECONDS": "0"}, "chat.typing_timeout_seconds"),
        ({"CHAT__CHAT__PERSIST_MESSAGES": "maybe"}, "chat.persist_messages"),
        ({"CHAT__CHAT__DEFAULT_ROOMS": "ok,-bad"}, "chat.default_rooms.1"),
        ({"CHAT__CHAT__DEFAULT_ROOMS": "[1,"}, "chat.default_rooms"),
        ({"CHAT__DATABASE__SYNCHRONOUS": "OFF"}, "database.synchronous"),
        ({"CHAT__DATABASE__URL": "not a url"}, "database.url"),
        ({"LOG_LEVEL": "verbose"}, "logging.level"),
        ({"CHAT__LOGGING__FORMAT": "xml"}, "logging.format"),
        ({"CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "0"}, "rate_limit.login_attempts_per_hour"),
        ({"CHAT__RATE_LIMIT__REGISTRATIONS_PER_HOUR": "0"}, "rate_limit.registrations_per_hour"),
        ({"CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "0"}, "rate_limit.requests_per_minute"),
        ({"CHAT__RATE_LIMIT__ROOMS_PER_HOUR": "0"}, "rate_limit.rooms_per_hour"),
    ],
)
def test_bad_env_value_names_key_and_variable(env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=rf"^invalid setting {key.replace('.', '[.]')}: ") as e:
        load_settings(env=env)
    assert f"(from {next(iter(env))})" in str(e.value)


def test_wrong_type_in_file_is_refused_not_coerced(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", '[server]\nport = "3000"\n')
    with pytest.raises(
        SettingsError, match=r"invalid setting server\.port: expected an integer, got '3000'"
    ):
        load_settings(path, env={})


def test_a_number_variable_says_a_number_is_expected() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"CHAT__SERVER__PORT": "abc"})
    assert str(caught.value) == (
        "invalid setting server.port: expected an integer, got 'abc' (from CHAT__SERVER__PORT)"
    )


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path / "s.toml", "[auth]\njwt_secret = 12345678901234567890123456789012345\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert "12345678" not in str(caught.value)
    assert "expected a string" in str(caught.value)


def test_bad_admin_user_names_the_item_field(tmp_path: Path) -> None:
    text = '[[admin.users]]\nusername = "x"\npassword = "longenough"\n'
    with pytest.raises(SettingsError, match=r"invalid setting admin\.users\.0\.username"):
        load_settings(write(tmp_path / "a.toml", text), env={})


def test_configured_user_password_must_be_strong() -> None:
    env = {"CHAT__ADMIN__USERS": '[{"username": "root", "password": "short"}]'}
    with pytest.raises(SettingsError, match=r"admin\.users\.0\.password") as caught:
        load_settings(env=env)
    # The password itself never reaches a message (messages end up in logs).
    assert "short'" not in str(caught.value)


def test_duplicate_configured_usernames_are_refused() -> None:
    # Usernames are unique case-insensitively.
    users = (
        '[{"username": "Root", "password": "rootpass1"},'
        ' {"username": "root", "password": "rootpass2"}]'
    )
    with pytest.raises(SettingsError, match=r"admin\.users\.1\.username: duplicate"):
        load_settings(env={"CHAT__ADMIN__USERS": users})


def test_default_room_longer_than_room_name_limit_is_refused() -> None:
    env = {"CHAT__CHAT__MAX_ROOM_NAME_LENGTH": "3", "CHAT__CHAT__DEFAULT_ROOMS": "abc,abcd"}
    with pytest.raises(SettingsError, match=r"chat\.default_rooms\.1"):
        load_settings(env=env)


def test_settings_error_is_a_chat_error() -> None:
    from chat_core.errors import ChatError

    assert issubclass(SettingsError, ChatError)


def test_settings_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]


def test_repr_hides_secrets() -> None:
    settings = load_settings(
        env={
            "JWT_SECRET": "topsecret-" * 4,
            "CHAT__ADMIN__USERS__0__USERNAME": "root",
            "CHAT__ADMIN__USERS__0__PASSWORD": "hunter2hunter2",
        }
    )
    assert "topsecret" not in repr(settings)
    assert "hunter2" not in repr(settings)


# Database URL
