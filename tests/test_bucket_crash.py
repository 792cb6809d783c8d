"""kill -9 of a real `feedsvc build s3://...` against moto's S3 server on loopback.

After every kill: each object under the prefix holds the bytes one of the site's states gives
that path (local `feedsvc build DIR` of the same store and catalogue), no feed or page links a
site object that is not there, the manifest describes one whole site, and an object feedsvc
never wrote is untouched. Then a build completes the site: the local build's bytes and headers
at every path, nothing else of ours, and a report whose counts are the puts and deletes the
bucket saw (it keeps versions). `pytest -s` prints the tallies and FEEDSVC_CRASH_SEED."""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import sqlite3
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import boto3
import feedparser
import lxml.html
import pytest
from botocore.exceptions import ClientError
from lxml import etree
from moto.server import ThreadedMotoServer

from feedsvc.bucket import JOURNAL
from feedsvc.destination import MANIFEST
from feedsvc.render import FORMATS
from feedsvc.site import ARCHIVE, HTML_TYPE, IMMUTABLE, OPML, OPML_TYPE, SCRIPT_TYPE
from feedsvc.sitemap import ROBOTS_TYPE, XML_TYPE

from .server import environment, run_cli, snapshot_feeds
from .test_crash import SEED, article_title, big_document, kill_after, kill_when

BASE_URL = "https://feeds.example.org/"
BUCKET = "feeds-crash"
PREFIX = "site/"
ITEMS = 60  # items of state A: a page each, so a build that rewrites them all takes a while
EXTRA = 20  # items only state B holds (their pages: new keys, claimed in a journal)
PAGE_SIZE = 20  # archive pages of 20 items: a few each, and new ones as items come
MIN_KILLS = 5
BUDGET = 30.0  # seconds of killing, at most
MOMENTS = ("early", "archives", "feeds", "removals", "anywhere")
USER_KEY, USER_BODY = "humans.txt", b"Team: the night desk\n"  # not the build's: kept


def etag(body: bytes) -> str:
    """What S3 (and moto) give a single-part put: the MD5 of its bytes, quoted."""
    return f'"{hashlib.md5(body).hexdigest()}"'


@pytest.fixture
def s3(caplog):
    caplog.set_level("WARNING", logger="werkzeug")  # moto's server logs every request
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    # Versions let the test count the puts and deletes a build really made.
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=BUCKET, Key=PREFIX + USER_KEY, Body=USER_BODY)
    yield client, aws
    versions = [
        {"Key": entry["Key"], "VersionId": entry["VersionId"]}
        for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
    ]
    for start in range(0, len(versions), 1000):
        chunk = versions[start : start + 1000]
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": chunk, "Quiet": True})
    client.delete_bucket(Bucket=BUCKET)
    server.stop()


def cli(args: list[str], env: dict[str, str]) -> str:
    result = run_cli(args, env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def counts(output: str) -> tuple[int, int, int]:
    found = re.search(r": (\d+) written, (\d+) unchanged, (\d+) removed$", output.splitlines()[0])
    assert found, output
    return int(found[1]), int(found[2]), int(found[3])


def local_site(target: Path, env: dict[str, str]) -> dict[str, bytes]:
    """`feedsvc build DIR` of a state: every site path and its bytes (no .gz, no records)."""
    cli(["build", str(target)], env)
    return {
        path.relative_to(target).as_posix(): path.read_bytes()
        for path in target.rglob("*")
        if path.is_file()
        and not path.name.endswith(".gz")
        and not path.name.startswith(".feedsvc-")
    }


def listing(client) -> dict[str, str]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        for entry in page.get("Contents", []):
            found[entry["Key"].removeprefix(PREFIX)] = entry["ETag"]
    return found


def latest_versions(client) -> dict[str, str | None]:
    """Each key's latest version id; None where the latest is a delete marker."""
    latest: dict[str, str | None] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=PREFIX):
        for entry in page.get("Versions", []):
            if entry["IsLatest"]:
                latest[entry["Key"].removeprefix(PREFIX)] = entry["VersionId"]
        for entry in page.get("DeleteMarkers", []):
            if entry["IsLatest"]:
                latest[entry["Key"].removeprefix(PREFIX)] = None
    return latest


