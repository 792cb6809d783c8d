"""`feedsvc build`: the static site, from the site map to a destination (a directory, or an S3
bucket), writing only what changed and removing only what a build wrote."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from . import __version__, buildpool
from .buildpool import BuildPool
from .catalog import ALL, Catalog
from .destination import MANIFEST, BuildError, BuildReport, Destination, Manifest
from .directory import JOURNAL, TEMP_PREFIX, Directory
from .model import Item
from .render import FORMATS, archive_path, item_path
from .site import ARCHIVE, Producer, Rendered, SiteMap
from .store import Store

__all__ = [
    "JOURNAL",
    "MANIFEST",
    "TEMP_PREFIX",
    "BuildError",
    "BuildReport",
    "build_site",
    "count_files",
]


def build_site(
    store: Store,
    catalog: Catalog,
    target: Path | Destination,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> BuildReport:
    """Write every feed, page and list of the site to `target` (a directory: with a `.gz`
    beside each file).

    Removes only files an earlier build wrote that the site no longer has; in a directory, a
    file of someone else's where the build must write is a `BuildError`, unless `overwrite`."""
    destination = Directory(target, overwrite) if isinstance(target, Path) else target
    try:
        manifest = destination.read_manifest()
        signature = _signature(catalog)
        since = manifest.generation if manifest.signature == signature else 0
        site = SiteMap(catalog)
        store.generation()  # publishes held items whose embargo has lifted (a writable store)
        with store.snapshot():  # one consistent view of the store for the whole build
            generation = store.generation()
            _write_all(store, site, destination, since, progress)
            destination.report.next_lift = store.next_lift()
        destination.write_manifest(Manifest(generation, signature))  # last: the build is done
    finally:
        destination.close()
    return destination.report


def _write_all(
    store: Store,
    site: SiteMap,
    destination: Destination,
    since: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Item pages and archive pages first, then topic pages, index and OPML, then feeds: a
    reader (or a CDN) never follows a link to a resource not written yet. Withdrawn items'
    pages come after all of them, once nothing written links them any more."""
    expected = site.path_set(store)
    destination.claim(expected)
    # Authors' and sources' pages and feeds: those that may have changed, written with the
    # topics' below (any the destination lacks are written as new ones are).
    bylines = site.bylines(store, site.byline_changes(store, since))
    done = set(site.fixed_paths()) | {path for path, _ in bylines}
    parallel = (
        isinstance(destination, Directory)
        and since == 0  # a whole build: each item's page to write, maybe a great many
        and store.counts()[ALL] >= buildpool.PARALLEL_FROM
        and buildpool.usable()
    )
    with BuildPool(site, destination) if parallel else contextlib.nullcontext() as pool:
        _write_pages(store, site, destination, pool, since, expected, done, bylines, progress)


def _write_pages(
    store: Store,
    site: SiteMap,
    destination: Destination,
    pool: BuildPool | None,
    since: int,
    expected: set[str],
    done: set[str],
    bylines: list[tuple[str, Producer]],
    progress: Callable[[int], None] | None,
) -> None:
    """`_write_all`'s writes, in its order; with a pool, its workers render (and write the
    item pages, which link no other)."""
    existing = destination.existing()

    def item_pages() -> Iterator[tuple[str, Rendered]]:
        for item in store.changed_since(since):  # an item's page changes only with the item
            done.add(item_path(item.id))
            yield item_path(item.id), site.item_page(item)
            if progress:
                progress(1)

    def items() -> Iterator[Item]:
        for item in store.changed_since(since):
            done.add(item_path(item.id))
            yield item

    if pool is not None:
        pool.item_pages(items(), progress)
    else:
        destination.put_unordered(item_pages())  # an item page links no other
    size = site.catalog.site.page_size
    changed = store.archive_changes(since, size)  # an item changed, or a kill
    # A page that fills gives the one before it a next-archive link (RFC 5005). Newest first:
    # a page is written after the pages it links to.
    full = {topic: store.archive_pages(topic, size) for topic in {t for t, _ in changed}}
    relinked = {(topic, page - 1) for topic, page in changed if 0 < page < full[topic]} - changed
    changed |= relinked
    places = sorted(changed, key=lambda place: (place[0], -place[1]))
    if pool is not None:  # rendered by the workers, written here in the same order
        feeds = (site.archive_feed(store, topic, page) for topic, page in places)
        for relative, rendered, zipped in pool.archives(feed for feed in feeds if feed):
            pool.directory.put_zipped(relative, rendered, zipped)
            done.add(relative)
    else:
        for topic, page in places:
            feed = site.archive_feed(store, topic, page)  # read once for its three formats
            for extension in FORMATS:
                relative = archive_path(topic, page, extension)
                rendered = site.archive_rendered(feed, extension) if feed else None
                if rendered:
                    destination.put(relative, rendered)
                    done.add(relative)
    # A split sitemap's files (item pages by archive place): the ones whose items changed.
    for relative in site.sitemap_changes(store, since):
        rendered = site.render(store, relative)
        if rendered:
            destination.put(relative, rendered)
            done.add(relative)
    # Few: a withdrawn page is small and rarely rewritten. It replaces the item's page only
    # after every feed and page that linked it is written without it (below).
    withdrawn = [item_path(item_id) for item_id in store.killed_ids()]
    for relative in sorted(expected - existing - done - set(withdrawn)):  # new, lost, unfinished
        rendered = site.render(store, relative)
        if rendered:
            destination.put(relative, rendered)
    fixed = sorted(
        [*site.fixed(), *bylines],
        key=lambda entry: site.is_feed(entry[0]),
    )  # feeds last
    for relative, produce in fixed:
        rendered = produce(store)
        if rendered:  # always, since the snapshot holds: a byline's comes from the store's list
            destination.put(relative, rendered)
        if progress:
            progress(1)
    for relative in withdrawn:
        rendered = site.render(store, relative)
        if rendered:
            destination.put(relative, rendered)
    destination.remove_others(expected)
    rewritten = {p for p in destination.report.paths if ARCHIVE.fullmatch(p)} & existing
    # A page that only gained its next-archive link is not news; one whose entries changed is.
    rewritten -= {archive_path(t, page, ext) for t, page in relinked for ext in FORMATS}
    destination.report.archives_rewritten = len(rewritten)


def count_files(store: Store, catalog: Catalog) -> int:
    """Roughly how many files a full build writes (for a progress bar)."""
    return len(SiteMap(catalog).fixed_paths()) + store.counts()[ALL]


def _signature(catalog: Catalog) -> str:
    """Changes when anything but the store changes every page: site, topics, feedsvc itself."""
    site = json.dumps([str(catalog.site), catalog.digest, __version__]).encode()
    return hashlib.sha256(site).hexdigest()[:16]
