"""`feedsvc build`: golden feeds, atomic and incremental writes, safe paths."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import feedparser
import pytest

from feedsvc import buildpool
from feedsvc.catalog import Catalog, load_catalog
from feedsvc.errors import FeedsvcError
from feedsvc.ingest import ingest_document
from feedsvc.render import FORMATS
from feedsvc.site import SiteMap
from feedsvc.sources import Document
from feedsvc.static import JOURNAL, MANIFEST, BuildError, build_site

from .conftest import FEEDS, GOLDEN
from .feedcheck import assert_valid_atom, assert_valid_json_feed


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def build_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs twice: a build writing one file at a time, and one with worker
    processes (which a whole build of a large store uses), here from the first item."""
    monkeypatch.setattr(buildpool, "PARALLEL_FROM", 0 if request.param == "parallel" else 10**9)
    return request.param


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def test_feeds_match_the_golden_files(filled, catalog, tmp_path) -> None:
    build_site(filled, catalog, tmp_path / "site")
    produced = {
        name: data
        for name, data in files(tmp_path / "site").items()
        if name.startswith("feeds/") and name.count("/") == 1 and not name.endswith(".gz")
    }
    assert len(produced) == len(catalog.feeds) * len(FORMATS)
    if os.environ.get("FEEDSVC_UPDATE_GOLDEN"):
        for old in GOLDEN.glob("*"):
            old.unlink()
        for name, data in produced.items():
            (GOLDEN / Path(name).name).write_bytes(data)
    golden = {f"feeds/{p.name}": p.read_bytes() for p in GOLDEN.iterdir() if p.is_file()}
    assert sorted(produced) == sorted(golden), "regenerate with FEEDSVC_UPDATE_GOLDEN=1"
    for name, data in produced.items():
        assert data == golden[name], f"{name} differs from tests/golden (FEEDSVC_UPDATE_GOLDEN=1)"


def test_site_has_every_file_and_valid_feeds(filled, catalog, tmp_path) -> None:
    site = tmp_path / "site"
    report = build_site(filled, catalog, site)
    items = filled.newest("all", 1000)
    for topic in catalog.feeds:
        assert not feedparser.parse((site / f"feeds/{topic.slug}.rss").read_bytes()).bozo
        assert_valid_atom((site / f"feeds/{topic.slug}.atom").read_bytes())
        assert_valid_json_feed((site / f"feeds/{topic.slug}.json").read_bytes())
    for item in items:
        page = (site / f"items/{item.id}.html").read_text()
        assert f"<h2>{item.title.replace('&', '&amp;')}" in page.replace("&#39;", "'").replace(
            "&#34;", '"'
        )
    index = (site / "index.html").read_text()
    assert 'rel="alternate" type="application/atom+xml"' in index
    assert (site / "feeds.opml").read_bytes().startswith(b'<?xml version="1.0"')
    for name, data in files(site).items():
        if name.endswith(".gz"):
            source = site / name.removesuffix(".gz")
            assert gzip.decompress(data) == source.read_bytes()
            assert (site / name).stat().st_mtime_ns == source.stat().st_mtime_ns
    # Per topic its feeds and its page; the index, the OPML list, the pages' script, the two
    # sitemaps and robots.txt; items; each full archive page in every format.
    pages = sum(filled.archive_pages(t.slug, catalog.site.page_size) for t in catalog.feeds)
    assert pages >= 1  # the samples fill one page of `all`
    expected = len(catalog.feeds) * (len(FORMATS) + 1) + 6 + len(items) + pages * len(FORMATS)
    assert report.written == expected


def test_rebuild_rewrites_only_what_changed(filled, catalog, clock, tmp_path) -> None:
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    mtimes = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}
    again = build_site(filled, catalog, site)
    assert again.written == 0 and again.removed == 0
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    clock.advance(hours=1)
    ingest_document(filled, catalog, Document("new.txt", b"-\nLighthouse keeper retires\n", "wire"))
    report = build_site(filled, catalog, site)
    new_item = filled.newest("all", 1)[0]
    assert f"items/{new_item.id}.html" in report.paths
    assert not any(p.startswith("items/") and new_item.id not in p for p in report.paths)
    assert "feeds/all.rss" in report.paths and "index.html" in report.paths


def test_build_is_byte_identical_for_the_same_store(filled, catalog, tmp_path) -> None:
    build_site(filled, catalog, tmp_path / "one")
    build_site(filled, catalog, tmp_path / "two")
    assert files(tmp_path / "one") == files(tmp_path / "two")


