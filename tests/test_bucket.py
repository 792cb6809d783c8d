"""`feedsvc build s3://...` against a real S3 API server on loopback (moto's server mode)."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from feedsvc.bucket import Bucket
from feedsvc.catalog import load_catalog
from feedsvc.cli import main
from feedsvc.destination import MANIFEST
from feedsvc.ingest import ingest_document
from feedsvc.site import IMMUTABLE, SiteMap
from feedsvc.sources import Document
from feedsvc.static import build_site, count_files

from .conftest import BASE_URL, FEEDS

BUCKET = "feeds-site"
WEATHER = {"feeds/weather.rss", "feeds/weather.atom", "feeds/weather.json", "topics/weather.html"}


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


def bucket(catalog, prefix: str = "site", overwrite: bool = False) -> Bucket:
    url = f"s3://{BUCKET}/{prefix}"
    return Bucket(url, catalog.site.max_age, SiteMap(catalog).is_feed, overwrite)


def objects(client, prefix: str = "site/") -> dict[str, bytes]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for entry in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
            found[entry["Key"].removeprefix(prefix)] = body
    return found


class Killed(Exception):
    """The build's process dying, as the bucket sees it: no call after it."""


def die_after(calls: int):
    """A progress callback that stops the build at its `calls`-th step (an item page or a
    fixed resource put)."""
    steps = iter(range(calls - 1))

    def progress(_: int) -> None:
        if next(steps, None) is None:
            raise Killed

    return progress


def weather_catalog(tmp_path: Path):
    """The catalogue with one more topic (three feeds and a page)."""
    feeds = shutil.copytree(FEEDS, tmp_path / "feeds", ignore=shutil.ignore_patterns("samples"))
    (feeds / "topics" / "weather.toml").write_text(
        'title = "Weather"\ndescription = "Storms."\n[rules]\nmatch = ["storm", "ferry"]\n'
    )
    return load_catalog(feeds, BASE_URL)


def expected_headers(site: SiteMap, store, path: str, max_age: int) -> tuple[str, str]:
    rendered = site.render(store, path)
    if rendered.cache_control:  # archive pages: a year once a newer one links them
        cache = rendered.cache_control
        assert cache in (IMMUTABLE, f"public, max-age={max_age}")
    elif site.is_feed(path):
        cache = f"public, max-age={max_age}"
    else:
        cache = f"public, max-age={min(60, max_age)}"
    return rendered.content_type, cache


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
        content_type, cache = expected_headers(site, filled, path, catalog.site.max_age)
        assert head["ContentType"] == content_type and "charset=" in head["ContentType"]
        assert head["CacheControl"] == cache, path
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
    s3.put_object(Bucket=BUCKET, Key="site/humans.txt", Body=b"Team: the desk\n")
    (feeds / "topics" / "weather.toml").unlink()
    item = filled.newest("all", 1)[0]
    filled.kill([item.id], None, "test")
    report = build_site(filled, load_catalog(feeds, BASE_URL), bucket(catalog))
    stored = objects(s3)
    assert f"items/{item.id}.html" in report.paths  # now the withdrawn page
    assert report.removed == 4  # three feeds and the topic's page
    assert not [key for key in stored if "weather" in key]
    assert stored["humans.txt"] == b"Team: the desk\n"  # not the build's: left alone


def test_interrupted_build_leaves_whole_objects_and_the_next_completes_it(
    s3, filled, catalog, clock, tmp_path
) -> None:
    local = tmp_path / "site"
    build_site(filled, catalog, bucket(catalog))
    clock.advance(hours=1)
    ingest_document(
        filled, catalog, Document("late.txt", b"-\nFerry runs late\n-\nTide high\n", "wire")
    )

    with pytest.raises(Killed):
        build_site(
            filled, catalog, bucket(catalog), progress=die_after(1)
        )  # after one new item page
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


