"""Files that are whole or absent, and folders that one process works in at a time.

:func:`atomic_write_bytes` writes to a temporary file of its own (a unique name
beside the target), flushes it to the disk, renames it over the target with
``os.replace`` and flushes the folder, so that a reader (or a rerun after a
crash or ``kill -9``) sees the old file or the new one, never a mixture, and
two writers never share a temporary file. A full disk gives one
:class:`DiskFullError` naming the path, the bytes needed and the bytes free;
the target is left as it was.

:class:`FolderLock` is an advisory lock (``flock``) on ``DIR/.rnngrad.lock``,
which also holds the holder's PID and command for the message a second process
gets. The kernel releases it when the holder dies, however it dies, so a stale
lock never blocks a rerun.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from rnngrad.errors import InvalidInputError, RnngradError

__all__ = [
    "DiskFullError",
    "FolderLock",
    "FolderLockedError",
    "atomic_write_bytes",
    "atomic_write_text",
    "disk_full_error",
]


class DiskFullError(RnngradError, OSError):
    """No space left on the device for a result; nothing half-written was left."""


class FolderLockedError(RnngradError, OSError):
    """Another process is working in the folder."""


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def disk_full_error(path: Path, needed: int | None) -> DiskFullError:
    """The one-line error for a full disk at ``path``."""
    try:
        free = shutil.disk_usage(path.parent if not path.is_dir() else path).free
        have = f"{_megabytes(free)} free"
    except OSError:
        have = "free space unknown"
    wanted = f"about {_megabytes(needed)} needed, " if needed is not None else ""
    return DiskFullError(
        f"{path}: no space left on the device ({wanted}{have}); nothing was left half-written"
    )


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        durable: flush the file and the folder to the disk before returning
            (checkpoints and results); off for scratch files.

    Raises:
        DiskFullError: no space left; ``path`` is left as it was.
        OSError: any other failure to write; ``path`` is left as it was.
    """
    target = Path(path)
    descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(target, len(data)) from None
        raise
    if durable:
        _fsync_folder(target.parent)


def atomic_write_text(path: str | Path, text: str, *, durable: bool = True) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_write_with(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Let ``write`` fill an in-memory buffer, then write it atomically (for writers such
    as ``torch.save`` and pyarrow that want a file object)."""
    import io

    buffer = io.BytesIO()
    write(buffer)
    atomic_write_bytes(path, buffer.getvalue())


class FolderLock:
    """``with FolderLock(folder, "the run"):`` one process at a time in ``folder``.

    Raises (on entry):
        FolderLockedError: another live process holds the lock; the message names
            its PID and command.
    """

    NAME = ".rnngrad.lock"

    def __init__(self, folder: str | Path, what: str) -> None:
        self.folder = Path(folder)
        self.what = what
        self._handle: IO[str] | None = None

    def __enter__(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # no flock here: no locking (documented)
            return self
        path = self.folder / self.NAME
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise InvalidInputError(
                f"{path} should be rnngrad's lock file but is "
                f"{'a symbolic link' if path.is_symlink() else 'a folder or a special file'}; "
                "remove it and run the same command again"
            )
        try:
            handle = open(path, "a+", encoding="utf-8")
        except OSError as error:
            raise InvalidInputError(
                f"{path}: the lock file cannot be opened ({error.strerror or error})"
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderLockedError(
                f"{self.folder} is in use by {holder}; wait for it to finish or stop it, "
                f"then run the same command again ({self.what} resumes)"
            ) from None
        handle.seek(0)
        handle.truncate()
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        handle.write(f"process {os.getpid()} ({command[:200]})\n")
        handle.flush()
        self._handle = handle
        return self

    @classmethod
    def check(cls, folder: str | Path, what: str) -> None:
        """Raise :class:`FolderLockedError` now if another process holds ``folder``
        (before a progress bar starts; the work itself takes the lock again)."""
        with cls(folder, what):
            pass

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


@contextlib.contextmanager
def locked(folder: str | Path, what: str) -> Iterator[None]:
    """The :class:`FolderLock` as a plain context manager."""
    with FolderLock(folder, what):
        yield
