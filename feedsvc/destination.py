"""Where `feedsvc build` writes: the one small interface of its destinations (a directory,
`directory.py`; an S3 bucket, `bucket.py`), and what they share (report, manifest, errors)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .errors import FeedsvcError
from .site import Rendered

# The build's own record at the destination. No site path starts with ".": the site map can
# never produce it, and the README has it denied (nginx, CDN).
MANIFEST = ".feedsvc-build.json"
OWN_PREFIX = ".feedsvc-"  # the build's own records (manifest, journals), never a site file


@dataclass(slots=True)
class BuildReport:
    """Files of the site, a file and its .gz counting as one."""

    written: int = 0  # the file or its .gz written
    unchanged: int = 0  # both already held the bytes
    removed: int = 0  # written by an earlier build, no longer made
    paths: list[str] = field(default_factory=list)  # written, relative to the site's root
    archives_rewritten: int = 0  # full archive pages whose bytes changed (a kill, a refile)
    next_lift: datetime | None = None  # when an embargo lifts: rebuild then


@dataclass(frozen=True, slots=True)
class Manifest:
    """What earlier builds left at the destination: the store generation and site signature of
    the last finished one, and every file they wrote (a directory: `.gz` included); a bucket
    also keeps a digest of each object's bytes and headers, and the ETag the bucket gave it, to
    skip unchanged puts of objects still there as it left them."""

    generation: int = 0
    signature: str = ""
    files: frozenset[str] = frozenset()
    digests: Mapping[str, str] = field(default_factory=dict)
    etags: Mapping[str, str] = field(default_factory=dict)  # a bucket: each object's ETag


class BuildError(FeedsvcError):
    """The destination cannot be used, or holds someone else's file where the site writes."""


class Destination(Protocol):
    """What a build needs of the place it writes to. A build reads the manifest, claims the
    paths it may write, puts every resource (each destination writes only what changed, and
    counts in `report`), removes what earlier builds wrote and the site no longer has, then
    writes the manifest, last: a build killed before then is completed by the next."""

    report: BuildReport

    def read_manifest(self) -> Manifest: ...

    def claim(self, paths: set[str]) -> None:
        """Before any put: every path this build may write. A destination that cannot note
        each write cheaply (a bucket) notes those it does not own yet all at once, so that a
        build killed before its manifest still owns what it wrote."""
        ...

    def existing(self) -> set[str]:
        """Site paths an earlier build left here complete (need not be written again unless
        their resource changed)."""
        ...

    def put(self, path: str, rendered: Rendered) -> None:
        """Store `rendered` at `path` unless it already holds those bytes."""
        ...

    def put_unordered(self, resources: Iterable[tuple[str, Rendered]]) -> None:
        """`put` each, in any order or several at once (resources that link none of the
        others: item pages); all are stored when it returns."""
        ...

    def remove_others(self, expected: set[str]) -> None:
        """Delete what earlier builds wrote that is not in `expected` (nothing else)."""
        ...

    def write_manifest(self, manifest: Manifest) -> None: ...

    def close(self) -> None: ...


def is_site_path(path: str) -> bool:
    """Not one of the build's own records: a hand-edited manifest must not make a build
    delete them (both destinations check each path a manifest lists)."""
    return not path.rpartition("/")[2].startswith(OWN_PREFIX)
