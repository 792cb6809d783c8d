"""The newsroom corpus end to end: every document parses, a directory of them ingests through
today's store, the feeds built from it are valid and read by feedparser, and the HTTP API takes
each format by its media type."""

from __future__ import annotations

import json
import pickle
from collections import Counter

import feedparser

from feedsvc.cli import main
from feedsvc.store import open_store as open_engine

from .conftest import TOKEN
from .feedcheck import assert_valid_atom, assert_valid_json_feed
from .newsroom import CORPUS, parsed

DOCUMENTS = sorted(p for p in CORPUS.iterdir() if p.suffix in (".xml", ".json"))
TEXT_ITEMS = 23  # every document's text items (the message holds two, a picture alone none)


def test_the_corpus_covers_the_three_formats_and_their_versions() -> None:
    formats: Counter[str] = Counter()
    items = []
    for path in DOCUMENTS:
        for item in parsed(path):
            formats[item["format"]] += 1
            items.append(item)
    assert len(DOCUMENTS) >= 20 and len(items) == TEXT_ITEMS
    assert set(formats) == {"newsml-g2", "nitf", "ninjs-1", "ninjs-2", "ninjs-3"}
    assert {item["status"] for item in items} == {"usable", "withheld", "canceled"}
    assert all(item["id"] and item["guid"] and item["title"] for item in items)
    fields = ("embargo", "language", "subjects", "images", "ednote", "correction", "dateline")
    for name in fields:  # each mapping rule is exercised by some document
        assert any(item[name] for item in items), name


def test_parse_reads_a_directory_of_documents() -> None:
    assert len(parsed(CORPUS)) == TEXT_ITEMS


def test_the_corpus_ingests_and_builds_valid_feeds(runner, settings, tmp_path) -> None:
    result = runner.invoke(main, ["ingest", str(CORPUS)])
    assert result.exit_code == 0, result.output
    store = open_engine(settings.db)
    try:
        ids, killed, held = set(store.item_ids()), set(store.killed_ids()), store.held()["all"]
    finally:
        store.close()
    # one stored item per guid: a later version is the same item; canceled ones are killed,
    # withheld ones held (and, by today's clock, no embargo of the corpus holds any longer)
    assert len(ids) + len(killed) + held == len({item["id"] for item in parsed(CORPUS)})
    assert (len(killed), held) == (3, 2)
    site = tmp_path / "site"
    result = runner.invoke(main, ["build", str(site), "--base-url", "https://news.example/"])
    assert result.exit_code == 0, result.output
    atom = (site / "feeds/all.atom").read_bytes()
    assert_valid_atom(atom)
    assert_valid_json_feed((site / "feeds/all.json").read_bytes())
    feed = feedparser.parse(atom)
    assert not feed.bozo
    titles = {entry.title for entry in feed.entries}
    assert "Gletscher im Ötztal verliert so viel Eis wie nie" in titles
    assert "Café owners on the quay protest against the new terrace fee" not in titles  # killed
    sport = feedparser.parse((site / "feeds/sport.rss").read_bytes())
    assert "A fifteen-year-old leads the harbour chess open after round five" in {
        entry.title for entry in sport.entries
    }
    # editors' notes are never published
    assert b"legal review" not in atom and b"Grafik folgt" not in atom


MEDIA_TYPES = {
    "g2-01-item-nitf.xml": "application/vnd.iptc.g2.newsitem+xml",
    "g2-10-message.xml": "application/vnd.iptc.g2.newsmessage+xml",
    "nitf-11-basic.xml": "application/nitf+xml",
    "ninjs3-20-text.json": "application/ninjs+json",
    "g2-03-item-xhtml-subj.xml": "application/xml",
    "ninjs2-18-text.json": "application/json",
}


def test_the_api_takes_each_format_by_its_media_type(client, settings) -> None:
    stored = 0
    for name, media_type in MEDIA_TYPES.items():
        response = client.post(
            "/api/items",
            data=(CORPUS / name).read_bytes(),
            content_type=media_type,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 200, (name, response.data)
        stored += json.loads(response.data)["new"]
    assert stored == 7  # the message holds two text items
    store = open_engine(settings.db)
    try:
        assert len(list(store.item_ids())) == 7
    finally:
        store.close()


def test_the_api_refuses_a_document_of_another_format_than_its_media_type(client) -> None:
    response = client.post(
        "/api/items",
        data=(CORPUS / "nitf-11-basic.xml").read_bytes(),
        content_type="application/vnd.iptc.g2.newsitem+xml",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    assert "the root element <nitf> is not a NewsML-G2 newsItem or newsMessage" in (
        response.get_data(as_text=True)
    )


def test_items_keep_every_field_across_processes() -> None:
    # ingest's worker processes send items back pickled (Item.__reduce__)
    from feedsvc.sources import Document, read_document

    data = (CORPUS / "g2-10-message.xml").read_bytes()
    items = read_document(Document("m.xml", data, "xml")).items
    items += read_document(
        Document("c.xml", (CORPUS / "g2-02-item-nitf-v2-correction.xml").read_bytes(), "xml")
    ).items
    assert all(item.images or item.correction for item in items)
    assert pickle.loads(pickle.dumps(items)) == items
