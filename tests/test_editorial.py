"""Editorial control in the store: kill (withdraw) and unkill, embargoes, and the log."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from feedsvc.catalog import Catalog
from feedsvc.cli import main
from feedsvc.errors import StoreError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.model import item_id
from feedsvc.render import TOMBSTONES_NS, entry_id
from feedsvc.site import SiteMap
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import Store, utc_now

from .conftest import BASE_URL, FEEDS, SAMPLES, Clock
from .feedcheck import atom_errors
from .pg import PostgresServer

STORY = "Minister resigns over procurement scandal"
DUE_IN = 2.5  # seconds from ingest to an embargo's lift, when the test waits for it for real


def wire(store, catalog, text: str):
    return ingest_document(store, catalog, Document("doc.txt", text.encode(), "wire"))


def jsonl(store, catalog, line: str):
    return ingest_document(store, catalog, Document("doc.jsonl", line.encode(), "jsonl"))


def live_ids(store, topic: str = "all") -> list[str]:
    return [item.id for item in store.newest(topic, 1000)]


def test_a_killed_item_leaves_every_topic_and_stays_killed(filled, catalog, clock) -> None:
    victim = filled.newest("world", 1)[0]
    generation = filled.generation()
    assert filled.kill([victim.id], "wrong name", "cli") == [victim.id]
    assert filled.generation() > generation
    assert filled.item(victim.id) is None and filled.killed_at(victim.id) is not None
    for topic in ("all", *victim.topics):
        assert victim.id not in live_ids(filled, topic)
    assert all(victim.id not in set(live_ids(filled, t.slug)) for t in catalog.topics)
    ((killed_id, when, reason, topics),) = filled.killed()
    assert (killed_id, when, reason, topics) == (victim.id, clock.now, "wrong name", victim.topics)
    # The same story sent again stays withdrawn, and says so.
    counts = wire(filled, catalog, f"-\n{victim.title}\n")
    assert counts.killed == 1 and counts.new == 0
    assert filled.item(victim.id) is None
    assert filled.kill([victim.id], None, "cli") == []  # already withdrawn


def test_unkill_restores_the_item_with_its_dates(filled, catalog) -> None:
    victim = filled.newest("all", 3)[2]
    filled.kill([victim.id], None, "api")
    filled.unkill([victim.id], "cli")
    restored = filled.item(victim.id)
    assert restored == victim
    assert victim.id in live_ids(filled) and filled.killed_at(victim.id) is None
    assert [entry[1:3] for entry in filled.log(2)] == [("cli", "unkill"), ("api", "kill")]


def test_killing_an_unknown_id_is_an_error_and_changes_nothing(filled) -> None:
    real = filled.newest("all", 1)[0].id
    generation = filled.generation()
    with pytest.raises(StoreError, match="no item 'nope'"):
        filled.kill([real, "nope"], None, "cli")
    assert filled.item(real) is not None and filled.generation() == generation


def test_an_item_dated_in_the_future_is_held_until_its_time(store, catalog, clock) -> None:
    due = clock.now + timedelta(seconds=2)
    line = f'{{"id": "emb-1", "title": "Results embargoed", "published": "{due.isoformat()}"}}'
    counts = jsonl(store, catalog, line)
    assert counts.held == 1 and counts.new == 0
    assert store.item("emb-1") is None and live_ids(store) == []
    assert store.held()["all"] == 1 and store.next_lift() == due
    generation = store.generation()
    clock.advance(seconds=1)
    assert store.generation() == generation and store.item("emb-1") is None
    clock.advance(seconds=1)  # the moment comes: the next generation check publishes it
    assert store.generation() > generation
    item = store.item("emb-1")
    assert item is not None and item.published == due
    assert store.next_lift() is None and store.held()["all"] == 0
    assert store.log(1)[0][1:3] == ("server", "lift")


def test_a_held_item_can_be_killed_and_the_same_embargo_twice_is_unchanged(
    store, catalog, clock
) -> None:
    due = (clock.now + timedelta(hours=1)).isoformat()
    line = f'{{"id": "emb-2", "title": "Quarterly results", "published": "{due}"}}'
    assert jsonl(store, catalog, line).held == 1
    assert jsonl(store, catalog, line).unchanged == 1
    store.kill(["emb-2"], "pulled", "cli")
    clock.advance(hours=2)
    store.generation()
    assert store.item("emb-2") is None and store.held()["all"] == 0


def test_cli_kill_unkill_and_log(runner, filled) -> None:
    target = item_id(filled.newest("all", 1)[0].title)
    result = runner.invoke(main, ["kill", target, "--reason", "legal"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{target}: killed\n"
    unknown = runner.invoke(main, ["kill", "0000000000000000"])
    assert unknown.exit_code == 1
    assert "no item '0000000000000000'" in unknown.stderr
    logged = runner.invoke(main, ["log"])
    assert "cli     kill    " + target + ": legal" in logged.output
    assert runner.invoke(main, ["unkill", target]).exit_code == 0
    assert filled.item(target) is not None


def test_a_correction_is_shown_with_the_content_and_moves_updated(store, catalog, clock) -> None:
    wire(store, catalog, "Port strike ends\nDockers return on Monday.\nA.Ruiz--PT\n")
    first = store.newest("all", 1)[0]
    clock.advance(hours=1)
    text = (
        "Port strike ends\nDockers return on Monday.\n"
        "Correction: an earlier version gave the wrong day; they return on Tuesday.\nA.Ruiz--PT\n"
    )
    assert wire(store, catalog, text).updated == 1
    corrected = store.item(first.id)
    assert corrected.content == (
        '<p>Dockers return on Monday.</p>\n<p class="correction"><strong>Correction:</strong> '
        "an earlier version gave the wrong day; they return on Tuesday.</p>"
    )
    assert corrected.updated == clock.now and corrected.published == first.published
    assert corrected.author == "A.Ruiz"
    line = '{"id": "j1", "title": "Rates held", "correction": "<b>Fixed</b> a figure."}'
    jsonl(store, catalog, line)
    assert store.item("j1").content.endswith(
        "<strong>Correction:</strong> &lt;b&gt;Fixed&lt;/b&gt; a figure.</p>"
    )


def test_an_atom_feed_with_a_tombstone_is_valid_atom_that_readers_parse_cleanly(
    filled, catalog, clock
) -> None:
    """RFC 6721's at:deleted-entry is an extension element RFC 4287 allows. (The W3C feed
    validator predates RFC 6721 and warns of an unknown namespace: only a note.)"""
    victim = filled.newest("sport", 1)[0]
    when = clock.advance(minutes=1)
    filled.kill([victim.id], "wrong <name> & date", "cli")
    site = SiteMap(catalog)
    for slug in ("sport", "all"):
        with filled.snapshot():
            atom = site.render(filled, f"feeds/{slug}.atom").body
            others = [site.render(filled, f"feeds/{slug}.{ext}").body for ext in ("rss", "json")]
        assert atom_errors(atom) == [], slug
        parsed = feedparser.parse(atom)
        assert not parsed.bozo, parsed.bozo_exception
        assert parsed.entries and victim.title not in {entry.title for entry in parsed.entries}
        stones = etree.fromstring(atom).findall(f"{{{TOMBSTONES_NS}}}deleted-entry")
        assert [
            (
                stone.get("ref"),
                datetime.fromisoformat(stone.get("when")),
                stone.findtext(f"{{{TOMBSTONES_NS}}}comment"),
            )
            for stone in stones
        ] == [(entry_id(catalog.site, victim.id, slug), when, "wrong <name> & date")]
        assert all(victim.id.encode() not in body for body in others)  # RSS, JSON: just gone


# -- a static build at the lift time it reported -------------------------------------------

LIFT_LINE = re.compile(r"^next embargo lifts at (\S+): build again then$", re.MULTILINE)


def reported_lift(output: str) -> datetime | None:
    """The lift time `feedsvc build` told the user, if it told one."""
    found = LIFT_LINE.findall(output)
    assert len(found) <= 1, output
    return datetime.fromisoformat(found[0]) if found else None


def published_at(site: Path, item: str) -> dict[str, bool]:
    """Where the static site shows the item: each feed of `all` and `sport`, the sport topic
    page, its own page."""
    link = f"{BASE_URL}items/{item}.html"
    where = {}
    for slug in ("all", "sport"):
        for extension in ("rss", "atom"):
            parsed = feedparser.parse((site / f"feeds/{slug}.{extension}").read_bytes())
            assert not parsed.bozo, parsed.bozo_exception
            where[f"{slug}.{extension}"] = link in {entry.link for entry in parsed.entries}
        document = json.loads((site / f"feeds/{slug}.json").read_bytes())
        where[f"{slug}.json"] = link in {entry["url"] for entry in document["items"]}
    page = (site / "topics/sport.html").read_text()
    where["topics/sport.html"] = f'href="../items/{item}.html"' in page
    where["item page"] = (site / f"items/{item}.html").exists()
    return where


@pytest.mark.system  # waits for a real time: wants the machine to itself
@pytest.mark.solo  # its embargo lifts DUE_IN s after the ingest: run alone, after the rest
def test_a_static_build_at_the_reported_lift_time_publishes_the_embargoed_item(
    runner, tmp_path: Path
) -> None:
    site = tmp_path / "site"

    def build() -> datetime | None:
        result = runner.invoke(main, ["build", "--base-url", BASE_URL, str(site)])
        assert result.exit_code == 0, result.output
        return reported_lift(result.output)

    due = utc_now() + timedelta(seconds=DUE_IN)
    later = due + timedelta(hours=1)
    document = tmp_path / "items.jsonl"
    document.write_text(
        '{"id": "live-1", "title": "Harbour reopens after the storm"}\n'
        + embargoed("emb-a", due, topics=["sport"])
        + "\n"
        + embargoed("emb-b", later, topics=["sport"])
        + "\n"
    )
    ingested = runner.invoke(main, ["ingest", str(document)])
    assert "1 new, 0 updated, 0 unchanged, 2 held (embargo)" in ingested.output, ingested.output

    assert build() == due, f"no lift at {due} reported (did the build start after it?)"
    assert not any(published_at(site, "emb-a").values())
    assert (site / "items/live-1.html").exists()
    time.sleep(max(0.0, (due - utc_now()).total_seconds()))  # until the time it told
    assert build() == later  # the next embargo
    assert all(published_at(site, "emb-a").values()), published_at(site, "emb-a")
    assert not any(published_at(site, "emb-b").values())
    assert runner.invoke(main, ["kill", "emb-b"]).exit_code == 0
    assert build() is None  # nothing held: no lift to wait for


# -- feedsvc copy keeps the editorial state ---------------------------------------------------


def site_of(store: Store, catalog: Catalog, outdir: Path) -> dict[str, bytes]:
    build_site(store, catalog, outdir)
    return {
        path.relative_to(outdir).as_posix(): path.read_bytes()
        for path in sorted(outdir.rglob("*"))
        if path.is_file() and not path.name.startswith(".feedsvc-")
    }


def cli(*args: str, db: str = "") -> tuple[int, str, str]:
    env = {
        "FEEDSVC_DB": db,
        "FEEDSVC_FEEDS": str(FEEDS),
        "FEEDSVC_TOKEN": "",
        "FEEDSVC_BASE_URL": "",
    }
    result = CliRunner(env=env).invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def embargoed(item: str, due: datetime, **fields: object) -> str:
    return json.dumps(
        {"id": item, "title": f"Results {item}", "published": due.isoformat(), **fields}
    )


def test_copy_between_engines_keeps_kills_embargoes_corrections_and_the_log(
    postgres: PostgresServer, catalog: Catalog, tmp_path: Path
) -> None:
    clock = Clock()
    original = str(tmp_path / "original.sqlite3")
    store = open_filed_store(original, catalog, clock, create=True)
    for path in sorted(SAMPLES.glob("*.txt")):  # 50 items: a full archive page of `all`
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        clock.advance(hours=1)
    article = next(item for item in store.newest("all", 50)[1:] if item.content)  # not killed
    correction = "Correction: an earlier version gave the wrong date."
    corrected = f"{article.title}\nThe vote is now on Thursday.\n{correction}\nA.Ruiz--PT\n"
    assert wire(store, catalog, corrected).updated == 1
    due = clock.now + timedelta(hours=1)
    emb = [embargoed("emb-1", due, topics=["sport"], correction="The <b>score</b> was 2-1.")]
    emb += [embargoed(f"emb-{n}", due + timedelta(hours=n)) for n in (2, 3)]
    assert jsonl(store, catalog, "\n".join(emb)).held == 3
    newest = store.newest("all", 1)[0]  # the last archive place: copied, a page stays full
    store.kill([newest.id], "legal", "api")
    store.kill(["emb-2"], None, "cli")
    store.unkill(["emb-2"], "cli")  # held again
    store.kill(["emb-3"], "pulled", "cli")  # withdrawn before its time
    clock.advance(minutes=5)

    url = postgres.database()
    back = str(tmp_path / "back.sqlite3")
    code, out, err = cli("copy", original, url)
    assert code == 0, err
    logged = len(store.log(1000))  # 7 ingests, 3 kills, an unkill
    assert out.startswith(f"copied 49 items, 2 held, 2 withdrawn and {logged} log entries "), out
    code, _, err = cli("copy", url, f"sqlite:///{back}")
    assert code == 0, err
    stores = {"original": store, "postgresql": open_filed_store(url, catalog, clock)}
    stores["back"] = open_filed_store(back, catalog, clock)

    def same_everywhere(step: str) -> dict[str, bytes]:
        """The site, the log and what is held and withdrawn are the same in every store."""
        sites = {
            name: site_of(s, catalog, tmp_path / f"{step}-{name}") for name, s in stores.items()
        }
        for name in ("postgresql", "back"):
            differ = [p for p in sites["original"] if sites[name].get(p) != sites["original"][p]]
            assert sorted(sites[name]) == sorted(sites["original"]) and not differ, (name, differ)
        logs = {
            name: cli("log", "--limit", "1000", db=location)[1]
            for name, location in (("original", original), ("postgresql", url), ("back", back))
        }
        assert logs["original"].count("\n") >= logged
        assert logs["postgresql"] == logs["original"] == logs["back"], step
        for name, copy in stores.items():
            assert copy.killed() == store.killed(), name
            assert copy.held() == store.held() and copy.next_lift() == store.next_lift(), name
        return sites["original"]

    site = same_everywhere("copied")
    assert b"This item was withdrawn" in site[f"items/{newest.id}.html"]
    assert b"<at:comment>legal</at:comment>" in site["feeds/all.atom"]
    assert correction.encode() in site[f"items/{article.id}.html"].replace(
        b"<strong>", b""
    ).replace(b"</strong>", b"")
    # Sent again, a withdrawn item stays withdrawn in every copy, a held one stays held.
    for name, copy in stores.items():
        assert wire(copy, catalog, f"-\n{newest.title}\n").killed == 1, name
        assert jsonl(copy, catalog, emb[2]).killed == 1 and copy.item("emb-3") is None, name
        assert jsonl(copy, catalog, emb[0]).unchanged == 1 and copy.item("emb-1") is None, name
    # The embargo lifts at the same moment everywhere.
    clock.now = due - timedelta(microseconds=1)
    for name, copy in stores.items():
        copy.generation()
        assert copy.item("emb-1") is None, name
    clock.now = due
    for name, copy in stores.items():
        copy.generation()
        lifted = copy.item("emb-1")
        assert lifted is not None and lifted.published == due, name
        assert lifted.content.endswith("&lt;b&gt;score&lt;/b&gt; was 2-1.</p>"), name
    assert "items/emb-1.html" in same_everywhere("lifted")
