"""Atomic file writes (a reader sees the old file or the new one, never half of one), folders made
or refused clearly, and exclusive folder locks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from letterbench.core import timing
from letterbench.core.errors import LetterbenchError

WRITES = "checkpoint writes"  # the time budget's part: waiting for the background writer


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file private (0600); give it the mode any new file gets here.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.filename is None:  # a write to the open file (a full disk): name the file meant
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make ``path`` name the same file as ``source`` (a hard link, no second copy on disk),
    replacing ``path`` atomically; where the file system has no hard links, a copy, written
    atomically. ``source`` is never changed in place later: every write here replaces a file."""
    source, path = Path(source), Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.link.tmp"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        data = source.read_bytes()
        atomic_write_bytes(path, data)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_save(path: str | os.PathLike, save: Callable[[IO[bytes]], None]) -> None:
    """Write through a callback (``torch.save``, ``fig.savefig``) atomically."""
    with atomic_open(path, "wb") as handle:
        save(handle)


class BackgroundWriter:
    """Runs write jobs one at a time, in the order given, on a thread of its own, so that a training
    loop does not wait for the disk between epochs. At most ``depth`` jobs wait (each holds its
    data in memory). After a job fails, the jobs queued behind it are skipped (a progress file must
    not count an epoch whose checkpoint failed), and the error is raised in the caller at its next
    ``submit`` or ``flush``. Every write is atomic, so a process killed mid-job leaves the previous
    file whole; the thread is joined when the interpreter exits."""

    def __init__(self, depth: int = 2):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="letterbench-writer")
        self._pending: list[Future] = []
        self._depth = depth
        self._error: BaseException | None = None

    def _run(self, job: Callable[[], None]) -> None:
        if self._error is None:
            try:
                job()
            except BaseException as exc:
                self._error = exc

    def _wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _raise(self) -> None:
        if self._error is not None:
            # The jobs queued behind the failed one are skipped only while the error stands: wait
            # for them all before clearing it, or one not yet started would run.
            self._wait()
            error, self._error = self._error, None
            raise error

    def submit(self, job: Callable[[], None]) -> None:
        with timing.part(WRITES):  # the main thread's wait for room in the queue
            while self._pending and (self._pending[0].done() or len(self._pending) >= self._depth):
                self._pending.pop(0).result()
        self._raise()
        self._pending.append(self._pool.submit(self._run, job))

    def flush(self) -> None:
        """Wait for every queued job; raise the first error among them."""
        with timing.part(WRITES):
            self._wait()
        self._raise()


def ensure_folder(path: Path, what: str) -> None:
    """Create ``path`` (and its parents) as a folder, or say clearly why it cannot be one."""
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise LetterbenchError(f"{what} {path}: {part} is a file, not a folder; choose another path")
    path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def locked(folder: Path, lock_path: Path, what: str, take: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` while the block runs: ``lock_path`` (a file in it) exists,
    holding the holder's PID, for as long as the block runs, and is removed after it.

    The operating system drops the lock when its process ends, however it ends, so a killed run
    leaves no stale lock behind, only a lock file that the next process takes over. A second
    process gets an error naming the holder. A folder this call created and nothing else wrote
    into is removed again on the way out. ``take=False`` (the other ranks of a torchrun job) is a
    no-op.
    """
    if not take:
        yield
        return
    created = not folder.exists()
    ensure_folder(folder, what)
    handle = _acquire(lock_path, folder)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        lock_path.unlink(missing_ok=True)  # while still holding it: nobody else can be using it
        handle.close()
        if created and not any(folder.iterdir()):
            folder.rmdir()


def _acquire(lock_path: Path, folder: Path):
    """An open, exclusively locked lock file that is still the one at ``lock_path`` (a holder that
    was finishing may have removed the file this process opened: then open the new one)."""
    while True:
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise LetterbenchError(
                f"{folder} is in use by another letterbench process (PID {holder}); wait for it to finish, "
                "or stop it, or choose another output folder"
            ) from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()
