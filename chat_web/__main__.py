"""`python -m chat_web serve ...`."""

from chat_web.cli import main

main()