def head_etag(client, path: str) -> str | None:
    time.sleep(0.01)  # polled: leave moto's server (in this process) time for the build
    try:
        return client.head_object(Bucket=BUCKET, Key=PREFIX + path)["ETag"]
    except ClientError:
        return None


def oldest_item(db: Path, order: str = "") -> str:
    """A build puts changed items' pages in the order they were stored."""
    connection = sqlite3.connect(db)
    try:
        query = f"SELECT id FROM items ORDER BY seq {order} LIMIT 1"
        return connection.execute(query).fetchone()[0]
    finally:
        connection.close()


def newest_item(db: Path) -> str:
    return oldest_item(db, "DESC")


def journals(client) -> int:
    return client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + JOURNAL)["KeyCount"]


def is_record(path: str) -> bool:
    return path.rpartition("/")[2].startswith(".feedsvc-")


def site_path(url: str) -> str | None:
    url = urldefrag(url)[0].partition("?")[0]
    if not url.startswith(BASE_URL):
        return None
    return url.removeprefix(BASE_URL) or "index.html"


def links(path: str, body: bytes) -> set[str]:
    """Site paths a feed, page or list links to."""
    urls: list[str] = []
    if path.endswith((".rss", ".atom")):
        parsed = feedparser.parse(body)
        assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
        urls += [link["href"] for link in parsed.feed.get("links", [])]
        for entry in parsed.entries:
            urls += [link["href"] for link in entry.get("links", [])]
    elif path.endswith(".json"):
        feed = json.loads(body)
        urls += [feed.get(key) for key in ("home_page_url", "feed_url", "next_url")]
        urls += [item.get("url") for item in feed.get("items", [])]
    elif path.endswith(".html"):
        page = lxml.html.fromstring(body)
        urls += [urljoin(BASE_URL + path, link) for link in page.xpath("//@href | //@src")]
    elif path == OPML:
        outline = etree.fromstring(body)
        urls += outline.xpath("//@xmlUrl | //@htmlUrl")
    return {found for url in urls if url and (found := site_path(url))}


class BucketChecker:
    """Checks the bucket against the site's states (path -> bytes of a local build each)."""

    def __init__(self, client, states: dict[str, dict[str, bytes]]) -> None:
        self.client = client
        self.states = states
        self.versions: dict[str, dict[str, bytes]] = {}  # path -> ETag -> bytes
        self.holders: dict[tuple[str, str], set[str]] = {}  # (path, ETag) -> states with it
        for name, files in states.items():
            for path, body in files.items():
                self.versions.setdefault(path, {})[etag(body)] = body
                self.holders.setdefault((path, etag(body)), set()).add(name)
        self.linked: dict[tuple[str, str], set[str]] = {}
        self.listed: dict[str, str] = {}  # at the last check
        self.problems: list[str] = []
        self.tallies: Counter[str] = Counter()

    def check(self, when: str, allowed: tuple[str, ...], built: str | None = None) -> None:
        """`allowed`: the states an object may come from; `built`: the state whose manifest
        the killed build wrote (the whole site must then be that state's)."""
        listed = self.listed = listing(self.client)
        self.tallies["objects checked"] += len(listed)
        problems = []
        if listed.get(USER_KEY) != etag(USER_BODY):
            problems.append(f"{USER_KEY}, not the build's, was changed or deleted")
        paths = set().union(*(self.states[name] for name in allowed))
        for path, tag in sorted(listed.items()):
            if path == USER_KEY:
                continue
            if is_record(path):
                self.tallies["journals seen" if JOURNAL in path else "manifests seen"] += 1
                continue
            key = (path, tag)
            holders = self.holders.get(key, set())
            if not holders & set(allowed):
                problems.append(f"{path}: not the bytes of {allowed} (ETag {tag}, of {holders})")
                continue
            if key not in self.linked:
                self.linked[key] = links(path, self.versions[path][tag])
            missing = sorted((self.linked[key] & paths) - listed.keys())
            self.tallies["links checked"] += len(self.linked[key])
            if missing:
                problems.append(f"{path} links {missing[:3]}, not in the bucket")
        manifest_state = self.manifest_state(listed, problems)
        if built is not None:
            if manifest_state != built:
                problems.append(f"the build wrote a manifest of {manifest_state}, not {built}")
            theirs = {p: etag(b) for p, b in self.states[built].items()}
            ours = {p: t for p, t in listed.items() if not is_record(p) and p != USER_KEY}
            if ours != theirs:
                extra = sorted(ours.keys() - theirs.keys())[:3]
                wrong = sorted(p for p in ours.keys() & theirs.keys() if ours[p] != theirs[p])
                problems.append(
                    f"after {built}'s manifest: objects not in the site {extra}, missing "
                    f"{sorted(theirs.keys() - ours.keys())[:3]}, other bytes {wrong[:3]}"
                )
        self.problems += [f"{when}: {problem}" for problem in problems]

    def manifest_state(self, listed: dict[str, str], problems: list[str]) -> str | None:
        """The state whose whole site the manifest lists, with each object's ETag."""
        if MANIFEST not in listed:
            problems.append("no manifest")
            return None
        answer = self.client.get_object(Bucket=BUCKET, Key=PREFIX + MANIFEST)
        data = json.loads(answer["Body"].read())
        files, etags = data["files"], data["etags"]
        for name, state in self.states.items():
            if etags == {path: etag(body) for path, body in state.items()}:
                if files.keys() != etags.keys():
                    problems.append("the manifest's digests and ETags name other paths")
                return name
        problems.append(f"the manifest ({len(etags)} paths) is no state's whole site")
        return None

    def manifest_etag(self) -> str | None:
        return head_etag(self.client, MANIFEST)


