"""`feedsvc build`: golden feeds, atomic and incremental writes, safe paths."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import feedparser
import pytest

from feedsvc.errors import FeedsvcError
from feedsvc.ingest import ingest_document
from feedsvc.render import FORMATS
from feedsvc.sources import Document
from feedsvc.static import MANIFEST, build_site

from .conftest import GOLDEN
from .feedcheck import assert_valid_atom, assert_valid_json_feed


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
    # Per topic its feeds and its page; the index, the OPML list, the pages' script; items;
    # each full archive page in every format.
    pages = sum(filled.archive_pages(t.slug, catalog.site.page_size) for t in catalog.feeds)
    assert pages >= 1  # the samples fill one page of `all`
    expected = len(catalog.feeds) * (len(FORMATS) + 1) + 3 + len(items) + pages * len(FORMATS)
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


def test_stale_files_are_removed_and_missing_ones_restored(filled, catalog, tmp_path) -> None:
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    (site / "feeds/retired.rss").write_text("old")
    (site / "feeds/.feedsvc-tmp-abc").write_text("half")
    victim = next((site / "items").glob("*.html"))
    victim.unlink()
    (site / "robots.txt").write_text("User-agent: *\n")  # not ours: left alone
    report = build_site(filled, catalog, site)
    assert report.removed == 1
    assert not (site / "feeds/retired.rss").exists()
    assert not (site / "feeds/.feedsvc-tmp-abc").exists()
    assert victim.exists()
    assert (site / "robots.txt").exists()


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
