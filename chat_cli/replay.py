"""`chat-cli replay`: rebuild the chat's state offline from the journal, never writing to it.

The journal is opened read-only (`open_journal(url, readonly=True)`: SQLite `mode=ro`, or a
PostgreSQL session whose transactions are read-only; no migration, no lock), so the tool is
safe on a live server's journal. The summary state is folded by
`chat_core.journal.replay.replay`, the very fold the server runs at start-up, so what this
prints is what the server would hold. The per-tag counts and times come from a second, cheap pass
over the raw rows (no decoding), bounded by the folded head so both passes see the same rows
even while the server appends.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from sqlalchemy.exc import DBAPIError

from chat_cli.verify import verification_text, verify
from chat_cli.visible import visible_json, visible_lines
from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.domain.rules import room_key
from chat_core.domain.state import ChatState, active_ban, member_names
from chat_core.errors import ChatError, DamagedJournal, UnsupportedJournal
from chat_core.journal.open import open_journal as open_any_journal
from chat_core.journal.port import JournalPort
from chat_core.journal.replay import replay
from chat_core.settings.paths import sqlite_file
from chat_core.settings.schema import database_url
from chat_core.settings.sources import load_settings

# Journals shorter than this replay in well under a second: a progress bar would only flicker.
PROGRESS_THRESHOLD = 50_000

Progress = Callable[[int], None]


class SourceError(Exception):
    """The journal to read cannot be found or named (a one-line message for the user)."""


class RoomSummary(msgspec.Struct, frozen=True, kw_only=True):
    room_id: str
    room_name: str
    created_by: str
    created_at: datetime
    members: list[str]
    message_count: int


class UserSummary(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: str
    created_at: datetime
    display_name: str | None = None


class BanSummary(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    until: datetime | None  # None: for ever
    reason: str | None
    by: str
    at: datetime


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The state of the chat as of `last_seq`: the JSON document of `replay --format json`."""

    journal: str
    events: int
    first_seq: int | None
    last_seq: int | None
    first_time: datetime | None
    last_time: datetime | None
    event_counts: dict[str, int]
    rooms: list[RoomSummary]
    users: list[UserSummary]
    bans: list[BanSummary]
    bans_as_of: datetime  # bans expire without an event: "active" is relative to this time


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    timestamp: datetime
    actor: str
    event: e.Event  # encoded with its `type` tag


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """One room's events in journal order: creation, joins, leaves, messages, kicks, bans."""

    room_id: str
    room_name: str
    events: list[TimelineEntry]


def journal_url(
    data_dir: Path | None,
    database: str | None,
    config: Path | None,
    *,
    environ: dict[str, str] | None = None,
) -> str:
    """The journal's database URL from at most one of the three options.

    With none, the server's own settings decide (CHAT__* variables, `./config.toml`), so the
    tool reads the journal `chat-web serve` would use from the same directory.
    """
    if data_dir is not None:
        # Read the directory's journal directly: a stray CHAT__DATABASE__URL must not redirect it.
        return f"sqlite+aiosqlite:///{(data_dir.expanduser().absolute() / 'chat.db').as_posix()}"
    if database is not None:
        if "://" not in database:
            # A plain path is friendlier to type than a URL.
            return f"sqlite+aiosqlite:///{Path(database).expanduser().absolute().as_posix()}"
        return database
    if config is not None and not config.is_file():
        raise SourceError(f"config file {config} does not exist")
    return database_url(load_settings(config_file=config, env=environ))


async def open_journal(url: str) -> JournalPort:
    """Open the journal read-only, with a clear message for a missing file."""
    path = sqlite_file(url)
    if path is not None:
        if not path.exists():
            raise SourceError(f"no journal at {path} (pass --data-dir, --database or --config)")
        if not path.is_file():
            raise SourceError(f"{path} is not a file")
    try:
        return await open_any_journal(url, readonly=True)
    except ChatError:
        raise
    except Exception as exc:  # a third-party error met here: translate it into one line
        raise UnsupportedJournal(f"{url} cannot be opened: {exc}") from exc


