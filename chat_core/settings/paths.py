"""Where a SQLite journal lives on disk, and making sure it can live there.

The data directory holds every password hash and message: it is created 0700 and the journal
files 0600 (SQLite gives its -wal and -shm files the mode of the database file). Each failure
is a `StorageError` naming the path and the OS's own reason.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from chat_core.errors import StorageError

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite's companions of a journal in WAL mode; each must be writable when present.
COMPANIONS = ("-wal", "-shm")


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory or another database."""
    # Imported here: SQLAlchemy is slow to import, and the settings import this module.
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def ensure_dir(directory: Path) -> None:
    """Create `directory` (and its parents) if missing, the directory itself with mode 0700."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
        # mkdir's mode passes through the umask; make it exact.
        os.chmod(directory, DIR_MODE)
    except OSError as exc:
        raise StorageError(f"cannot create the data directory {directory}: {_reason(exc)}") from exc


def ensure_sqlite_file(url: str) -> None:
    """Create a missing SQLite journal as an empty file with mode 0600, in a 0700 directory,
    before SQLite (or alembic) opens it: SQLite would create it world-readable."""
    path = sqlite_file(url)
    if path is None:
        return
    ensure_dir(path.absolute().parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError(f"cannot create the journal {path}: {_reason(exc)}") from exc
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def check_writable(url: str) -> None:
    """StorageError unless the server can write the journal: the file (and its -wal and -shm
    where present) opened for writing, and its directory writable (SQLite creates the
    companions and the lock file there). Nothing is written."""
    path = sqlite_file(url)
    if path is None:
        return
    path = path.absolute()
    for name in (path, *(path.with_name(path.name + s) for s in COMPANIONS)):
        try:
            fd = os.open(name, os.O_RDWR)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"journal {name} cannot be written: {_reason(exc)}") from exc
        os.close(fd)
    # access() sees read-only mounts and immutable directories, for root too; only then a
    # probe file, for the OS's own reason.
    if not os.access(path.parent, os.W_OK):
        raise StorageError(
            f"journal {path} cannot be written: its directory {path.parent} refuses new files"
            f" ({_probe(path.parent)})"
        )


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _probe(directory: Path) -> str:
    """Why a file cannot be created in `directory`, in the OS's words."""
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except OSError as exc:
        return _reason(exc)
    os.close(fd)
    probe.unlink(missing_ok=True)
    return os.strerror(errno.EACCES)
