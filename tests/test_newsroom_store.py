"""The newsroom formats' editorial meaning, end to end on both engines: documents go in (the
CLI or `ingest_document`), and the SERVED feeds say what happened: versions ordered, a
cancel is a kill, an embargo holds, withheld waits for a usable version, a correction shows
its note, editor's notes are never served, subject codes file (and re-file) items."""

from __future__ import annotations

import html
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.model import guid_id
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import Store, utc_now
from feedsvc.store import open_store as open_engine
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, TOKEN, Clock, app_config
from .feedcheck import assert_valid_atom
from .newsroom import CORPUS

GUID = "urn:ninjs:harbourdesk.example:2026:quay-wall"
ID = guid_id(GUID)
FORMATS = ("atom", "rss", "json")


def ninjs(version: int, title: str, **fields: object) -> bytes:
    """A ninjs 3 text object of our own (the fields a test needs, others left out)."""
    record: dict[str, object] = {
        "uri": GUID,
        "type": "text",
        "version": str(version),
        "firstCreated": "2026-11-24T08:00:00Z",
        "versionCreated": f"2026-11-24T{8 + version:02d}:00:00Z",
        "pubStatus": "usable",
        "language": "en",
        "headlines": [{"value": title}],
        "bodies": [{"contentType": "text/html", "value": f"<p>{title}, the desk reports.</p>"}],
    }
    record.update(fields)
    return json.dumps(record).encode()


def put(store: Store, catalog: Catalog, data: bytes, name: str = "doc.json"):
    kind = "xml" if name.endswith(".xml") else "json"
    return ingest_document(store, catalog, Document(name, data, kind))


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


class Reader:
    """Flask's test client that first waits until the app has heard of the test's last write
    (PostgreSQL tells other connections by a notification, which arrives a moment later).
    The last write's generation is read on a new connection: the test's own store hears of
    another process's write (the CLI's) by a notification too, and may not have yet."""

    def __init__(self, client: FlaskClient, db: str | None = None, clock: Clock | None = None):
        self.client, self.db, self.clock = client, db, clock

    def get(self, path: str) -> TestResponse:
        if self.db is not None:
            fresh = open_engine(self.db, self.clock or utc_now)
            try:
                written = fresh.generation()
            finally:
                fresh.close()
            deadline = time.monotonic() + 10
            while self.client.get("/healthz").json["generation"] != written:
                assert time.monotonic() < deadline, f"the app never saw generation {written}"
                time.sleep(0.01)
        return self.client.get(path)


@pytest.fixture
def web(settings: Settings, catalog: Catalog, clock: Clock, store: Store) -> Reader:
    """Flask alone on the test's store (its feeds are what a reader gets)."""
    app = create_app(app_config(settings, catalog, CLOCK=clock, TESTING=True, FASTPATH=False))
    return Reader(app.test_client(), settings.db, clock)


def served(web, path: str, status: int = 200) -> bytes:
    response = web.get(path)
    assert response.status_code == status, (path, response.status_code)
    return response.data


def entries(web, topic: str = "all") -> dict[str, feedparser.FeedParserDict]:
    """The served Atom feed's entries by feedsvc id (the entry id's last part)."""
    data = served(web, f"/feeds/{topic}.atom")
    assert_valid_atom(data)
    feed = feedparser.parse(data)
    assert not feed.bozo
    return {key(entry.id): entry for entry in feed.entries}


def served_ids(web, topic: str = "all") -> set[str]:
    """Ids of every entry of the topic's three served formats (they must agree)."""
    found = [
        {key(entry.id) for entry in feedparser.parse(served(web, f"/feeds/{topic}.{ext}")).entries}
        for ext in ("atom", "rss")
    ]
    feed = json.loads(served(web, f"/feeds/{topic}.json"))
    found.append({key(entry["id"]) for entry in feed["items"]})
    assert found[0] == found[1] == found[2], found
    return found[0]


def key(entry_id: str) -> str:
    """The feedsvc id at the end of an entry id."""
    return entry_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


# -- 2. versions ------------------------------------------------------------------------------


