"""Take the page's screenshots in docs/screenshots/: desktop and phone, light and dark.

Run from the project root: `.venv/bin/python tests/browser/screenshots.py` (needs Chromium).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_kit import FixedPortServer, free_port, login_token, post_messages
from page_actions import expect_once, join, log_in, say
from playwright.sync_api import expect, sync_playwright

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 760}, "phone": {"width": 390, "height": 844}}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = FixedPortServer(Path(tmp) / "data", port=free_port()).start()
        try:
            bob = login_token(server.url, "bob", "bob123")
            post_messages(
                server.ws_url,
                bob,
                "general",
                ["Morning! Deploy went fine.", "Anyone up for lunch at noon?"],
            )
            post_messages(server.ws_url, bob, "random", ["cat pictures, anyone?"])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                for size, viewport in SIZES.items():
                    for scheme in ("light", "dark"):
                        context = browser.new_context(viewport=viewport, color_scheme=scheme)
                        page = context.new_page()
                        page.goto(server.url + "/")
                        log_in(page, "alice", "alice123")
                        join(page, "random")
                        join(page, "general")
                        text = f"Sure, see you there ({size}, {scheme})"
                        say(page, text)
                        expect_once(page, text)
                        expect(page.locator("#member-list")).to_contain_text("bob")
                        page.screenshot(path=str(OUT / f"{size}-{scheme}.png"))
                        context.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
