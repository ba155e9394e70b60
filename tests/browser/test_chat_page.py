"""The browser client against a real server: chat both ways, history, safety, the keyboard."""

from __future__ import annotations

from typing import Any

from browser_kit import login_token, post_messages
from page_actions import chat_log, expect_once, join, log_in, say
from playwright.sync_api import expect


def test_page_is_served_with_a_policy_that_forbids_inline_script(web_server: Any) -> None:
    import httpx

    response = httpx.get(web_server.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    script = httpx.get(web_server.url + "/static/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_two_users_chat_both_ways_with_typing_and_presence(open_page: Any) -> None:
    alice, bob = open_page(), open_page()
    log_in(alice, "alice", "alice123")
    log_in(bob, "bob", "bob123")
    join(alice, "web-both")
    join(bob, "web-both")

    say(alice, "hello bob")
    expect_once(bob, "hello bob")
    expect_once(alice, "hello bob")
    bob.get_by_label("Message", exact=True).press_sequentially("hi al")
    expect(alice.get_by_text("bob is typing…")).to_be_visible()
    bob.get_by_label("Message", exact=True).press("Enter")
    expect_once(alice, "hi al")
    expect_once(bob, "hi al")
    expect(alice.get_by_text("bob is typing…")).to_be_hidden()
    expect(alice.get_by_role("listitem").filter(has_text="bob").filter(has_text="online"))
    members = alice.locator("#member-list")
    expect(members).to_contain_text("bob")
    expect(members).to_contain_text("online")


def test_unread_counts_and_live_room_list(open_page: Any) -> None:
    alice, bob = open_page(), open_page()
    log_in(alice, "alice", "alice123")
    log_in(bob, "bob", "bob123")
    join(alice, "web-count-a")
    join(alice, "web-count-b")  # alice now looks at b
    join(bob, "web-count-a")
    expect(alice.get_by_role("button", name="#web-count-a")).to_contain_text("2 members")
    say(bob, "one")
    say(bob, "two")
    expect(alice.get_by_role("button", name="#web-count-a")).to_contain_text("2 unread")
    alice.get_by_role("button", name="#web-count-a").click()
    expect_once(alice, "two")
    expect(alice.get_by_role("button", name="#web-count-a")).not_to_contain_text("unread")


def test_text_is_rendered_as_text_never_as_html(open_page: Any) -> None:
    alice, bob = open_page(), open_page()
    dialogs: list[str] = []
    bob.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(alice, "alice", "alice123")
    log_in(bob, "bob", "bob123")
    join(alice, "web-xss")
    join(bob, "web-xss")
    payload = "<img src=x onerror=alert(1)>"
    say(alice, payload)
    expect_once(bob, payload)
    expect(chat_log(bob).locator("img")).to_have_count(0)
    assert dialogs == []


def test_keyboard_only_register_join_and_send(open_page: Any) -> None:
    page = open_page()
    # The username field has the focus at load; everything below is typed.
    page.keyboard.type("keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard-secret")
    page.keyboard.press("Enter")  # "Log in": no such user yet
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.keyboard.press("Tab")  # to "Log in"
    page.keyboard.press("Tab")  # to "Register"
    expect(page.get_by_role("button", name="Register", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Connected")
    # A new user is in no room: the focus is on the room field.
    expect(page.get_by_label("Room", exact=True)).to_be_focused()
    page.keyboard.type("web-keys")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    page.keyboard.press("Enter")
    expect_once(page, "first line\nsecond line")
    expect(page.get_by_label("Message", exact=True)).to_have_value("")


def test_history_scroll_back_loads_older_pages(open_page: Any, web_server: Any) -> None:
    texts = [f"old message {n:03}" for n in range(1, 131)]
    post_messages(web_server.ws_url, login_token(web_server.url, "bob", "bob123"), "web-old", texts)
    page = open_page()
    log_in(page, "alice", "alice123")
    join(page, "web-old")
    expect_once(page, "old message 130")
    expect(chat_log(page).get_by_text("old message 001", exact=True)).to_have_count(0)
    # Scroll to the top until the first message is there (each scroll asks for one page).
    page.wait_for_function(
        """() => {
            const log = document.querySelector('[role="log"]');
            log.scrollTop = 0;
            return log.textContent.includes("old message 001");
        }""",
        polling=200,
    )
    expect(chat_log(page).locator(".message")).to_have_count(130)
    expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()
