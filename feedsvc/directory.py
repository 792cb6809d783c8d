"""The static build's local destination: files under OUTDIR, written atomically with a `.gz`
beside each, only when their bytes change; removing only files a build wrote (its manifest)."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import operator
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .destination import MANIFEST, BuildError, BuildReport, Manifest, is_site_path
from .publish import GZIP_LEVEL
from .site import Rendered

# The build's own files in OUTDIR all start with ".feedsvc-" (README: nginx answers 404 to them).
JOURNAL = ".feedsvc-build.journal"  # files a running build added since: kept if it is killed
TEMP_PREFIX = ".feedsvc-tmp-"
_TEMPORARY = re.compile(re.escape(TEMP_PREFIX))


def read_manifest(outdir: Path) -> Manifest:
    """The manifest of the last finished build, with the files of any build killed since."""
    return _read_manifest(outdir)[0]


def _read_manifest(outdir: Path) -> tuple[Manifest, list[str]]:
    """`read_manifest`, and its files in the order listed (sorted, as a build writes them;
    then the journal's): a build that adds a few keeps that order cheaply (`_ordered`)."""
    try:
        data = json.loads((outdir / MANIFEST).read_bytes())
    except (OSError, ValueError):  # none (a first build, or deleted): nothing here is ours
        data = {}
    if not isinstance(data, dict):
        data = {}
    generation, signature, files = data.get("generation"), data.get("signature"), data.get("files")
    try:
        journal = (outdir / JOURNAL).read_text().splitlines()
    except (OSError, ValueError):
        journal = []
    listed = [*files, *journal] if isinstance(files, list) else journal
    if set(map(type, listed)) - {str}:  # a hand-edited manifest (checked in C: a million names)
        listed = [name for name in listed if isinstance(name, str)]
    manifest = Manifest(
        generation if isinstance(generation, int) else 0,
        signature if isinstance(signature, str) else "",
        frozenset(listed),
    )
    return manifest, listed


def write_manifest(outdir: Path, manifest: Manifest, listed: Iterable[str] = ()) -> None:
    """Replace the manifest at the end of a build; the journal it now covers goes. `listed`:
    the files as the last manifest listed them (`_read_manifest`), to sort fewer."""
    body = {
        "generation": manifest.generation,
        "signature": manifest.signature,
        "files": _ordered(manifest.files, listed),
    }
    data = json.dumps(body, separators=(",", ":")).encode()
    try:
        if not _holds(outdir / MANIFEST, data):
            _replace(outdir / MANIFEST, data)
        (outdir / JOURNAL).unlink(missing_ok=True)
    except OSError as error:
        raise BuildError(f"cannot write {MANIFEST}: {error.strerror}", str(outdir)) from None


def _ordered(files: frozenset[str], listed: Iterable[str]) -> list[str]:
    """`sorted(files)`, from `listed` (mostly those, mostly sorted): those of `listed` still
    there, then the new ones, which Timsort merges as two runs. Sorting a million names from a
    set's order took seconds of an incremental build; every step here runs in C."""
    kept = list(filter(files.__contains__, dict.fromkeys(listed)))
    return sorted(kept + sorted(files.difference(kept)))


def open_journal(outdir: Path) -> BinaryIO:
    """Where a build notes each file it is about to create: a build killed before writing its
    manifest still owns them."""
    return open(outdir / JOURNAL, "ab", buffering=0)  # one write a file, none lost in a buffer


def _is_plain_site_path(name: str) -> bool:
    """A plain relative path of a site file: a hand-edited manifest must not make the build
    remove anything outside OUTDIR, or the build's own files."""
    plain = all(part not in ("", ".", "..") for part in name.split("/"))
    return plain and is_site_path(name)


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


class Directory:
    """Writes files under one root: atomically, only when their bytes change, never over a
    file it does not own (unless told to), removing only files it owns."""

    def __init__(self, outdir: Path, overwrite: bool = False) -> None:
        _check_outdir(outdir)
        _resolved.clear()  # a folder may have become a symlink since the last build
        _made.clear()
        self.outdir = outdir  # as the user gave it, for messages
        self.root = outdir.resolve()
        self.report = BuildReport()
        self.manifest, self.listed = _read_manifest(outdir)
        self.owned = set(self.manifest.files)  # written by this build or an earlier one
        self.folders = _folders(self.owned) | {""}  # where those are (for existing, temp files)
        self.overwrite = overwrite
        self.made: set[str] = set()  # what this build wrote or found already holding its bytes
        self.journal: BinaryIO | None = None
        self.temporaries: list[str] | None = None  # those `existing` saw (killed builds')

    def close(self) -> None:
        if self.journal:
            self.journal.close()
            self.journal = None

    def read_manifest(self) -> Manifest:
        return self.manifest

    def write_manifest(self, manifest: Manifest) -> None:
        """The manifest lists the files this directory owns (`.gz` included), whatever the
        build passes."""
        owned = frozenset(self.owned)
        manifest = Manifest(manifest.generation, manifest.signature, owned)
        write_manifest(self.outdir, manifest, self.listed)

    def claim(self, paths: set[str]) -> None:
        """Nothing ahead: `write` notes each new file in the journal just before making it."""

    def put(self, path: str, rendered: Rendered) -> None:
        self.write(path, rendered.body)

    def put_unordered(self, resources: Iterable[tuple[str, Rendered]]) -> None:
        for path, rendered in resources:  # a local write is fast: in order, one at a time
            self.put(path, rendered)

    def path(self, relative: str) -> Path:
        return _target(self.root, relative)

    def write(
        self, relative: str, data: bytes, compress: bool = True, zipped: bytes | None = None
    ) -> None:
        """Write `data` at `relative` (with its `.gz`: `zipped` when the caller compressed it
        already, a worker of a parallel build)."""
        try:
            self._write(relative, data, compress, zipped)
        except OSError as error:  # a full disk, say: one line, not a traceback
            raise BuildError(
                f"cannot write {relative}: {error.strerror}", str(self.outdir)
            ) from None

    def put_zipped(self, path: str, rendered: Rendered, zipped: bytes) -> None:
        """`put`, with the `.gz` bytes compressed elsewhere (`compress`)."""
        self.write(path, rendered.body, zipped=zipped)

    def _write(self, relative: str, data: bytes, compress: bool, zipped: bytes | None) -> None:
        target = self.path(relative)
        files = _files(relative, target, data, compress, zipped)
        stale = {name for name, (path, content) in files.items() if not _holds(path, content)}
        for name, (path, _) in files.items():
            if name in stale and name not in self.owned and os.path.lexists(path):
                self._refuse(name)
        self._claim(list(files))
        _store(relative, files, stale)
        self.made.update(files)
        self.report.written += bool(stale)
        self.report.unchanged += not stale
        if stale:
            self.report.paths.append(relative)

    def claim_new(self, paths: list[str]) -> list[str]:
        """Of `paths` (and their `.gz`), those a worker may write with `write_owned`: owned
        already, or noted in the journal now since nothing stands there; the others (someone
        else's file may stand there) are for `put`, which looks at their bytes first."""
        mine, new = [], []
        for relative in paths:
            names = (relative, f"{relative}.gz")
            unowned = [name for name in names if name not in self.owned]
            if any(os.path.lexists(self.root / name) for name in unowned):
                continue
            mine.append(relative)
            new += unowned
        self._claim(new)
        return mine

    def written(self, results: Iterable[tuple[str, bool]]) -> None:
        """Count the files workers wrote (`write_owned`): path, and whether its bytes changed."""
        for relative, stale in results:
            self.made.update((relative, f"{relative}.gz"))
            self.report.written += stale
            self.report.unchanged += not stale
            if stale:
                self.report.paths.append(relative)

    def _refuse(self, name: str) -> None:
        """A file of someone else's stands where the build must write."""
        if not self.overwrite:
            raise BuildError(
                f"not written by feedsvc build (not in {MANIFEST}); "
                "move it away, or build with --overwrite to replace it",
                str(self.outdir / name),
            )

    def _claim(self, names: list[str]) -> None:
        """Note in the journal the files about to be made, before they exist."""
        new = [name for name in names if name not in self.owned]
        if new:
            if self.journal is None:
                self.journal = open_journal(self.root)
            self.journal.write("".join(f"{name}\n" for name in new).encode())
            self.owned.update(new)
            self.folders.update(_folders(new))

    def existing(self) -> set[str]:
        """The files this build or an earlier one wrote that are present with their `.gz`.
        (Set operations and `map`: the items' folder may hold two million names.)"""
        present: set[str] = set()
        self.temporaries = []
        for folder in self.folders:
            try:
                names = os.listdir(self.root / folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            prefix = f"{folder}/" if folder else ""
            present.update(map(prefix.__add__, names))
            self.temporaries += map(prefix.__add__, filter(_TEMPORARY.match, names))
        both = present & self.owned
        zipped = present.intersection(map(operator.add, both, itertools.repeat(".gz")))
        return both.intersection(map(str.removesuffix, zipped, itertools.repeat(".gz")))

    def remove_others(self, expected: set[str]) -> None:
        """Remove the files an earlier build wrote that this one does not make (`expected`:
        files it did not need to write), and the temporary files of a killed build."""
        zipped = map(operator.add, expected, itertools.repeat(".gz"))  # no site path ends so
        stale = (self.owned - self.made).difference(expected, zipped)
        removed: set[str] = set()
        for name in sorted(stale):
            self.owned.discard(name)
            path = self.root / name  # the name itself: a symlink goes, not what it points to
            if not _is_plain_site_path(name) or not path.parent.resolve().is_relative_to(self.root):
                continue  # a hand-edited manifest: never remove anything but site files
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError):  # gone, or a folder: not its file
                continue
            except OSError as error:
                message = f"cannot remove {name}: {error.strerror}"
                raise BuildError(message, str(self.outdir)) from None
            removed.add(name.removesuffix(".gz"))
        self.report.removed += len(removed)
        if self.temporaries is not None:  # listed by `existing`, before this build wrote
            for name in self.temporaries:
                (self.root / name).unlink(missing_ok=True)
            return
        for folder in self.folders:
            # scandir and the name alone: a stat per file would cost most of a rebuild.
            with (
                contextlib.suppress(FileNotFoundError, NotADirectoryError),
                os.scandir(self.root / folder) as entries,
            ):
                for entry in entries:
                    if entry.name.startswith(TEMP_PREFIX):
                        Path(entry.path).unlink(missing_ok=True)


def compress(data: bytes) -> bytes:
    """The `.gz` beside a file, no time stamp (the same bytes each build), at the live app's
    level: its bytes are the ones the app sends. At 6 (bench/README.md, "gzip level"), item
    pages come out as at level 9, archive pages 0.2% larger for 11% less CPU."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def write_owned(root: Path, relative: str, data: bytes, zipped: bytes) -> bool:
    """A worker's write of a file and its `.gz` that the build owns (`Directory.claim_new`):
    atomically, only if the bytes changed. True: written; OSError on failure."""
    files = _files(relative, _target(root, relative), data, True, zipped)
    stale = {name for name, (path, content) in files.items() if not _holds(path, content)}
    _store(relative, files, stale)
    return bool(stale)


# For one build (cleared when it starts; its forked workers inherit them): folders resolved,
# and folders known to exist.
_resolved: dict[tuple[Path, str], Path] = {}  # (root, folder): the folder, resolved
_made: set[Path] = set()


def _target(root: Path, relative: str) -> Path:
    """Where `relative` is written under `root`, symlinks followed; a `BuildError` if that is
    outside `root`. A folder is resolved once a build (process), not each of its files:
    `Path.resolve` (an lstat a part) was a tenth of a full build's CPU."""
    folder, _, name = relative.rpartition("/")
    parent = _resolved.get((root, folder))
    if parent is None and name not in ("", ".", ".."):
        parent = (root / folder).resolve() if folder else root
        if parent.is_relative_to(root):
            _resolved[(root, folder)] = parent
    if parent is None or (target := parent / name).is_symlink():
        target = (root / relative).resolve()  # the file itself a link: where it points
    if not target.is_relative_to(root) or target == root:
        raise BuildError(f"refusing to write outside the output directory: {relative!r}")
    return target


def _files(
    relative: str, target: Path, data: bytes, compressed: bool, zipped: bytes | None
) -> dict[str, tuple[Path, bytes]]:
    """The file, then its .gz (unless not `compressed`), by name: where and what to write."""
    files = {relative: (target, data)}  # the file first, then its .gz
    if compressed:
        zipped = compress(data) if zipped is None else zipped
        files[f"{relative}.gz"] = (target.with_name(target.name + ".gz"), zipped)
    return files


def _store(relative: str, files: dict[str, tuple[Path, bytes]], stale: set[str]) -> None:
    """Replace the `stale` ones of `files` (`_files`), the .gz never left older than its file."""
    if relative in stale:
        # A present .gz always matches its file: drop the old one before the file changes,
        # so a build killed in between leaves no .gz (nginx serves the plain one).
        for path, _ in list(files.values())[1:]:
            path.unlink(missing_ok=True)
        stale.update(files)
    if len(files) > 1 and len(stale) == len(files):  # both new: the mtime set before renames
        (target, data), (zipped_path, zipped) = files.values()
        temporary, stat = _temporary(target, data)
        try:
            zipped_temporary, _ = _temporary(zipped_path, zipped, stat)
        except BaseException:
            os.unlink(temporary)
            raise
        try:
            os.replace(temporary, target)
            os.replace(zipped_temporary, zipped_path)  # after its file, as below
        except BaseException:
            for left in (temporary, zipped_temporary):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(left)
            raise
        return
    for name, (path, content) in files.items():
        if name in stale:
            _replace(path, content)
    if len(files) > 1:
        (target, _), (zipped_path, _) = files.values()
        stat = target.stat()
        if zipped_path.stat().st_mtime_ns != stat.st_mtime_ns:  # nginx gzip_static: same mtime
            os.utime(zipped_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _folders(names: Iterable[str]) -> set[str]:
    """The folders holding these files, relative to the root ("" for the root itself)."""
    parts = map(str.rpartition, names, itertools.repeat("/"))  # in C: a million names
    return set(map(operator.itemgetter(0), parts))


def _holds(target: Path, data: bytes) -> bool:
    try:
        return target.stat().st_size == len(data) and target.read_bytes() == data
    except FileNotFoundError:
        return False


def _replace(target: Path, data: bytes) -> None:
    """Write `data` to `target` by rename: never a partial file."""
    temporary, _ = _temporary(target, data)
    try:
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


_counter = itertools.count()


def _temporary(
    target: Path, data: bytes, times: os.stat_result | None = None
) -> tuple[str, os.stat_result]:
    """A new file holding `data` (mode 644) beside `target`, to rename onto it, and its stat;
    with `times`, given that file's access and modification times (a .gz, its file's).

    Named by process and a count, not `mkstemp`'s random names (its Python-side retries and
    a chmod by path were a tenth of a build's file writing)."""
    folder = target.parent
    if folder not in _made:
        folder.mkdir(parents=True, exist_ok=True)
        _made.add(folder)
    while True:
        temporary = f"{folder}/{TEMP_PREFIX}{os.getpid()}-{next(_counter)}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # left by a killed build whose process had our id
            continue
        break
    try:
        # No fsync: a killed process loses nothing written, and the rename is atomic;
        # only a power cut could leave an empty file, and the next build rewrites it.
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(descriptor, 0o644)
            if times is not None:
                os.utime(descriptor, ns=(times.st_atime_ns, times.st_mtime_ns))
            stat = os.fstat(descriptor)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary, stat
