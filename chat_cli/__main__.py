"""`python -m chat_cli`: the same as the `chat-cli` console script."""

from chat_cli.main import main

main()
