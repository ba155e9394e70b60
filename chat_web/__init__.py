"""The chat server: Litestar HTTP routes, the WebSocket endpoint, the hub, `chat-web`."""