def test_parallel_build_writes_the_same_bytes(filled, catalog, tmp_path, monkeypatch) -> None:
    """Worker processes write the very files, .gz and manifest of a one-at-a-time build."""
    monkeypatch.setattr(buildpool, "PARALLEL_FROM", 10**9)
    serial = build_site(filled, catalog, tmp_path / "serial")
    monkeypatch.setattr(buildpool, "PARALLEL_FROM", 0)
    parallel = build_site(filled, catalog, tmp_path / "parallel")
    assert files(tmp_path / "serial") == files(tmp_path / "parallel")
    assert manifest_files(tmp_path / "serial") == manifest_files(tmp_path / "parallel")
    assert sorted(serial.paths) == sorted(parallel.paths)
    assert (serial.written, serial.unchanged) == (parallel.written, parallel.unchanged)


def _die(items: list) -> list:
    """A build worker's task that ends its process, as the kernel's OOM killer would."""
    os._exit(9)


def test_a_worker_that_dies_is_one_line_and_the_next_build_finishes(
    filled, catalog, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(buildpool, "PARALLEL_FROM", 0)
    monkeypatch.setattr(buildpool, "_item_pages", _die)  # the forked workers run this
    with pytest.raises(BuildError, match="a build worker died") as raised:
        build_site(filled, catalog, tmp_path / "site")
    assert "\n" not in str(raised.value)
    monkeypatch.undo()
    build_site(filled, catalog, tmp_path / "site")
    build_site(filled, catalog, tmp_path / "again")
    assert files(tmp_path / "site") == files(tmp_path / "again")


def site_files(root: Path) -> dict[str, bytes]:
    """Every file under root but the build's own (.feedsvc-*), as relative path -> bytes."""
    return {name: data for name, data in files(root).items() if ".feedsvc-" not in name}


def manifest_files(root: Path) -> set[str]:
    return set(json.loads((root / MANIFEST).read_bytes())["files"])


def catalogue_with_weather(tmp_path: Path) -> Path:
    feeds = shutil.copytree(FEEDS, tmp_path / "feeds", ignore=shutil.ignore_patterns("samples"))
    (feeds / "topics" / "weather.toml").write_text(
        'title = "Weather"\ndescription = "Storms, floods, heat."\n'
        '[rules]\nmatch = ["storm", "flood", "heatwave", "ferry"]\n'
    )
    return feeds


def catalogue_at(feeds: Path) -> Catalog:
    return load_catalog(feeds, "http://127.0.0.1:8000/")  # a build needs a base URL


def test_manifest_lists_every_file_the_build_wrote(filled, catalog, tmp_path) -> None:
    site = tmp_path / "site"
    report = build_site(filled, catalog, site)
    written = set(site_files(site))
    assert manifest_files(site) == written
    assert {name for name in written if not name.endswith(".gz")} == set(report.paths)
    assert written == set(report.paths) | {f"{name}.gz" for name in report.paths}
    assert {p.name for p in site.iterdir() if p.name.startswith(".")} == {MANIFEST}


def test_manifest_stays_sorted_as_files_come_and_go(filled, catalog, clock, tmp_path) -> None:
    """A rebuild keeps the listed order and merges in the new names: still `sorted`."""
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    (site / MANIFEST).write_text(json.dumps(json.loads((site / MANIFEST).read_bytes())))
    clock.advance(hours=1)
    for title in ("Lighthouse keeper retires", "Aardvark escapes from the zoo"):
        ingest_document(filled, catalog, Document("new.txt", f"-\n{title}\n".encode(), "wire"))
    build_site(filled, catalog, site)
    listed = json.loads((site / MANIFEST).read_bytes())["files"]
    assert listed == sorted(site_files(site)) and len(listed) == len(set(listed))


def test_files_of_others_are_never_touched(filled, catalog, clock, tmp_path) -> None:
    site = tmp_path / "site"
    theirs = {
        "feeds/custom.rss": b"<rss>mine</rss>",
        "feeds/custom.rss.gz": b"not even gzip",
        "items/photo.jpg": b"\xff\xd8\xff",
        "humans.txt": b"Team: us\n",
        "about/index.html": b"<p>About us</p>",
    }
    for name, data in theirs.items():  # a first build into a directory that is not empty
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    first = build_site(filled, catalog, site)
    clock.advance(hours=1)
    ingest_document(filled, catalog, Document("new.txt", b"-\nLighthouse keeper retires\n", "wire"))
    again = build_site(filled, catalog, site)
    assert first.removed == again.removed == 0
    assert {name: (site / name).read_bytes() for name in theirs} == theirs
    assert not manifest_files(site) & set(theirs)


def test_files_the_build_no_longer_makes_are_removed(filled, tmp_path) -> None:
    site, feeds = tmp_path / "site", catalogue_with_weather(tmp_path)
    build_site(filled, catalogue_at(feeds), site)
    weather = {name for name in site_files(site) if "weather" in name}
    assert "feeds/weather.atom.gz" in weather
    (site / "feeds/weather-notes.txt").write_text("mine")  # beside them, not theirs
    (feeds / "topics" / "weather.toml").unlink()
    report = build_site(filled, catalogue_at(feeds), site)
    assert report.removed == len({name.removesuffix(".gz") for name in weather})
    assert report.written == 0 or "index.html" in report.paths
    assert not any((site / name).exists() for name in weather)
    assert not manifest_files(site) & weather
    assert (site / "feeds/weather-notes.txt").read_text() == "mine"


def test_report_counts_are_exact(filled, catalog, clock, tmp_path) -> None:
    site = tmp_path / "site"
    first = build_site(filled, catalog, site)
    resources = {name.removesuffix(".gz") for name in site_files(site)}
    assert (first.written, first.unchanged, first.removed) == (len(resources), 0, 0)
    item = filled.newest("all", 1)[0]
    (site / f"items/{item.id}.html.gz").unlink()  # a .gz alone is a file written again
    (site / "feeds/world.json").unlink()
    before = site_files(site)
    clock.advance(hours=1)
    ingest_document(filled, catalog, Document("new.txt", b"-\nLighthouse keeper retires\n", "wire"))
    report = build_site(filled, catalog, site)
    after = site_files(site)
    changed = {name.removesuffix(".gz") for name in after if before.get(name) != after[name]}
    assert f"items/{item.id}.html" in changed and "feeds/world.json" in changed
    assert report.written == len(changed) == len(report.paths)
    # Looked at: the site's fixed files (feeds, topic pages, index, OPML, script), and two item
    # pages (the new, the .gz-less).
    assert report.unchanged + report.written == len(SiteMap(catalog).fixed_paths()) + 2
    assert report.removed == 0


def test_foreign_file_where_the_build_writes_is_an_error_unless_overwrite(
    filled, catalog, tmp_path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>My own home page</h1>")
    with pytest.raises(BuildError) as caught:
        build_site(filled, catalog, site)
    assert str(caught.value) == (
        f"{site / 'index.html'}: not written by feedsvc build (not in {MANIFEST}); "
        "move it away, or build with --overwrite to replace it"
    )
    assert (site / "index.html").read_text() == "<h1>My own home page</h1>"
    report = build_site(filled, catalog, site, overwrite=True)
    assert "index.html" in report.paths and "index.html" in manifest_files(site)
    assert build_site(filled, catalog, site).written == 0  # now ours: no --overwrite needed


def test_foreign_item_page_is_an_error_and_kept(filled, catalog, tmp_path) -> None:
    """An item page's path is checked as any other, whichever process would write it."""
    site = tmp_path / "site"
    first, second = sorted(filled.item_ids())[:2]
    (site / "items").mkdir(parents=True)
    (site / f"items/{first}.html").write_text("my page")
    (site / f"items/{second}.html.gz").write_bytes(b"my zip")
    with pytest.raises(BuildError, match=r"items/.*: not written by feedsvc build"):
        build_site(filled, catalog, site)
    assert (site / f"items/{first}.html").read_text() == "my page"
    assert (site / f"items/{second}.html.gz").read_bytes() == b"my zip"
    build_site(filled, catalog, site, overwrite=True)
    assert f"items/{first}.html" in manifest_files(site)
    assert (site / f"items/{first}.html").read_bytes() != b"my page"
    assert (
        gzip.decompress((site / f"items/{second}.html.gz").read_bytes())
        == (site / f"items/{second}.html").read_bytes()
    )


def test_foreign_gz_where_the_build_writes_is_an_error(filled, catalog, tmp_path) -> None:
    site = tmp_path / "site"
    (site / "feeds").mkdir(parents=True)
    (site / "feeds/all.rss.gz").write_bytes(b"someone else's")
    with pytest.raises(BuildError, match=r"feeds/all\.rss\.gz: not written by feedsvc build"):
        build_site(filled, catalog, site)
    assert (site / "feeds/all.rss.gz").read_bytes() == b"someone else's"


def test_manifest_deleted_by_hand(filled, catalog, clock, tmp_path) -> None:
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    (site / MANIFEST).unlink()
    # Files holding exactly what the build would write are taken back without a word.
    again = build_site(filled, catalog, site)
    assert (again.written, again.removed) == (0, 0)
    assert manifest_files(site) == set(site_files(site))
    (site / MANIFEST).unlink()
    clock.advance(hours=1)
    ingest_document(filled, catalog, Document("new.txt", b"-\nLighthouse keeper retires\n", "wire"))
    # Files that differ could be anyone's: an error, nothing removed, until --overwrite.
    kept = site_files(site)
    with pytest.raises(BuildError, match="not written by feedsvc build"):
        build_site(filled, catalog, site)
    assert set(site_files(site)) >= set(kept)
    report = build_site(filled, catalog, site, overwrite=True)
    assert report.written > 0 and report.removed == 0


class Killed(BaseException):
    """Stands for SIGKILL in the middle of a build (not an Exception: nothing catches it)."""


def test_files_of_a_killed_build_are_still_its_own(
    filled, catalog, clock, tmp_path, build_mode
) -> None:
    site = tmp_path / "site"

    count = iter(range(10))

    def die_after_ten(_: int) -> None:
        if next(count, None) is None:
            raise Killed

    with pytest.raises(Killed):
        build_site(filled, catalog, site, progress=die_after_ten)
    assert not (site / MANIFEST).exists()
    written = site_files(site)
    if build_mode == "serial":
        assert 20 <= len(written) < 30  # ten files and their .gz, and the one it was writing
    else:  # workers had written every item page of the batches in flight
        assert any(name.startswith("items/") for name in written)
    (site / "items/.feedsvc-tmp-killed").write_text("half a page")
    page = sorted(name for name in written if name.startswith("items/"))[0]
    clock.advance(hours=1)
    filled.kill([page.removeprefix("items/").removesuffix(".html")], None, "test")
    report = build_site(filled, catalog, site)  # the page now differs, and is its own
    assert page in report.paths
    assert not list(site.rglob(".feedsvc-tmp-*"))
    assert not (site / JOURNAL).exists()
    assert manifest_files(site) == set(site_files(site))


def test_hand_edited_manifest_cannot_remove_other_files(filled, catalog, tmp_path) -> None:
    site, outside = tmp_path / "site", tmp_path / "precious.txt"
    outside.write_text("keep me")
    build_site(filled, catalog, site)
    (site / "mine.txt").write_text("keep me too")
    manifest = json.loads((site / MANIFEST).read_bytes())
    manifest["files"] += ["../precious.txt", str(outside), "./mine.txt", "feeds/../mine.txt"]
    (site / MANIFEST).write_text(json.dumps(manifest))
    assert build_site(filled, catalog, site).removed == 0
    assert outside.read_text() == "keep me" and (site / "mine.txt").read_text() == "keep me too"


def test_missing_files_are_restored(filled, catalog, tmp_path) -> None:
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    victim = next((site / "items").glob("*.html"))
    victim.unlink()
    (site / "feeds/all.atom.gz").unlink()
    report = build_site(filled, catalog, site)
    assert victim.exists() and (site / "feeds/all.atom.gz").exists()
    assert report.written == 2 and report.removed == 0


def test_outdir_that_is_a_file_is_refused(filled, catalog, tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(FeedsvcError, match="not a directory"):
        build_site(filled, catalog, target)


def test_unwritable_outdir_is_refused(filled, catalog, tmp_path) -> None:
    # A directory root cannot write either (sysfs), and, as a user, one without write access.
    targets = [Path("/sys/kernel")]
    if os.geteuid() != 0:
        targets.append(tmp_path / "locked")
        targets[-1].mkdir(mode=0o500)
    for target in targets:
        with pytest.raises(FeedsvcError, match="not writable"):
            build_site(filled, catalog, target)


def test_outdir_that_cannot_be_created_is_refused(filled, catalog) -> None:
    with pytest.raises(FeedsvcError, match="cannot create the directory"):
        build_site(filled, catalog, Path("/proc/feedsvc-cannot-exist/site"))
