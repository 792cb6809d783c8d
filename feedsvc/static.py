"""`feedsvc build`: the static site, written atomically, leaving unchanged files untouched."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import __version__
from .catalog import ALL, Catalog
from .errors import FeedsvcError
from .render import FORMATS, archive_path, item_path
from .site import ARCHIVE, SiteMap
from .store import Store

MANIFEST = ".feedsvc-build.json"
TEMP_PREFIX = ".feedsvc-tmp-"
MANAGED_DIRS = ("feeds", "items", "topics")  # files here that the build no longer makes are removed


@dataclass(slots=True)
class BuildReport:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    paths: list[str] = field(default_factory=list)  # written, relative to OUTDIR
    archives_rewritten: int = 0  # full archive pages whose bytes changed (a kill, a refile)
    next_lift: datetime | None = None  # when an embargo lifts: rebuild then


class BuildError(FeedsvcError):
    """OUTDIR cannot be used."""


def build_site(
    store: Store, catalog: Catalog, outdir: Path, progress: Callable[[int], None] | None = None
) -> BuildReport:
    """Write every feed, page and list of the site under `outdir`, with a `.gz` beside each."""
    _check_outdir(outdir)
    report = BuildReport()
    writer = _Writer(outdir.resolve(), report)
    signature = _signature(catalog)
    manifest = _read_manifest(outdir)
    since = manifest.get("generation", 0) if manifest.get("signature") == signature else 0
    site = SiteMap(catalog)
    store.generation()  # publishes held items whose embargo has lifted (a writable store)
    with store.snapshot():  # one consistent view of the store for the whole build
        generation = store.generation()
        _write_all(store, site, writer, since, progress)
        report.next_lift = store.next_lift()
    writer.write(
        MANIFEST,
        json.dumps({"generation": generation, "signature": signature}).encode(),
        compress=False,
        count=False,
    )
    return report


def _write_all(
    store: Store,
    site: SiteMap,
    writer: _Writer,
    since: int,
    progress: Callable[[int], None] | None,
) -> None:
    for relative, produce in site.fixed():
        writer.write(relative, produce(store).body)
        if progress:
            progress(1)
    existing = writer.existing()
    done = set(site.fixed_paths())
    for item in store.changed_since(since):  # an item's page changes only with the item
        writer.write(item_path(item.id), site.item_page(item).body)
        done.add(item_path(item.id))
        if progress:
            progress(1)
    size = site.catalog.site.page_size
    for topic, page in sorted(store.archive_changes(since, size)):  # an item changed, or a kill
        for extension in FORMATS:
            relative = archive_path(topic, page, extension)
            rendered = site.render(store, relative)
            if rendered:
                writer.write(relative, rendered.body)
                done.add(relative)
    for item_id in store.killed_ids():  # few: a withdrawn page is small and rarely rewritten
        relative = item_path(item_id)
        rendered = site.render(store, relative)
        if rendered:
            writer.write(relative, rendered.body)
            done.add(relative)
    expected = set(site.paths(store))
    for relative in sorted(expected - existing - done):  # new pages, deleted by hand, unfinished
        rendered = site.render(store, relative)
        if rendered:
            writer.write(relative, rendered.body)
    writer.remove_others(expected)
    rewritten = {p for p in writer.report.paths if ARCHIVE.fullmatch(p)} & existing
    writer.report.archives_rewritten = len(rewritten)


def count_files(store: Store, catalog: Catalog) -> int:
    """Roughly how many files a full build writes (for a progress bar)."""
    return len(SiteMap(catalog).fixed_paths()) + store.counts()[ALL]


def _signature(catalog: Catalog) -> str:
    """Changes when anything but the store changes every page: site, topics, feedsvc itself."""
    site = json.dumps([str(catalog.site), catalog.digest, __version__]).encode()
    return hashlib.sha256(site).hexdigest()[:16]


def _read_manifest(outdir: Path) -> dict:
    try:
        manifest = json.loads((outdir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _check_outdir(outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise BuildError("not a directory", str(outdir))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BuildError(f"cannot create the directory: {error.strerror}", str(outdir)) from None
    try:  # try it: os.access says yes to root, even on a read-only file system
        descriptor, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=outdir)
    except OSError as error:
        raise BuildError(f"the directory is not writable: {error.strerror}", str(outdir)) from None
    os.close(descriptor)
    os.unlink(probe)


class _Writer:
    """Writes files under one root: atomically, only when their bytes change."""

    def __init__(self, root: Path, report: BuildReport) -> None:
        self.root = root
        self.report = report

    def path(self, relative: str) -> Path:
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise BuildError(f"refusing to write outside the output directory: {relative!r}")
        return target

    def write(self, relative: str, data: bytes, compress: bool = True, count: bool = True) -> None:
        try:
            self._write(relative, data, compress, count)
        except OSError as error:  # a full disk, say: one line, not a traceback
            raise BuildError(f"cannot write {relative}: {error.strerror}", str(self.root)) from None

    def _write(self, relative: str, data: bytes, compress: bool, count: bool) -> None:
        target = self.path(relative)
        zipped = target.with_name(target.name + ".gz")
        changed = not _holds(target, data)
        if changed:
            if compress:
                # A present .gz always matches its file: drop the old one before the file
                # changes, so a build killed in between leaves no .gz (nginx serves the plain one).
                zipped.unlink(missing_ok=True)
            _replace(target, data)
        if compress:
            _replace_if_changed(zipped, gzip.compress(data, compresslevel=9, mtime=0))
            stat = target.stat()
            if zipped.stat().st_mtime_ns != stat.st_mtime_ns:  # nginx gzip_static: same mtime
                os.utime(zipped, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        if count:
            self.report.written += changed
            self.report.unchanged += not changed
            if changed:
                self.report.paths.append(relative)

    def existing(self) -> set[str]:
        """The managed files present with their `.gz`, as relative paths."""
        names: set[str] = set()
        for folder in MANAGED_DIRS:
            base = self.root / folder
            if base.is_dir():
                names.update(f"{folder}/{name}" for name in os.listdir(base))
        return {name for name in names if f"{name}.gz" in names}

    def remove_others(self, expected: set[str]) -> None:
        """Remove files of the managed folders the build no longer makes, and stray temp files."""
        for path in self.root.glob(f"{TEMP_PREFIX}*"):
            path.unlink(missing_ok=True)
        for folder in MANAGED_DIRS:
            base = self.root / folder
            if not base.is_dir():
                continue
            # scandir, and the set test first: a stat per file would cost most of a rebuild.
            with os.scandir(base) as entries:
                for entry in entries:
                    relative = f"{folder}/{entry.name.removesuffix('.gz')}"
                    if entry.name.startswith(TEMP_PREFIX):  # left by a build that was killed
                        Path(entry.path).unlink(missing_ok=True)
                    elif relative not in expected and entry.is_file():
                        Path(entry.path).unlink()
                        self.report.removed += not entry.name.endswith(".gz")


def _holds(target: Path, data: bytes) -> bool:
    try:
        return target.stat().st_size == len(data) and target.read_bytes() == data
    except FileNotFoundError:
        return False


def _replace_if_changed(target: Path, data: bytes) -> bool:
    """Write `data` to `target` unless it already holds it; False if it did."""
    if _holds(target, data):
        return False
    _replace(target, data)
    return True


def _replace(target: Path, data: bytes) -> None:
    """Write `data` to `target` by rename: never a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            # No fsync: a killed process loses nothing written, and the rename is atomic;
            # only a power cut could leave an empty file, and the next build rewrites it.
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
