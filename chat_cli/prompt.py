"""The prompt-toolkit input line of `chat-cli chat`: prompt, completion, toolbar, key bindings.

`InputLine` wraps one `PromptSession`: the prompt names the current room, the bottom toolbar
(the status line) counts down to the next reconnect try while disconnected and says who is
typing there (left out in dumb terminals, which cannot draw it), Tab completes
commands, rooms and usernames (`ChatCompleter`), and Ctrl-D ends the session even where
prompt-toolkit's own binding does not fire. What it shows is read from a `ChatView`, the few
attributes of `chat.Chat` it needs, so this module does not import the session logic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.utils import is_dumb_terminal

from chat_cli import commands as cmd
from chat_cli.visible import visible


class ChatView(Protocol):
    """What the input line reads of the chat's state."""

    current: str | None
    joined: dict[str, str]
    known_rooms: set[str]
    known_users: set[str]

    def typists(self, room_id: str | None) -> list[str]: ...

    def connection_note(self) -> str: ...


class ChatCompleter(Completer):
    """Commands after `/`, rooms after /join and /switch, usernames elsewhere."""

    def __init__(self, chat: ChatView) -> None:
        self.chat = chat

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        word = document.get_word_before_cursor(WORD=True)
        if text.startswith("/") and " " not in text:
            options: Iterable[str] = (f"/{name}" for name in cmd.COMMANDS)
        elif text.startswith(("/join ", "/switch ", "/leave ")) and text.count(" ") == 1:
            options = sorted(set(self.chat.joined) | self.chat.known_rooms)
        else:
            options = sorted(self.chat.known_users, key=str.lower)
        for option in options:
            if option.lower().startswith(word.lower()) and option != word:
                yield Completion(option, start_position=-len(word))


def key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("c-d")
    def _end_of_input(event: KeyPressEvent) -> None:
        # prompt-toolkit's own Ctrl-D binding does not fire in dumb terminals: ours does.
        if event.current_buffer.text:
            event.current_buffer.delete()
        else:
            event.app.exit(exception=EOFError())

    return bindings


class InputLine:
    """One prompt-toolkit session reading the user's lines; `on_change` sees every edit."""

    def __init__(self, chat: ChatView, on_change: Callable[[Buffer], None]) -> None:
        self.chat = chat
        dumb = is_dumb_terminal()
        self.session: PromptSession[str] = PromptSession(
            key_bindings=key_bindings(),
            completer=ChatCompleter(chat),
            complete_while_typing=False,
            bottom_toolbar=None if dumb else self.toolbar,
        )
        self.session.default_buffer.on_text_changed += on_change

    def prompt_text(self) -> str:
        return visible(f"[{self.chat.current or 'no room'}] > ")

    def toolbar(self) -> str:
        """The status line: the connection while it is down, and who is typing."""
        parts = [self.chat.connection_note()]
        names = self.chat.typists(self.chat.current)
        if names:
            parts.append(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} typing...")
        return visible(" | ".join(part for part in parts if part))

    def restore(self, text: str) -> None:
        """Put a refused line back into an empty input, to be sent again later."""
        buffer = self.session.default_buffer
        if not buffer.text:
            buffer.text = text
            buffer.cursor_position = len(text)
            self.redraw()

    async def read(self) -> str | None:
        """The next line typed; None at Ctrl-D or Ctrl-C."""
        try:
            return await self.session.prompt_async(self.prompt_text)
        except (EOFError, KeyboardInterrupt):
            return None

    def redraw(self) -> None:
        """Draw the prompt and toolbar again (the room or the typists changed)."""
        if self.session.app.is_running:
            self.session.app.invalidate()
