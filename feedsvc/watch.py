"""A drop folder: every complete document that appears in a directory is stored, then moved to
`done/`, or to `failed/` with its reason beside it in `NAME.error`.

The directory is read whole on every wake-up (level-triggered), so nothing depends on having
seen an event: a restart, a missed or overflowed notification, or a file that was there first
are all the same case. The watcher (inotify through watchfiles, or a timer with `poll`) only
decides when to look. A file is taken once its size, mtime and inode have stayed the same for
`settle` seconds of our own watching (no trust in another host's clock); dot-files and the
usual partial-upload names are never taken. A document is moved only after its transaction is
committed: killed in between, it is read again after a restart and stored as "unchanged".
"""

from __future__ import annotations

import collections
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from .catalog import Catalog
from .errors import FeedsvcError, StoreError
from .ingest import prepare_all, read_all, store_all
from .sources import Document
from .store import Counts, Store

DONE = "done"
FAILED = "failed"
ERROR_SUFFIX = ".error"
LOCK_NAME = ".feedsvc-watch.lock"
# Names uploaders give a file until it is complete (FTP clients, browsers, WinSCP, curl -o).
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".crdownload", "~")
IDLE_SECONDS = 60.0  # with inotify, look anyway this often (a lost event costs a minute)
WHO = "watch"  # in the store's log

Key = tuple[int, int, int]  # size, mtime (ns), inode: a file that changes changes one of them


@dataclass(frozen=True, slots=True)
class Options:
    settle: float = 1.0  # seconds a file must stay unchanged before it is taken
    poll: float | None = None  # look every this many seconds; None: be told (inotify)
    retry: float = 10.0  # seconds before a document the store refused is tried again
    once: bool = False  # take what is complete now, then return


@dataclass(slots=True)
class Summary:
    stored: int = 0
    rejected: int = 0
    waiting: int = 0  # left in the folder: the store refused them (not their fault)


class Report(Protocol):
    """What the watch tells its user, a line each (the CLI prints them)."""

    def watching(self, directory: str) -> None: ...
    def stored(self, name: str, counts: Counts) -> None: ...
    def rejected(self, error: FeedsvcError) -> None: ...
    def waiting(self, name: str, error: FeedsvcError, seconds: float) -> None: ...
    def vanished(self, name: str) -> None: ...