def _display_url(url: str) -> str:
    """The journal as shown to people: the file for SQLite, the URL without password else."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def summarize(journal: JournalPort, until: int | None, progress: Progress | None) -> Summary:
    """Fold the journal (up to `until`) and describe the resulting state."""
    # A window of one: the summary needs message counts, never the messages themselves.
    state, _report = await replay(journal, history_window=1, until=until, progress=progress)
    counts: Counter[str] = Counter()
    first_seq = first_at = last_at = None
    if state.seq > 0:
        # Bounded by the folded head: rows appended meanwhile by a live server are not counted.
        async for rows in journal.read_rows(0, state.seq):
            if first_seq is None:
                first_seq, first_at = rows[0].seq, rows[0].recorded_at
            counts.update(row.tag for row in rows)
            last_at = rows[-1].recorded_at
    first_time = codec.from_micros(first_at) if first_at is not None else None
    last_time = codec.from_micros(last_at) if last_at is not None else None
    # The bans in force now, or, for a past state (--until), at the time of its last event.
    as_of = last_time if until is not None and last_time is not None else datetime.now(UTC)
    return Summary(
        journal=_display_url(journal.url),
        events=sum(counts.values()),
        first_seq=first_seq,
        last_seq=state.seq or None,
        first_time=first_time,
        last_time=last_time,
        event_counts=dict(sorted(counts.items())),
        rooms=_rooms(state),
        users=_users(state),
        bans=_bans(state, as_of),
        bans_as_of=as_of,
    )


def _rooms(state: ChatState) -> list[RoomSummary]:
    return [
        RoomSummary(
            room_id=room.room_id,
            room_name=room.room_name,
            created_by=room.created_by,
            created_at=room.created_at,
            members=member_names(room),
            message_count=room.message_count,
        )
        for _, room in sorted(state.rooms.items())
    ]


def _users(state: ChatState) -> list[UserSummary]:
    # Never the password hashes: this output ends up in tickets and chat logs.
    return [
        UserSummary(
            username=account.username,
            role=account.role,
            created_at=account.created_at,
            display_name=account.display_name,
        )
        for _, account in sorted(state.accounts.items())
    ]


def _bans(state: ChatState, as_of: datetime) -> list[BanSummary]:
    out = []
    for key in sorted(state.bans.keys()):
        account = state.accounts.get(key)
        username = account.username if account is not None else key
        ban = active_ban(state, username, as_of)
        if ban is not None:
            out.append(
                BanSummary(
                    username=username, until=ban.until, reason=ban.reason, by=ban.by, at=ban.at
                )
            )
    return out


def _touches(event: e.Event, room_id: str) -> bool:
    """Whether an event belongs on a room's timeline."""
    if getattr(event, "room_id", None) == room_id:
        return True
    # Chat-wide kicks and bans are recorded on the system stream but remove from rooms.
    return isinstance(event, e.UserKicked | e.UserBanned) and room_id in event.rooms


async def timeline(journal: JournalPort, room: str, until: int | None) -> Timeline:
    """The events of one room (by name or id, any case), oldest first."""
    room_id = room_key(room)
    room_name: str | None = None
    entries: list[TimelineEntry] = []
    async for page in journal.read(0, until):
        for recorded in page:
            event = recorded.event
            if not _touches(event, room_id):
                continue
            if isinstance(event, e.RoomCreated):
                room_name = event.room_name
            entries.append(
                TimelineEntry(
                    seq=recorded.seq, timestamp=recorded.at, actor=recorded.actor, event=event
                )
            )
    if not entries:
        raise SourceError(f"no room {room!r} in the journal")
    return Timeline(room_id=room_id, room_name=room_name or room_id, events=entries)


