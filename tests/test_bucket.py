"""`feedsvc build s3://...` against a real S3 API server on loopback (moto's server mode)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from feedsvc.bucket import Bucket
from feedsvc.catalog import load_catalog
from feedsvc.cli import main
from feedsvc.destination import MANIFEST
from feedsvc.ingest import ingest_document
from feedsvc.site import IMMUTABLE, SiteMap
from feedsvc.sources import Document
from feedsvc.static import build_site

from .conftest import BASE_URL, FEEDS

BUCKET = "feeds-site"


@pytest.fixture(scope="module")
def endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for entry in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=entry["Key"])
    client.delete_bucket(Bucket=BUCKET)


def bucket(catalog, prefix: str = "site") -> Bucket:
    return Bucket(f"s3://{BUCKET}/{prefix}", catalog.site.max_age, SiteMap(catalog).is_feed)


def objects(client, prefix: str = "site/") -> dict[str, bytes]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for entry in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
            found[entry["Key"].removeprefix(prefix)] = body
    return found


def local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".gz") and not p.name.startswith(".feedsvc-")
    }


def test_bucket_holds_the_local_builds_bytes_with_headers(s3, filled, catalog, tmp_path) -> None:
    build_site(filled, catalog, tmp_path / "site")
    report = build_site(filled, catalog, bucket(catalog))
    stored = objects(s3)
    assert stored.pop(MANIFEST)  # the build's record, under the prefix
    assert stored == local_files(tmp_path / "site")
    assert not [key for key in stored if key.endswith(".gz")]
    assert (report.written, report.unchanged, report.removed) == (len(stored), 0, 0)
    kinds = [SiteMap(catalog).is_feed(path) for path in report.paths]  # upload order
    assert kinds == sorted(kinds)  # feeds last: nothing links to an object not there yet
    assert report.paths[0].startswith("items/")
    site = SiteMap(catalog)
    for path in stored:
        head = s3.head_object(Bucket=BUCKET, Key=f"site/{path}")
        rendered = site.render(filled, path)
        assert head["ContentType"] == rendered.content_type and "charset=" in head["ContentType"]
        if rendered.cache_control:
            expected = IMMUTABLE
        elif site.is_feed(path):
            expected = f"public, max-age={catalog.site.max_age}"
        else:
            expected = f"public, max-age={min(60, catalog.site.max_age)}"
        assert head["CacheControl"] == expected, path
        assert not head.get("Metadata") and not head.get("ContentEncoding")
    manifest = s3.head_object(Bucket=BUCKET, Key=f"site/{MANIFEST}")
    assert manifest["CacheControl"] == "private, no-store"
    assert site.producer(MANIFEST) is None  # no site path can ever be the manifest


def test_second_build_uploads_nothing_and_one_item_only_what_changed(
    s3, filled, catalog, clock, tmp_path
) -> None:
    local = tmp_path / "site"
    build_site(filled, catalog, local)
    build_site(filled, catalog, bucket(catalog))
    again = build_site(filled, catalog, bucket(catalog))
    assert (again.written, again.removed) == (0, 0) and again.unchanged > 0
    clock.advance(hours=1)
    ingest_document(filled, catalog, Document("new.txt", b"-\nLighthouse keeper retires\n", "wire"))
    before = objects(s3)
    local_report = build_site(filled, catalog, local)
    report = build_site(filled, catalog, bucket(catalog))
    after = objects(s3)
    changed = {k for k in after if before.get(k) != after[k]} - {MANIFEST}
    assert set(report.paths) == changed == set(local_report.paths)
    assert 0 < report.written < report.written + report.unchanged
    assert {k: v for k, v in after.items() if k != MANIFEST} == local_files(local)


def test_objects_the_site_no_longer_has_are_deleted_and_others_kept(
    s3, filled, catalog, tmp_path
) -> None:
    feeds = shutil.copytree(FEEDS, tmp_path / "feeds", ignore=shutil.ignore_patterns("samples"))
    (feeds / "topics" / "weather.toml").write_text(
        'title = "Weather"\ndescription = "Storms."\n[rules]\nmatch = ["storm", "ferry"]\n'
    )
    build_site(filled, load_catalog(feeds, BASE_URL), bucket(catalog))
    assert "feeds/weather.rss" in objects(s3)
    s3.put_object(Bucket=BUCKET, Key="site/robots.txt", Body=b"User-agent: *\n")
    (feeds / "topics" / "weather.toml").unlink()
    item = filled.newest("all", 1)[0]
    filled.kill([item.id], None, "test")
    report = build_site(filled, load_catalog(feeds, BASE_URL), bucket(catalog))
    stored = objects(s3)
    assert f"items/{item.id}.html" in report.paths  # now the withdrawn page
    assert report.removed == 4  # three feeds and the topic's page
    assert not [key for key in stored if "weather" in key]
    assert stored["robots.txt"] == b"User-agent: *\n"  # not the build's: left alone


def test_interrupted_build_leaves_whole_objects_and_the_next_completes_it(
    s3, filled, catalog, clock, tmp_path
) -> None:
    local = tmp_path / "site"
    build_site(filled, catalog, bucket(catalog))
    clock.advance(hours=1)
    ingest_document(
        filled, catalog, Document("late.txt", b"-\nFerry runs late\n-\nTide high\n", "wire")
    )

    class Killed(Exception):
        pass

    def die(_: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        build_site(filled, catalog, bucket(catalog), progress=die)  # after one new item page
    report = build_site(filled, catalog, bucket(catalog))
    assert report.written > 0
    build_site(filled, catalog, local)
    stored = objects(s3)
    stored.pop(MANIFEST)
    assert stored == local_files(local)


def test_bucket_errors_are_one_line(s3, endpoint, runner, filled, monkeypatch) -> None:
    def build(target: str) -> str:
        result = runner.invoke(main, ["build", target, "--base-url", BASE_URL])
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        return result.stderr

    assert build("s3://no-such-bucket/site") == (
        "feedsvc: error: s3://no-such-bucket/site: no such bucket: no-such-bucket\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert "no credentials" in build(f"s3://{BUCKET}/site")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    assert "cannot reach the endpoint" in build(f"s3://{BUCKET}/site")
