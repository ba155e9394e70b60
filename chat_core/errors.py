"""The one error tree of the chat, each class carrying its JSON-RPC code and reason.

    ChatError
    ├── Rejected                      a command refused by the rules (decide raises these)
    │   ├── InvalidParams             -32602  invalid_params, message_too_long, empty_message,
    │   │                                     invalid_text, invalid_room_name, invalid_level,
    │   │                                     invalid_username
    │   ├── Forbidden                 -32002  insufficient_role, cannot_moderate_peer,
    │   │                                     cannot_target_self
    │   ├── NotFound                  -32003  room_not_found, user_not_found
    │   ├── NotAMember                -32004  not_a_member
    │   ├── RoomFull                  -32005  room_full
    │   ├── Banned                    -32006  banned
    │   ├── UsernameTaken             -32009  username_taken (HTTP 409 at registration)
    │   └── RateLimited               -32029  rate_limited
    ├── Unauthenticated               -32001  token_expired, invalid_token
    ├── InternalError                 -32603  internal_error
    └── JournalError                  the journal could not be opened, read or written
        ├── JournalConflict           another writer appended past our head
        ├── CorruptJournal            a row that cannot be decoded (carries its seq)
        ├── DamagedJournal            the file fails SQLite's check, or rows are missing
        ├── UnsupportedJournal        a newer schema, a foreign or locked database file
        └── StorageError              the data directory or journal cannot be created or written

The JSON-RPC wire codes of docs/protocol.md section 3 are the `code` attributes; a test pins them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar


class ChatError(Exception):
    """Root of every error the chat raises on purpose."""

    code: ClassVar[int] = -32603
    default_reason: ClassVar[str] = "internal_error"

    def __init__(self, message: str, reason: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.data = data

    def error_object(self) -> dict[str, Any]:
        """The JSON-RPC error object for this error."""
        return {
            "code": self.code,
            "message": self.message,
            "data": {"reason": self.reason, **self.data},
        }


class Rejected(ChatError):
    """A command refused by the domain rules; nothing was appended."""


class InvalidParams(Rejected):
    code = -32602
    default_reason = "invalid_params"


class Forbidden(Rejected):
    code = -32002
    default_reason = "insufficient_role"


class NotFound(Rejected):
    code = -32003
    default_reason = "not_found"


class NotAMember(Rejected):
    code = -32004
    default_reason = "not_a_member"


class RoomFull(Rejected):
    code = -32005
    default_reason = "room_full"


class Banned(Rejected):
    code = -32006
    default_reason = "banned"


class UsernameTaken(Rejected):
    code = -32009
    default_reason = "username_taken"


class RateLimited(Rejected):
    code = -32029
    default_reason = "rate_limited"


class Unauthenticated(ChatError):
    code = -32001
    default_reason = "token_expired"


class InternalError(ChatError):
    code = -32603
    default_reason = "internal_error"


class JournalError(ChatError):
    """The journal could not be opened, read or written."""


class JournalConflict(JournalError):
    """Another writer appended to the journal after the head this process decided against."""


class CorruptJournal(JournalError):
    """A journal row could not be decoded; start-up stops at it."""

    def __init__(self, seq: int, why: str) -> None:
        super().__init__(f"journal row seq={seq} cannot be decoded: {why}", "corrupt_journal")
        self.seq = seq


class DamagedJournal(JournalError):
    """The journal file is damaged (SQLite's check fails, or rows replay did not see): it is
    never served."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "damaged_journal")

    @classmethod
    def at(cls, path: Path, what: str) -> DamagedJournal:
        """The one line that stops start-up: the file, what is wrong, what to do."""
        source = f"--data-dir {path.parent}" if path.name == "chat.db" else f"--database {path}"
        return cls(
            f"journal {path} is damaged ({what}): restore it from a backup, or run"
            f" `chat-cli replay --verify {source}` to see what is readable"
        )

    @classmethod
    def of(cls, url: str, what: str) -> DamagedJournal:
        """The same line for a journal in a database server (`url` shown without password)."""
        return cls(
            f"journal {url} is damaged ({what}): restore it from a backup, or run"
            f" `chat-cli replay --verify --database URL` to see what is readable"
        )


class UnsupportedJournal(JournalError):
    """The database is not a journal this version can use (newer schema, foreign, locked)."""


class StorageError(JournalError):
    """The data directory or the journal file cannot be created or written (the OS says why)."""


# JSON-RPC codes of docs/protocol.md section 3 that are not tied to a domain rejection.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601

ERROR_CODES: dict[type[ChatError], int] = {
    cls: cls.code
    for cls in (
        InvalidParams,
        Forbidden,
        NotFound,
        NotAMember,
        RoomFull,
        Banned,
        UsernameTaken,
        RateLimited,
        Unauthenticated,
        InternalError,
    )
}