def to_json(value: msgspec.Struct) -> str:
    """One indented JSON document."""
    return visible_json(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def summary_text(summary: Summary) -> list[str]:
    """The human-readable summary, one line per item."""
    lines = [f"journal: {summary.journal}"]
    if summary.events == 0:
        lines.append("events: 0 (empty journal)")
    else:
        lines.append(
            f"events: {summary.events} (seq {summary.first_seq}..{summary.last_seq},"
            f" {_when(summary.first_time)} .. {_when(summary.last_time)})"
        )
    lines.append("")
    lines.append("events by type:")
    width = max((len(tag) for tag in summary.event_counts), default=0)
    lines += [f"  {tag:<{width}}  {n}" for tag, n in summary.event_counts.items()]
    lines.append("")
    lines.append(f"rooms ({len(summary.rooms)}):")
    for room in summary.rooms:
        name = f" ({room.room_name})" if room.room_name != room.room_id else ""
        lines.append(
            f"  {room.room_id}{name}: {len(room.members)} members, {room.message_count} messages,"
            f" created by {room.created_by} {_when(room.created_at)}"
        )
        if room.members:
            lines.append(f"    members: {', '.join(room.members)}")
    lines.append("")
    lines.append(f"users ({len(summary.users)}):")
    width = max((len(user.username) for user in summary.users), default=0)
    lines += [f"  {user.username:<{width}}  {user.role}" for user in summary.users]
    lines.append("")
    lines.append(f"active bans ({len(summary.bans)}, as of {_when(summary.bans_as_of)}):")
    for ban in summary.bans:
        until = "for ever" if ban.until is None else f"until {_when(ban.until)}"
        reason = f": {ban.reason}" if ban.reason else ""
        lines.append(f"  {ban.username} {until}, by {ban.by}{reason}")
    return lines


def describe(event: e.Event) -> str:
    """One event of a room's timeline in words."""
    match event:
        case e.RoomCreated():
            return f"room {event.room_name!r} created by {event.created_by}"
        case e.UserJoined():
            return f"{event.username} joined"
        case e.UserLeft():
            return f"{event.username} left" + (
                "" if event.reason == "left" else f" ({event.reason})"
            )
        case e.MessageSent():
            return f"<{event.username}> {event.text}"
        case e.UserKicked():
            scope = "from the chat" if event.room_id is None else "from the room"
            reason = f": {event.reason}" if event.reason else ""
            return f"{event.username} kicked {scope} by {event.by}{reason}"
        case e.UserBanned():
            until = "for ever" if event.until is None else f"until {_when(event.until)}"
            reason = f": {event.reason}" if event.reason else ""
            return f"{event.username} banned {until} by {event.by}{reason}"
        case e.RoomDeleted():
            return f"room deleted by {event.by}"
        case _:
            return e.tag_of(event)


def timeline_text(line: Timeline) -> list[str]:
    """The human-readable timeline: seq, time, what happened."""
    width = len(str(line.events[-1].seq)) if line.events else 1
    out = [f"room {line.room_id} ({line.room_name}): {len(line.events)} events"]
    out += [
        f"{entry.seq:>{width}}  {_when(entry.timestamp)}  {describe(entry.event)}"
        for entry in line.events
    ]
    return out


async def run(
    url: str,
    *,
    until: int | None,
    room: str | None,
    as_json: bool,
    check: bool,
    echo: Callable[[str], None],
    show_progress: bool,
) -> int:
    """Carry out `chat-cli replay`; the exit code (0, or 1 when --verify finds a bad row)."""
    journal = await open_journal(url)
    try:
        return await _run(journal, until, room, as_json, check, echo, show_progress)
    except (sqlite3.Error, DBAPIError) as exc:
        # The file fails under a read: one line naming it, never a traceback.
        cause = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
        path = sqlite_file(url)
        if path is None:
            raise UnsupportedJournal(f"{_display_url(url)} cannot be read: {cause}") from exc
        raise DamagedJournal.at(path.absolute(), cause) from exc
    finally:
        await journal.close()


async def _run(
    journal: JournalPort,
    until: int | None,
    room: str | None,
    as_json: bool,
    check: bool,
    echo: Callable[[str], None],
    show_progress: bool,
) -> int:
    if room is not None:
        line = await timeline(journal, room, until)
        echo(to_json(line) if as_json else visible_lines(timeline_text(line)))
        return 0
    total = 0
    if show_progress:
        # --verify reports a damaged file itself: the bar is not worth failing for.
        with contextlib.suppress(sqlite3.Error, DBAPIError):
            head = await journal.head()
            total = head if until is None else min(until, head)
    with _ProgressBar(total) as progress:
        if check:
            result = await verify(journal, until, progress)
            echo(to_json(result) if as_json else visible_lines(verification_text(result)))
            return 0 if result.ok else 1
        summary = await summarize(journal, until, progress)
    echo(to_json(summary) if as_json else visible_lines(summary_text(summary)))
    return 0


class _ProgressBar:
    """A transient rich progress bar on stderr for `total` events; a no-op below the threshold."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bar: RichProgress | None = None

    def __enter__(self) -> Progress | None:
        if self._total < PROGRESS_THRESHOLD:
            return None
        self._bar = RichProgress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("replay", total=self._total)
        bar = self._bar
        return lambda done: bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
