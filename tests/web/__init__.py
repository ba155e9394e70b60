"""Socket-free tests of chat_web. A package, so that its conftest is `web.conftest` and
never clashes with another directory's `conftest`."""
