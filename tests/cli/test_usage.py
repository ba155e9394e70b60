"""A misspelt option of `chat-cli` or `chat-web` is answered with the closest one."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from chat_cli.main import app as cli_app
from chat_web.cli import app as web_app


@pytest.mark.parametrize(
    ("app", "args", "suggestion"),
    [
        (cli_app, ["chat", "--usrname", "bob"], "Did you mean --username?"),
        (cli_app, ["--verson"], "Did you mean --version?"),
        (cli_app, ["admin", "disable", "--sever", "x", "bob"], "Did you mean --server?"),
        (web_app, ["serve", "--prot", "3000"], "Did you mean --port?"),
        (web_app, ["backup", "--data-dri", "d", "dest"], "Did you mean --data-dir?"),
    ],
)
def test_a_misspelt_option_suggests_the_closest(
    app: typer.Typer, args: list[str], suggestion: str
) -> None:
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2
    assert suggestion in done.output
    assert "Possible options" not in done.output


def test_an_option_like_no_other_gets_no_suggestion() -> None:
    done = CliRunner().invoke(cli_app, ["chat", "--zzz"])
    assert done.exit_code == 2
    assert "No such option: --zzz" in done.output
    assert "Did you mean" not in done.output