def test_a_higher_version_replaces_and_an_older_one_changes_nothing_and_says_so(
    runner: CliRunner, web, tmp_path: Path
) -> None:
    def ingest(version: int, title: str) -> str:
        path = tmp_path / f"v{version}.json"
        path.write_bytes(ninjs(version, title))
        result = runner.invoke(main, ["ingest", str(path)])
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 new" in ingest(1, "Quay wall repairs begin")
    first = entries(web)[ID]
    assert "1 updated" in ingest(3, "Quay wall repairs begin after a week's delay")
    after = entries(web)[ID]
    assert after.title == "Quay wall repairs begin after a week's delay"
    assert after.published == first.published  # published never moves
    assert after.updated_parsed > first.updated_parsed
    for late in (2, 3):  # out of order, then resent
        output = ingest(late, "Quay wall repairs begin")
        assert f"v{late}.json: 0 new, 0 updated, 0 unchanged, 1 older versions ignored" in output
        assert "total: 0 new, 0 updated, 0 unchanged, 1 older versions ignored" in output
    again = entries(web)[ID]
    assert (again.title, again.updated) == (after.title, after.updated)


def picture(href: str) -> list[dict]:
    rendition = {"name": "web", "href": href, "contentType": "image/jpeg"}
    return [{"type": "picture", "renditions": [rendition], "descriptions": [{"value": "The quay"}]}]


def test_a_new_picture_moves_updated_and_a_new_version_alone_does_not(store, catalog, web) -> None:
    put(store, catalog, ninjs(1, "Quay wall", associations=picture("https://img.example/a.jpg")))
    first = entries(web)[ID]
    same = ninjs(2, "Quay wall", associations=picture("https://img.example/a.jpg"))
    assert put(store, catalog, same).updated == 1  # the version is kept (a v1 is stale now)
    assert entries(web)[ID].updated == first.updated  # but readers see nothing new
    assert put(store, catalog, ninjs(1, "Quay wall")).stale == 1
    put(store, catalog, ninjs(3, "Quay wall", associations=picture("https://img.example/b.jpg")))
    assert entries(web)[ID].updated_parsed > first.updated_parsed
    (image,) = store.item(ID).images
    assert (image.url, image.caption) == ("https://img.example/b.jpg", "The quay")


def test_documents_without_versions_keep_todays_output(runner, tmp_path) -> None:
    path = tmp_path / "wire.txt"
    path.write_text("-\nLighthouse keeper retires after forty years\n")
    runner.invoke(main, ["ingest", str(path)])
    result = runner.invoke(main, ["ingest", str(path)])
    assert result.output.splitlines()[-1] == "total: 0 new, 0 updated, 1 unchanged"


# -- 3. cancel ---------------------------------------------------------------------------------


def test_a_canceled_version_kills_the_item_as_feedsvc_kill_does(store, catalog, web) -> None:
    put(store, catalog, ninjs(1, "Quay wall repairs begin"))
    assert ID in served_ids(web)
    note = "KILL: the repairs were postponed; do not use."
    counts = put(
        store, catalog, ninjs(2, "Quay wall repairs begin", pubStatus="canceled", edNote=note)
    )
    assert counts.canceled == 1 and "1 canceled (killed)" in str(counts)
    assert ID not in served_ids(web) and ID not in served_ids(web, "other")
    atom = served(web, "/feeds/all.atom")
    assert f"<at:comment>{note}</at:comment>".encode() in atom  # the tombstone, kill's reason
    assert b"withdrawn" in served(web, f"/items/{ID}.html", 410)  # kill's Gone page
    _, who, what, detail = store.log(2)[0]
    assert (who, what, detail) == ("cli", "kill", f"{ID}: {note}")
    assert store.killed()[0][:1] + store.killed()[0][2:3] == (ID, note)
    # an older usable version, then a higher one: it stays killed (unkill is the editor's)
    for version in (1, 5):
        counts = put(store, catalog, ninjs(version, "Quay wall repairs begin today"))
        assert counts.killed == 1, counts
        assert ID not in served_ids(web)
    store.unkill([ID], "cli")
    assert entries(web)[ID].title == "Quay wall repairs begin"


