"""The page under moderation and across a server restart (a server of this module's own)."""

from __future__ import annotations

from typing import Any

from page_actions import chat_log, expect_once, join, log_in, say
from playwright.sync_api import expect


def test_a_moderator_kicks_and_bans_from_the_page_and_the_target_is_told(
    open_page: Any,
) -> None:
    moderator, victim = open_page(), open_page()
    log_in(moderator, "moderator", "mod123")
    log_in(victim, "troll", "troll-secret", register=True)
    join(moderator, "web-mod")
    join(victim, "web-mod")
    # A user sees no moderation controls.
    expect(victim.get_by_role("button", name="Actions for moderator")).to_have_count(0)
    expect(victim.get_by_role("button", name="Kick", exact=True)).to_have_count(0)

    moderator.get_by_role("button", name="Actions for troll").click()
    moderator.get_by_label("Reason").fill("off topic")
    moderator.get_by_role("button", name="Kick", exact=True).click()
    kicked = "You were kicked from #web-mod by moderator: off topic."
    expect(victim.get_by_text(kicked)).to_be_visible()

    join(victim, "web-mod")
    moderator.get_by_role("button", name="Actions for troll").click()
    moderator.get_by_label("Duration").fill("10")
    moderator.get_by_label("Reason").fill("flooding")
    moderator.get_by_role("button", name="Ban", exact=True).click()
    expect(victim.get_by_text("You were banned until")).to_contain_text("by moderator: flooding")
    expect(victim.get_by_label("Username")).to_be_visible()
    victim.get_by_label("Password").fill("troll-secret")
    victim.get_by_role("button", name="Log in", exact=True).click()
    expect(victim.get_by_role("alert")).to_contain_text("This account is banned")

    moderator.get_by_text("Banned users").click()
    expect(moderator.get_by_label("User to unban")).to_have_value("troll")
    moderator.get_by_role("button", name="Unban", exact=True).click()
    expect(moderator.get_by_text("troll is unbanned.")).to_be_visible()
    victim.get_by_role("button", name="Log in", exact=True).click()
    expect(victim.get_by_role("status")).to_have_text("Connected")


def test_an_admin_announces_and_deletes_a_room(open_page: Any) -> None:
    admin, alice = open_page(), open_page()
    log_in(admin, "admin", "admin123")
    log_in(alice, "alice", "alice123")
    join(admin, "web-doomed")
    join(alice, "web-doomed")
    admin.get_by_text("Announcement to everyone").click()
    admin.get_by_label("Announcement").fill("maintenance at noon")
    admin.get_by_role("button", name="Announce", exact=True).click()
    expect(alice.get_by_role("alert").filter(has_text="maintenance at noon")).to_be_visible()
    expect(alice.get_by_role("button", name="Delete room")).to_have_count(0)
    admin.get_by_role("button", name="Delete room", exact=True).click()
    expect(alice.get_by_text("#web-doomed was deleted by admin.")).to_be_visible()
    expect(alice.get_by_role("button", name="#web-doomed")).to_have_count(0)


def test_both_pages_resume_after_a_restart_and_a_message_sent_while_down_arrives_once(
    open_page: Any, web_server: Any
) -> None:
    alice, bob = open_page(), open_page()
    log_in(alice, "alice", "alice123")
    log_in(bob, "bob", "bob123")
    join(alice, "web-restart")
    join(bob, "web-restart")
    say(alice, "before the restart")
    expect_once(bob, "before the restart")

    assert web_server.restart() == 0
    expect(alice.get_by_role("status")).to_have_text("Connected")
    expect(bob.get_by_role("status")).to_have_text("Connected")
    say(bob, "after the restart")
    expect_once(alice, "after the restart")
    say(alice, "alice after the restart")
    expect_once(bob, "alice after the restart")

    assert web_server.stop() == 0
    expect(alice.get_by_role("status")).not_to_have_text("Connected")
    say(alice, "typed while the server was down")
    expect(chat_log(alice).locator(".pending")).to_have_count(1)
    web_server.start()
    for page in (alice, bob):
        expect(page.get_by_role("status")).to_have_text("Connected")
        for text in (
            "before the restart",
            "after the restart",
            "alice after the restart",
            "typed while the server was down",
        ):
            expect_once(page, text)
