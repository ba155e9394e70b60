"""What a user does on the page, as Playwright steps (accessible names only, as a user sees)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect


def log_in(page: Any, username: str, password: str, *, register: bool = False) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Register" if register else "Log in", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Connected")


def join(page: Any, room: str) -> None:
    page.get_by_label("Room", exact=True).fill(room)
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.get_by_role("heading", name=f"#{room}", exact=True)).to_be_visible()


def say(page: Any, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def chat_log(page: Any) -> Any:
    return page.get_by_role("log")


def expect_once(page: Any, text: str) -> None:
    """`text` is in the log exactly once, acknowledged (not pending)."""
    expect(chat_log(page).get_by_text(text, exact=True)).to_have_count(1)
    expect(chat_log(page).locator(".pending")).to_have_count(0)