def test_objects_a_killed_build_put_are_removed_once_the_site_drops_them(
    s3, filled, catalog, tmp_path
) -> None:
    build_site(filled, catalog, bucket(catalog))
    s3.put_object(Bucket=BUCKET, Key="site/humans.txt", Body=b"Team: the desk\n")
    weather = weather_catalog(tmp_path)
    # Killed after its last put (feeds go last), before its manifest: only its journal
    # says the weather topic's objects are feedsvc's.
    with pytest.raises(Killed):
        steps = count_files(filled, weather)
        build_site(filled, weather, bucket(weather), progress=die_after(steps))
    assert objects(s3).keys() >= WEATHER
    report = build_site(filled, catalog, bucket(catalog))
    stored = objects(s3)
    assert report.removed == len(WEATHER) and not WEATHER & stored.keys()
    assert stored.pop("humans.txt") == b"Team: the desk\n"  # not the build's: left alone
    assert stored.pop(MANIFEST)
    build_site(filled, catalog, tmp_path / "site")
    assert stored == local_files(tmp_path / "site")
    again = build_site(filled, catalog, bucket(catalog))
    assert (again.written, again.removed) == (0, 0)


def test_an_object_a_killed_build_claimed_but_never_replaced_is_kept(
    s3, filled, catalog, tmp_path
) -> None:
    build_site(filled, catalog, bucket(catalog))
    ours = b"<!doctype html><p>Our own weather page.</p>\n"  # where the topic's page would go
    s3.put_object(Bucket=BUCKET, Key="site/topics/weather.html", Body=ours)
    weather = weather_catalog(tmp_path)
    with pytest.raises(Killed):  # after one item page: the topic's page was not put yet
        build_site(filled, weather, bucket(weather, overwrite=True), progress=die_after(1))
    assert objects(s3).get("topics/weather.html") == ours
    report = build_site(filled, catalog, bucket(catalog))
    assert objects(s3).get("topics/weather.html") == ours
    assert report.removed == 0


def test_objects_deleted_or_replaced_by_hand_are_put_again(s3, filled, catalog, tmp_path) -> None:
    build_site(filled, catalog, tmp_path / "site")
    build_site(filled, catalog, bucket(catalog))
    item = next(path for path in objects(s3) if path.startswith("items/"))
    for path in ("feeds/all.atom", item):
        s3.delete_object(Bucket=BUCKET, Key=f"site/{path}")
    s3.put_object(Bucket=BUCKET, Key="site/topics/world.html", Body=b"defaced")
    report = build_site(filled, catalog, bucket(catalog))
    assert sorted(report.paths) == sorted(["feeds/all.atom", item, "topics/world.html"])
    assert (report.written, report.removed) == (3, 0)
    stored = objects(s3)
    stored.pop(MANIFEST)
    assert stored == local_files(tmp_path / "site")
    site = SiteMap(catalog)
    for path in report.paths:
        head = s3.head_object(Bucket=BUCKET, Key=f"site/{path}")
        expected = expected_headers(site, filled, path, catalog.site.max_age)
        assert (head["ContentType"], head["CacheControl"]) == expected, path
    again = build_site(filled, catalog, bucket(catalog))
    assert (again.written, again.removed) == (0, 0)


@contextmanager
def iam_enforced(endpoint: str) -> Iterator[None]:
    """moto's server checks every request against IAM (signature, then the user's policies)
    while this lasts; `/moto-api/reset-auth` takes how many requests to let through first."""

    def reset(count: str) -> None:
        request = urllib.request.Request(  # not a form: moto reads the body as it is
            f"{endpoint}/moto-api/reset-auth",
            data=count.encode(),
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    reset("0")
    try:
        yield
    finally:
        reset("inf")


@pytest.fixture
def iam_user(s3):
    """Makes IAM users with an inline policy (none: no permission); removed at the end."""
    iam = boto3.client("iam")
    made: list[tuple[str, str]] = []

    def make(name: str, actions: list[str]) -> tuple[str, str]:
        iam.create_user(UserName=name)
        if actions:
            statement = {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            }
            policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
            iam.put_user_policy(UserName=name, PolicyName="site", PolicyDocument=policy)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        made.append((name, key["AccessKeyId"]))
        return key["AccessKeyId"], key["SecretAccessKey"]

    yield make
    for name, key_id in made:
        iam.delete_access_key(UserName=name, AccessKeyId=key_id)
        for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy)
        iam.delete_user(UserName=name)


