"""A large build into a directory on every core: worker processes render, compress and (item
pages) write; the build's process alone reads the store, inside its one snapshot, and keeps the
order readers rely on (static.py), by writing the ordered resources itself as they come back.

Workers are forked: they inherit the site map and its templates, and never touch the store (a
forked database connection is not theirs to use)."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from .destination import BuildError
from .directory import Directory, compress, write_owned
from .model import Item
from .render import FORMATS, Feed, archive_path, item_path
from .site import Rendered, SiteMap

ITEMS_PER_TASK = 64  # item pages a worker renders and writes per task: few messages, small ones
PARALLEL_FROM = 2000  # resources to render below which the forks cost more than they save

PR_SET_PDEATHSIG = 1  # prctl(2)

T = TypeVar("T")

_site: SiteMap | None = None  # a worker's, from `_start`
_root: Path | None = None
_outdir = ""  # as the user gave it, for messages


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def usable() -> bool:
    return cores() > 1 and "fork" in multiprocessing.get_all_start_methods()


def _start(site: SiteMap, root: Path, outdir: str, parent: int) -> None:
    global _site, _root, _outdir
    _site, _root, _outdir = site, root, outdir
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the build's to handle: it ends us
    _die_with(parent)


def _die_with(parent: int) -> None:
    """End this worker when the build's process ends, even by kill -9: no worker goes on
    writing once the build is gone (Linux; elsewhere a worker ends at its next task)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # gone before that took effect
        os._exit(1)


def _batches(items: Iterable[Item], size: int) -> Iterator[tuple[Item, ...]]:
    iterator = iter(items)
    while batch := tuple(itertools.islice(iterator, size)):
        yield batch


def _item_pages(items: list[Item]) -> list[tuple[str, bool]]:
    """Render and write item pages (claimed by the build already): each path, and whether
    its bytes changed."""
    assert _site is not None and _root is not None
    written = []
    for item in items:
        relative = item_path(item.id)
        body = _site.item_page(item).body
        try:
            written.append((relative, write_owned(_root, relative, body, compress(body))))
        except OSError as error:  # a full disk, say: one line, not a traceback
            raise BuildError(f"cannot write {relative}: {error.strerror}", _outdir) from None
    return written


def _archive(feed: Feed) -> list[tuple[str, Rendered, bytes]]:
    """An archive page in every format, with its `.gz`, in the order they are written."""
    assert _site is not None and feed.archive is not None
    done = []
    for extension in FORMATS:
        rendered = _site.archive_rendered(feed, extension)
        done.append(
            (
                archive_path(feed.topic.slug, feed.archive, extension),
                rendered,
                compress(rendered.body),
            )
        )
    return done


class BuildPool:
    """Worker processes for one build; a context manager (the workers end with it)."""

    def __init__(self, site: SiteMap, directory: Directory) -> None:
        self.site, self.directory = site, directory
        self.workers = cores()
        self.executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start,
            initargs=(site, directory.root, str(directory.outdir), os.getpid()),
        )

    def __enter__(self) -> BuildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def item_pages(self, items: Iterable[Item], progress: Callable[[int], None] | None) -> None:
        """Write the item pages of `items`, in any order; all are written when it returns."""
        window: collections.deque[Future[list[tuple[str, bool]]]] = collections.deque()
        directory = self.directory
        for batch in _batches(items, ITEMS_PER_TASK):
            by_path = {item_path(item.id): item for item in batch}
            mine = set(directory.claim_new(list(by_path)))
            for relative, item in by_path.items():
                if relative not in mine:  # someone else's file may stand there: `put` looks
                    directory.put(relative, self.site.item_page(item))
                    if progress:
                        progress(1)
            window.append(
                self.executor.submit(_item_pages, [by_path[p] for p in by_path if p in mine])
            )
            while len(window) > 4 * self.workers:  # bounds the items held in memory
                self._written(window.popleft(), progress)
        while window:
            self._written(window.popleft(), progress)

    def _written(
        self, future: Future[list[tuple[str, bool]]], progress: Callable[[int], None] | None
    ) -> None:
        results = self._result(future)
        self.directory.written(results)
        if progress:
            progress(len(results))

    def archives(self, feeds: Iterator[Feed]) -> Iterator[tuple[str, Rendered, bytes]]:
        """Each archive page of `feeds` in every format, rendered by the workers, in the order
        of `feeds` (the build writes them in that order)."""
        window: collections.deque[Future[list[tuple[str, Rendered, bytes]]]] = collections.deque()
        for feed in feeds:
            window.append(self.executor.submit(_archive, feed))
            while len(window) > 4 * self.workers:
                yield from self._result(window.popleft())
        while window:
            yield from self._result(window.popleft())

    def _result(self, future: Future[T]) -> T:
        """A task's result; a worker that died (the kernel's OOM killer, a kill) is one line:
        what was written stays whole, and the next build goes on from the journal."""
        try:
            return future.result()
        except BrokenProcessPool:
            raise BuildError(
                "a build worker died (out of memory or killed); the build stopped: run it again",
                str(self.directory.outdir),
            ) from None
