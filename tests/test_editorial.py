"""Editorial control in the store: kill (withdraw) and unkill, embargoes, and the log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feedsvc.cli import main
from feedsvc.errors import StoreError
from feedsvc.ingest import ingest_document
from feedsvc.model import item_id
from feedsvc.sources import Document

STORY = "Minister resigns over procurement scandal"


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