def test_the_api_answers_what_a_cancel_and_an_old_version_did(client) -> None:
    def post(data: bytes) -> dict:
        response = client.post(
            "/api/items",
            data=data,
            content_type="application/ninjs+json",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 200, response.data
        return response.json

    assert post(ninjs(2, "Quay wall repairs begin"))["new"] == 1
    assert post(ninjs(1, "Quay wall repairs begin"))["stale"] == 1
    answer = post(ninjs(3, "Quay wall repairs begin", pubStatus="canceled"))
    assert answer == {"new": 0, "updated": 0, "unchanged": 0, "held": 0, "killed": 0, "canceled": 1}
    assert client.get(f"/items/{ID}.html").status_code == 410


def test_a_cancel_for_an_item_never_seen_stores_it_killed(store, catalog, web) -> None:
    counts = put(store, catalog, ninjs(3, "Quay wall collapses", pubStatus="canceled"))
    assert counts.canceled == 1
    assert store.killed()[0][0] == ID and store.killed()[0][2] == "canceled by the provider"
    counts = put(store, catalog, ninjs(1, "Quay wall collapses"))  # the older one, late
    assert counts.killed == 1 and counts.new == 0
    assert ID not in served_ids(web)


def test_the_corpus_cancels_publish_nothing(store, catalog, web, clock) -> None:
    for name in ("nitf-12-latin1-doctype.xml", "nitf-15-canceled.xml", "ninjs3-21-canceled.json"):
        put(store, catalog, corpus(name), name)
    assert served_ids(web) == set()
    reasons = {reason for _, _, reason, _ in store.killed()}
    assert reasons == {
        "KILL: the fee proposal was withdrawn before the protest.",
        "STORNO: Meldung war falsch, keine Lawine am Arlberg.",
    }


# -- 4. embargo, withheld ----------------------------------------------------------------------


def test_an_embargo_holds_the_item_until_then(store, catalog, web, clock) -> None:
    due = clock.now + timedelta(hours=2)
    counts = put(store, catalog, ninjs(1, "Port budget", embargoedUntil=due.isoformat()))
    assert counts.held == 1
    assert ID not in served_ids(web)
    clock.advance(hours=1, minutes=59)
    assert ID not in served_ids(web)
    clock.advance(minutes=1)
    entry = entries(web)[ID]
    assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == due  # published at its embargo


def test_withheld_waits_for_a_usable_version_never_for_time(store, catalog, web, clock) -> None:
    assert put(store, catalog, ninjs(1, "Strike talks", pubStatus="withheld")).held == 1
    clock.advance(days=400)
    assert ID not in served_ids(web) and store.next_lift() is None
    assert store.held()["all"] == 1
    assert put(store, catalog, ninjs(2, "Strike talks resume")).held == 1  # lifted at once
    assert entries(web)[ID].title == "Strike talks resume"
    # a withheld version of a published item takes it out until the next usable one
    assert put(store, catalog, ninjs(3, "Strike talks", pubStatus="withheld")).held == 1
    assert ID not in served_ids(web)
    put(store, catalog, ninjs(4, "Strike talks end in agreement"))
    assert entries(web)[ID].title == "Strike talks end in agreement"


# -- 5. corrections, editor's notes ------------------------------------------------------------


def test_a_correction_shows_its_note_and_moves_updated(store, catalog, web) -> None:
    put(store, catalog, corpus("g2-01-item-nitf.xml"), "a.xml")
    before = entries(web)[guid_id("urn:newsml:harbourwire.example:20261120:rowing-final")]
    put(store, catalog, corpus("g2-02-item-nitf-v2-correction.xml"), "b.xml")
    after = entries(web)[key(before.id)]
    assert "Correction:" in after.content[0].value and "margin" in after.content[0].value
    assert after.updated_parsed > before.updated_parsed
    assert after.published == before.published


def test_editors_notes_are_kept_and_never_served(store, catalog, web, clock) -> None:
    documents = sorted(p for p in CORPUS.iterdir() if p.suffix in (".xml", ".json"))
    notes = set()
    for path in documents:
        put(store, catalog, path.read_bytes(), path.name)
    clock.advance(days=30)  # every embargo lifted
    for item_id in store.item_ids():
        item = store.item(item_id)
        if item.ednote:
            notes.add(item.ednote)
    assert len(notes) >= 4  # kept in the store (Row.item() gives them back)
    pages = [
        f"/feeds/{topic}.{ext}"
        for topic in ("all", *(t.slug for t in catalog.topics))
        for ext in FORMATS
    ]
    pages += [f"/items/{item_id}.html" for item_id in store.item_ids()]
    gone = [f"/items/{item_id}.html" for item_id in store.killed_ids()]
    assert gone  # the corpus cancels
    for path in pages + gone:
        data = served(web, path, 410 if path in gone else 200)
        for note in notes:  # as text, as HTML and XML escape it, as JSON
            for form in (note, html.escape(note), html.escape(note, quote=False), json.dumps(note)):
                assert form.encode() not in data, (path, note)


# -- 6. subjects -------------------------------------------------------------------------------


def test_refiling_files_by_subject_codes(settings, store, catalog, clock, tmp_path) -> None:
    coded = ninjs(
        1,
        "Quarterly figures from the harbour board",
        subjects=[{"uri": "http://cv.iptc.org/newscodes/mediatopic/13000000"}],
    )
    put(store, catalog, coded)
    assert store.item(ID).subjects == ("medtop:13000000",)
    assert ID in {item.id for item in store.newest("science", 10)}
    feeds = tmp_path / "feeds"
    shutil.copytree(FEEDS, feeds)
    science = feeds / "topics/science.toml"
    science.write_text(science.read_text().replace('"medtop:13000000", ', ""))
    business = feeds / "topics/business.toml"
    text = business.read_text()
    assert "subjects = [" in text
    business.write_text(text.replace("subjects = [", 'subjects = ["medtop:13000000", ', 1))
    store.close()
    refiled = open_filed_store(settings.db, load_catalog(feeds, BASE_URL), clock)
    refiled.close()
    moved = Settings(db=settings.db, feeds_dir=feeds, base_url=BASE_URL, token=TOKEN)
    app = create_app({"SETTINGS": moved, "CLOCK": clock, "TESTING": True, "FASTPATH": False})
    client = Reader(app.test_client(), None)  # a new connection: it reads the generation
    assert ID in served_ids(client, "business")
    assert ID not in served_ids(client, "science")


# -- 1. every field stored, and copied losslessly ----------------------------------------------


def test_every_field_comes_back_and_copies_losslessly(postgres, catalog, tmp_path) -> None:
    clock = Clock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    original = str(tmp_path / "original.sqlite3")
    store = open_filed_store(original, catalog, clock, create=True)
    expected = {}
    for path in sorted(p for p in CORPUS.iterdir() if p.suffix in (".xml", ".json")):
        put(store, catalog, path.read_bytes(), path.name)
    for item_id in store.item_ids():
        expected[item_id] = store.item(item_id)
    message = expected[guid_id("urn:newsml:harbourwire.example:20261122:container-ship")]
    assert message.images and message.language == "en-GB" and message.version == 2
    assert message.guid and message.subjects == ("medtop:04000000",)

    def run(*args: str) -> None:
        env = {"FEEDSVC_FEEDS": str(FEEDS), "FEEDSVC_TOKEN": "", "FEEDSVC_DB": ""}
        result = CliRunner(env=env).invoke(main, list(args))
        assert result.exit_code == 0, result.output

    url = postgres.database()
    back = str(tmp_path / "back.sqlite3")
    run("copy", original, url)
    run("copy", url, back)

    def everything(location: str):
        copy = open_engine(location)
        try:
            with copy.snapshot():
                export = copy.export()
                rows = [(seq, row) for seq, _, row, _ in export.rows]
                log = list(export.log)  # read whole before the store closes
                items = [copy.item(i) for i in expected]
                return rows, export.held, export.withdrawn, items, log
        finally:
            copy.close()

    want = everything(original)
    assert want[1] and want[2]  # embargoed and canceled items among them
    assert everything(url) == want
    assert everything(back) == want
    assert want[3] == list(expected.values())


def site_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith(".feedsvc-")
    }