def check_complete(client, state: dict[str, bytes], max_age: int, read: bool = True) -> None:
    """Every path of the state with its bytes (the MD5 the server computed; `read`: the bytes
    and headers read back), nothing else but records and the user's object."""
    listed = listing(client)
    newest: dict[tuple[str, str], int] = {}  # each topic's newest archive page, by format
    for path in state:
        if found := ARCHIVE.fullmatch(path):
            key = (found[1], found[3])
            newest[key] = max(newest.get(key, 0), int(found[2]))
    ours = {p: t for p, t in listed.items() if not is_record(p) and p != USER_KEY}
    assert ours.keys() == state.keys(), (
        sorted(ours.keys() - state.keys())[:5],
        sorted(state.keys() - ours.keys())[:5],
    )
    assert [p for p, body in state.items() if ours[p] != etag(body)] == []
    assert listed[USER_KEY] == etag(USER_BODY)
    for path, body in state.items() if read else ():
        answer = client.get_object(Bucket=BUCKET, Key=PREFIX + path)
        assert answer["Body"].read() == body, path
        extension = path.rpartition(".")[2]
        if path.startswith("feeds/") and extension in FORMATS:
            content_type = FORMATS[extension].content_type
            full = ARCHIVE.fullmatch(path)
            done = full and int(full[2]) < newest[(full[1], full[3])]  # linked by a newer one
            cache = IMMUTABLE if done else f"public, max-age={max_age}"
        else:
            content_type = {
                "html": HTML_TYPE,
                "opml": OPML_TYPE,
                "js": SCRIPT_TYPE,
                "xml": XML_TYPE,
                "txt": ROBOTS_TYPE,
            }[extension]
            cache = f"public, max-age={min(60, max_age)}"
        assert (answer["ContentType"], answer["CacheControl"]) == (content_type, cache), path
    assert client.get_object(Bucket=BUCKET, Key=PREFIX + USER_KEY)["Body"].read() == USER_BODY


def complete(
    client, env: dict[str, str], state: dict[str, bytes], renders_all: bool
) -> tuple[int, int, int]:
    """Build to the end; the report's counts are the puts and deletes the bucket saw (and,
    when the build renders every path, what it did not put is unchanged)."""
    before, held = latest_versions(client), listing(client)
    report = counts(cli(["build", f"s3://{BUCKET}/{PREFIX}"], env))
    after = latest_versions(client)
    put = {p for p, v in after.items() if v and v != before.get(p) and not is_record(p)}
    deleted = {p for p, v in after.items() if v is None and before.get(p) and not is_record(p)}
    differing = {p for p, body in state.items() if held.get(p) != etag(body)}
    assert differing <= put, f"not put: {sorted(differing - put)[:5]}"
    assert (report[0], report[2]) == (len(put), len(deleted)), (report, len(put), len(deleted))
    assert report[0] + report[1] == len(state) if renders_all else report[1] < len(state)
    return report