class DropFolder:
    """The folder's files: which are candidates, and moving them away without overwriting."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.done = directory / DONE
        self.failed = directory / FAILED
        self._lock: IO[bytes] | None = None

    def open(self) -> None:
        """Make done/ and failed/ and take the folder's lock: one watcher per folder, or two
        would store a document twice at once and race to move it."""
        if not self.directory.is_dir():
            problem = "not a directory" if self.directory.exists() else "no such directory"
            raise FeedsvcError(problem, str(self.directory))
        try:
            self.done.mkdir(exist_ok=True)
            self.failed.mkdir(exist_ok=True)
            lock = (self.directory / LOCK_NAME).open("ab")
        except OSError as error:
            raise FeedsvcError(_reason(error), error.filename or str(self.directory)) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise FeedsvcError(
                "another feedsvc watch is watching this folder", str(self.directory)
            ) from None
        self._lock = lock

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the lock; the empty lock file stays (it is harmless)
            self._lock = None

    def scan(self) -> dict[Path, Key]:
        """The regular files directly in the folder that may be documents, with their keys."""
        found: dict[Path, Key] = {}
        try:
            entries = list(os.scandir(self.directory))
        except OSError as error:
            raise FeedsvcError(_reason(error), str(self.directory)) from None
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(PARTIAL_SUFFIXES):
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:  # moved away between listing and looking
                continue
            found[Path(entry.path)] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        return found

    def finish(self, path: Path) -> Path | None:
        """Move a stored document to done/ (None: it was gone already)."""
        return self._move(path, self.done)

    def fail(self, path: Path, message: str) -> Path | None:
        """Move a rejected document to failed/, its one-line reason beside it in NAME.error.
        The reason is written first: killed in between, the document is still in the folder,
        is rejected again after a restart, and its reason is written again (the same)."""
        target = _free_name(self.failed, path.name)
        reason = target.with_name(target.name + ERROR_SUFFIX)
        partial = self.failed / f".{reason.name}.partial"
        try:
            partial.write_text(message + "\n", encoding="utf-8")
            partial.replace(reason)
        except OSError as error:
            raise FeedsvcError(_reason(error), str(reason)) from None
        return self._move(path, self.failed, target)

    def _move(self, path: Path, into: Path, target: Path | None = None) -> Path | None:
        # A rename is atomic: a kill leaves the file in the folder or moved, never both. Only
        # this process (holding the lock) moves files into done/ and failed/, so checking for a
        # free name first cannot race with another mover.
        target = target or _free_name(into, path.name)
        try:
            path.rename(target)
        except FileNotFoundError:
            if path.exists():
                raise FeedsvcError("no such directory", str(into)) from None
            return None
        except OSError as error:
            raise FeedsvcError(f"cannot move it: {_reason(error)}", str(path)) from None
        return target


def _free_name(directory: Path, name: str) -> Path:
    """`name` in `directory`, or `stem.N.suffix` with the first N not taken: an earlier file of
    the same name is never overwritten. The suffix stays last, so the reader still knows it."""
    target = directory / name
    stem, suffix = os.path.splitext(name)
    number = 0
    while os.path.lexists(target):
        number += 1
        target = directory / f"{stem}.{number}{suffix}"
    return target


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


@dataclass(slots=True)
class Settler:
    """Which files are complete: unchanged for `settle` seconds of our own watching."""

    settle: float
    seen: dict[Path, tuple[Key, float]] = field(default_factory=dict)

    def observe(self, files: dict[Path, Key], now: float) -> list[Path]:
        """Record what a scan found; the files complete now, oldest first (by mtime, name)."""
        seen: dict[Path, tuple[Key, float]] = {}
        for path, key in files.items():
            previous = self.seen.get(path)
            seen[path] = previous if previous is not None and previous[0] == key else (key, now)
        self.seen = seen
        ready = [path for path, (_, since) in seen.items() if now - since >= self.settle]
        return sorted(ready, key=lambda path: (seen[path][0][1], path.name))

    def next_due(self, now: float) -> float | None:
        """Seconds until the next file still settling may be complete (None: none waits)."""
        waits = [since + self.settle - now for _, since in self.seen.values()]
        waits = [wait for wait in waits if wait > 0]
        return min(waits) if waits else None


class Watch:
    """One watch of a folder: scan, take the complete files, store them, move them."""

    def __init__(
        self,
        folder: DropFolder,
        store: Store,
        catalog: Catalog,
        options: Options,
        report: Report,
        stop: threading.Event,
    ) -> None:
        self.folder, self.store, self.catalog = folder, store, catalog
        self.options, self.report, self.stop = options, report, stop
        self.settler = Settler(options.settle)
        self.refused_until = 0.0  # the store refused a write: no document before then
        self.summary = Summary()

    def run(self) -> Summary:
        if self.options.once:
            return self._once()
        with _waker(self.folder.directory, self.options.poll, self.stop) as waker:
            while not self.stop.is_set():
                self.step()
                waker.wait(self._next_look())
        return self.summary

    def _once(self) -> Summary:
        """Take what is complete: a file must look the same after `settle` seconds; one that
        appeared or changed meanwhile is left for the next run."""
        self.settler.observe(self.folder.scan(), time.monotonic())
        if self.options.settle and self.stop.wait(self.options.settle):
            return self.summary  # stopped while waiting
        self.step()
        return self.summary

    def step(self) -> None:
        """One look at the folder: store and move every complete document."""
        now = time.monotonic()
        ready = self.settler.observe(self.folder.scan(), now)
        if ready and now >= self.refused_until:
            self._store(ready)

    def _next_look(self) -> float:
        now = time.monotonic()
        waits = [self.refused_until - now] if self.refused_until > now else []
        due = self.settler.next_due(now)
        if due is not None:
            waits.append(due + 0.01)  # just past the moment, not just before it
        idle = self.options.poll if self.options.poll is not None else IDLE_SECONDS
        return max(0.0, min([idle, *waits]))

    def _store(self, paths: list[Path]) -> None:
        """Store documents in order, a batch per transaction as `feedsvc ingest` does, and move
        each once its batch is committed. A store error is not the document's fault: it stays
        in the folder, and no document is tried until the retry time (each would only wait for
        the store as long)."""
        fed: collections.deque[Path] = collections.deque()

        def documents() -> Iterator[Document | FeedsvcError]:
            for path in paths:
                if self.stop.is_set() or self.refused_until > time.monotonic():
                    return
                fed.append(path)
                yield from read_all([str(path)], None)  # what `feedsvc ingest FILE` reads

        outcomes = prepare_all(documents(), self.catalog, jobs=1)
        for _, result in store_all(self.store, outcomes, WHO):
            path = fed.popleft()
            if isinstance(result, StoreError):
                self.summary.waiting += 1
                self.refused_until = time.monotonic() + self.options.retry
                self.report.waiting(str(path), result, self.options.retry)
            elif isinstance(result, FeedsvcError):
                self._reject(path, result)
            else:
                self._finish(path, result)

    def _reject(self, path: Path, error: FeedsvcError) -> None:
        if not path.exists():  # taken away before it was read: nothing to keep
            self.report.vanished(str(path))
            return
        self.folder.fail(path, str(error))
        self.summary.rejected += 1
        self.report.rejected(error)

    def _finish(self, path: Path, counts: Counts) -> None:
        self.folder.finish(path)
        self.summary.stored += 1
        self.report.stored(str(path), counts)


def watch_folder(
    directory: Path,
    open_store: Callable[[], Store],
    catalog: Catalog,
    options: Options,
    report: Report,
    stop: threading.Event,
) -> Summary:
    """Watch `directory` until `stop` is set (or once, with `options.once`). The store is
    opened (or made) only once the folder is known to be usable."""
    folder = DropFolder(directory)
    folder.open()
    try:
        store = open_store()
        try:
            report.watching(str(directory))
            return Watch(folder, store, catalog, options, report, stop).run()
        finally:
            store.close()
    finally:
        folder.close()


class _Waker(Protocol):
    def wait(self, seconds: float) -> None: ...
    def __enter__(self) -> _Waker: ...
    def __exit__(self, *exc: object) -> None: ...


class _Timer:
    """Polling: wake after the given time (or when stopped); works on any file system."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def wait(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def __enter__(self) -> _Timer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Notify:
    """inotify (through watchfiles' Rust backend): wake when the folder changes, after the
    given time at the latest, or when stopped. Local file systems only: NFS and SMB do not
    report changes made by other hosts."""

    DEBOUNCE_MS = 50  # a burst of drops wakes us once, not once per file
    STEP_MS = 50  # how often the stop event and signals are checked while waiting

    def __init__(self, directory: Path, stop: threading.Event) -> None:
        # watchfiles' documented low-level API: unlike `watchfiles.watch`, it takes a timeout per
        # call (the next settle or retry time). Imported here: only a watch pays for it.
        from watchfiles._rust_notify import RustNotify, WatchfilesRustInternalError

        self.stop = stop
        try:
            self.notify = RustNotify([str(directory)], False, False, 0, False, False)
        except (OSError, WatchfilesRustInternalError) as error:  # e.g. the inotify watch limit
            raise FeedsvcError(
                f"cannot watch it: {error} (try --poll SECONDS)", str(directory)
            ) from None

    def wait(self, seconds: float) -> None:
        # A timeout of 0 means none to watchfiles: 1 ms is the shortest wait there is.
        timeout_ms = max(1, round(seconds * 1000))
        self.notify.watch(self.DEBOUNCE_MS, self.STEP_MS, timeout_ms, self.stop)

    def __enter__(self) -> _Notify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.notify.close()


def _waker(directory: Path, poll: float | None, stop: threading.Event) -> _Waker:
    return _Timer(stop) if poll is not None else _Notify(directory, stop)