def test_a_withheld_version_leaves_the_archive_pages_of_an_incremental_build(
    store, clock, tmp_path
) -> None:
    feeds = shutil.copytree(FEEDS, tmp_path / "feeds", ignore=shutil.ignore_patterns("samples"))
    with (feeds / "site.toml").open("a") as toml:
        toml.write("archive_page_size = 2\n")
    paged = load_catalog(feeds, BASE_URL)
    assert put(store, paged, ninjs(1, "Strike talks resume at the port")).new == 1
    for number in range(3):  # the item's archive page fills, so it is written and kept
        clock.advance(minutes=1)
        wire = f"-\nHarbour notice {number}\n".encode()
        ingest_document(store, paged, Document(f"n{number}.txt", wire, "wire"))
    site = tmp_path / "site"
    build_site(store, paged, site)
    assert f"{ID}.html" in (site / "feeds/all/archive/0.atom").read_text()
    clock.advance(minutes=1)
    assert put(store, paged, ninjs(2, "Strike talks resume at the port", pubStatus="withheld")).held
    build_site(store, paged, site)  # incremental: what changed since the first build
    whole = tmp_path / "whole"
    build_site(store, paged, whole)
    assert site_files(site) == site_files(whole)
    assert f"{ID}.html" not in (site / "feeds/all/archive/0.atom").read_text()