def denied(s3_client, operation: str) -> bool:
    """Whether the server refuses OPERATION (as feedsvc's build calls it) to this client."""
    calls = {
        "ListObjectsV2": lambda: s3_client.list_objects_v2(Bucket=BUCKET, Prefix="site/"),
        "GetObject": lambda: s3_client.get_object(Bucket=BUCKET, Key=f"site/{MANIFEST}"),
        "HeadObject": lambda: s3_client.head_object(Bucket=BUCKET, Key=f"site/{MANIFEST}"),
        "HeadBucket": lambda: s3_client.head_bucket(Bucket=BUCKET),
        "PutObject": lambda: s3_client.put_object(Bucket=BUCKET, Key="probe/denied", Body=b""),
        "DeleteObject": lambda: s3_client.delete_object(Bucket=BUCKET, Key="probe/denied"),
    }
    try:
        calls[operation]()
    except ClientError as error:
        return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403
    return False


def test_access_denied_is_one_line_and_writes_nothing(
    s3, endpoint, iam_user, runner, filled, catalog, clock, monkeypatch
) -> None:
    build_site(filled, catalog, bucket(catalog))
    clock.advance(hours=1)  # a new item: the next build has pages and feeds to put
    ingest_document(filled, catalog, Document("new.txt", b"-\nLighthouse keeper retires\n", "wire"))
    before = {key: s3.head_object(Bucket=BUCKET, Key=f"site/{key}")["ETag"] for key in objects(s3)}
    users = [  # one who may read but not write, one who may do nothing
        iam_user("feeds-reader", ["s3:ListBucket", "s3:GetObject"]),
        iam_user("feeds-nobody", []),
    ]
    prefix = f"feedsvc: error: s3://{BUCKET}/site: access denied ("
    with iam_enforced(endpoint):
        for key_id, secret in users:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
            result = runner.invoke(main, ["build", f"s3://{BUCKET}/site", "--base-url", BASE_URL])
            assert result.exit_code == 1, result.output
            # Which request a server refuses first is its own choice (moto 5.2.6 refuses the
            # reader's listing, 5.2.5 its first put): the line names the one really refused.
            assert result.stderr.startswith(prefix) and result.stderr.endswith(")\n")
            assert result.stderr.count("\n") == 1, result.stderr
            operation = result.stderr[len(prefix) : -2]
            assert denied(boto3.client("s3"), operation), operation
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    after = {key: s3.head_object(Bucket=BUCKET, Key=f"site/{key}")["ETag"] for key in objects(s3)}
    assert after == before  # no object, journal or manifest written


def test_an_archive_page_that_fills_relinks_the_one_before(
    s3, filled, catalog, clock, tmp_path
) -> None:
    feeds = shutil.copytree(FEEDS, tmp_path / "feeds", ignore=shutil.ignore_patterns("samples"))
    with (feeds / "site.toml").open("a") as toml:
        toml.write("archive_page_size = 5\n")
    paged = load_catalog(feeds, BASE_URL)
    build_site(filled, paged, bucket(paged))
    pages = filled.archive_pages("all", 5)
    clock.advance(hours=1)
    missing = 5 - filled.counts()["all"] % 5  # headlines that fill the unfinished page
    text = "".join(f"-\nLighthouse note {number}\n" for number in range(missing))
    ingest_document(filled, paged, Document("more.txt", text.encode(), "wire"))
    assert filled.archive_pages("all", 5) == pages + 1
    report = build_site(filled, paged, bucket(paged))  # incremental: what changed since
    assert f"feeds/all/archive/{pages - 1}.atom" in report.paths  # now with a next-archive link
    order = report.paths.index  # the page it links goes up first
    assert order(f"feeds/all/archive/{pages}.atom") < order(f"feeds/all/archive/{pages - 1}.atom")
    build_site(filled, paged, tmp_path / "site")  # a whole build
    stored = objects(s3)
    stored.pop(MANIFEST)
    assert stored == local_files(tmp_path / "site")


def test_an_object_of_someone_elses_where_the_site_writes_is_refused_unless_overwrite(
    s3, runner, filled
) -> None:
    s3.put_object(Bucket=BUCKET, Key="site/robots.txt", Body=b"User-agent: *\nDisallow: /x\n")
    build = ["build", f"s3://{BUCKET}/site", "--base-url", BASE_URL]
    result = runner.invoke(main, build)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"feedsvc: error: s3://{BUCKET}/site: robots.txt: not written by feedsvc build "
        f"(not in {MANIFEST}); move it away, or build with --overwrite to replace it\n"
    )
    assert objects(s3) == {"robots.txt": b"User-agent: *\nDisallow: /x\n"}  # nothing written
    result = runner.invoke(main, [*build, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert objects(s3)["robots.txt"].startswith(b"User-agent: *\nAllow: /")