def test_killed_bucket_builds_leave_old_or_new_objects_and_the_next_completes(
    tmp_path, s3, spawn
) -> None:
    client, aws = s3
    rng = random.Random(SEED)
    print(f"\nFEEDSVC_CRASH_SEED={SEED}")
    feeds_a = snapshot_feeds(tmp_path / "feeds-a")
    feeds_b = snapshot_feeds(tmp_path / "feeds-b")  # another site title: every object changes
    toml = (feeds_a / "site.toml").read_text() + f"archive_page_size = {PAGE_SIZE}\n"
    (feeds_a / "site.toml").write_text(toml)
    (feeds_b / "site.toml").write_text(toml.replace('title = "', 'title = "Late edition: '))
    max_age = int(re.search(r"^max_age = (\d+)", toml, re.M)[1])
    db_a, db_b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    envs = {
        "A": environment(db_a, feeds_a, FEEDSVC_BASE_URL=BASE_URL, **aws),
        "B": environment(db_b, feeds_b, FEEDSVC_BASE_URL=BASE_URL, **aws),
    }
    (tmp_path / "a.txt").write_text(big_document(ITEMS, "Harbour"))
    cli(["ingest", str(tmp_path / "a.txt")], envs["A"])
    cli(["backup", str(db_b)], envs["A"])
    (tmp_path / "b.txt").write_text(big_document(EXTRA, "Valley"))
    cli(["ingest", str(tmp_path / "b.txt")], envs["B"])
    states = {name: local_site(tmp_path / f"local-{name}", env) for name, env in envs.items()}
    assert len(states["B"]) > len(states["A"]) and states["A"].keys() <= states["B"].keys()
    first = f"items/{oldest_item(db_a)}.html"  # the page a whole rewrite puts first
    b_only = sorted(states["B"].keys() - states["A"].keys())  # a build to A removes them
    # A's last archive page: in B it links the page after it, so it must go up after that one.
    pages = [int(m[2]) for p in states["A"] if (m := ARCHIVE.fullmatch(p)) and m[1] == "all"]
    last_archive = f"feeds/all/archive/{max(pages)}.rss"
    target = f"s3://{BUCKET}/{PREFIX}"
    started = time.monotonic()
    written, _, _ = counts(cli(["build", target], envs["A"]))
    whole = time.monotonic() - started
    assert written == len(states["A"])
    print(f"a whole build of {written} objects into the bucket takes {whole:.1f}s")

    checker = BucketChecker(client, states)
    checker.check("after the first build", ("A",), built="A")
    assert not checker.problems, checker.problems

    # Killed right after B's last new item page: those pages are in no manifest, only in its
    # journal. The next build, to A, removes them (and nothing of the user's).
    last = f"items/{newest_item(db_b)}.html"
    process = spawn(["build", target], envs["B"])
    wanted = etag(states["B"][last])
    assert kill_when(process, lambda: head_etag(client, last) == wanted, 0), "the build ended"
    checker.check("killed after B's item pages", ("A", "B"))
    assert not checker.problems, checker.problems
    assert set(b_only) & checker.listed.keys()  # pages of B in no manifest
    report = complete(client, envs["A"], states["A"], renders_all=False)
    check_complete(client, states["A"], max_age, read=False)
    assert report[2] == len([p for p in b_only if p in checker.listed]), report
    checker.check("completed to A", ("A",), built="A")
    kills = rounds = 0
    moments: Counter[str] = Counter()
    started = time.monotonic()
    feed = "feeds/all.rss"
    while (kills < MIN_KILLS or not moments.keys() >= set(MOMENTS)) and (
        time.monotonic() - started < BUDGET
    ):
        moment = MOMENTS[rounds % len(MOMENTS)]
        rounds += 1
        # Build the state the feeds do not hold yet: most of the site to put; or, to kill it
        # while it removes B's pages, A.
        name = "B" if checker.listed.get(feed) == etag(states["A"][feed]) else "A"
        present = [path for path in b_only if path in checker.listed]
        if moment == "removals" and present:
            name, watched = "A", present[0]  # removed in order
        elif moment in ("early", "archives", "feeds"):
            watched = {"early": first, "archives": last_archive, "feeds": feed}[moment]
            if checker.listed.get(watched) == etag(states[name][watched]):
                moment = "anywhere"  # a killed build already put it: the moment has passed
        else:
            moment = "anywhere"
        wanted = etag(states[name][watched]) if moment in ("early", "archives", "feeds") else None
        manifest = checker.manifest_etag()
        process = spawn(["build", target], envs[name])
        if wanted:  # the first object of the new site; A's last archive page; feeds go last
            delay = {"early": rng.uniform(0, 0.05), "archives": 0, "feeds": rng.uniform(0, 0.3)}[
                moment
            ]
            alive = kill_when(process, lambda p=watched, w=wanted: head_etag(client, p) == w, delay)
        elif moment == "removals":  # feeds are A's: B's pages go, then the manifest
            alive = kill_when(
                process, lambda p=watched: head_etag(client, p) is None, rng.uniform(0, 0.02)
            )
        else:
            alive = kill_after(process, rng.uniform(0.1, 0.9) * whole)
        built = name if checker.manifest_etag() != manifest else None
        if not alive:  # it ran to the end: the whole site is the state's
            checker.check(f"build {rounds} (to {name}) not killed", ("A", "B"), name)
            continue
        kills += 1
        moments[moment] += 1
        checker.check(f"kill {kills} (to {name}, {moment})", ("A", "B"), built)
    summary = (
        f"{kills} kills in {rounds} builds ({time.monotonic() - started:.1f}s), by moment "
        f"{dict(moments)}; " + ", ".join(f"{k}: {v}" for k, v in checker.tallies.items())
    )
    print(summary)
    assert not checker.problems, "\n".join(checker.problems[:10])
    assert kills >= MIN_KILLS and moments.keys() >= set(MOMENTS), summary

    # The next build completes A: B's pages the rounds left go.
    renders_all = checker.manifest_state(checker.listed, []) != "A"  # else only what changed
    report = complete(client, envs["A"], states["A"], renders_all)
    checker.check("completed to A after the kills", ("A",), built="A")
    assert not checker.problems, checker.problems
    print(f"completed to A: {report}")

    # C: A's store and catalogue, and a change: new items (new keys, claimed in a journal;
    # a new archive page, which the one before links) and a changed article. The build is
    # incremental: it renders only what changed since A's manifest.
    (tmp_path / "c.txt").write_text(  # the article is an old one: on the first archive page
        big_document(PAGE_SIZE, "Lighthouse")
        + f"{article_title(ITEMS - 10)}\nThe board met again.\nJ.Ortega--HB\n"
    )
    cli(["ingest", str(tmp_path / "c.txt")], envs["A"])
    envs["C"] = envs["A"]
    states["C"] = local_site(tmp_path / "local-C", envs["C"])
    checker = BucketChecker(client, states)
    for moment in ("journal", "feeds"):
        manifest = checker.manifest_etag()
        process = spawn(["build", target], envs["C"])
        if moment == "journal":  # right after the journal of the new pages, before them

            def ready() -> bool:
                return journals(client) > 0

        else:

            def ready(wanted: str = etag(states["C"]["feeds/all.rss"])) -> bool:
                return head_etag(client, "feeds/all.rss") == wanted

        assert kill_when(process, ready, rng.uniform(0, 0.02)), f"the build ended before {moment}"
        built = "C" if checker.manifest_etag() != manifest else None
        checker.check(f"C, killed after the {moment}", ("A", "C"), built)
    assert not checker.problems, "\n".join(checker.problems[:10])
    report = complete(client, envs["C"], states["C"], renders_all=False)
    check_complete(client, states["C"], max_age)
    again = counts(cli(["build", target], envs["C"]))
    local_again = counts(cli(["build", str(tmp_path / "local-C")], envs["C"]))
    assert again == local_again and again[0] == again[2] == 0, (again, local_again)
    print(f"completed to C: {report}; again: {again}")
