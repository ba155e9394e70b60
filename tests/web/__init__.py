"""Socket-free tests of chat_web. A package, so that its conftest is `web.conftest` and never
shadows the `conftest` module the end-to-end tests import (`from conftest import ...`)."""
