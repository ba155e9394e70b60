"""Several chat-web nodes on one PostgreSQL journal (docs/architecture.md section 6)."""
