"""The topic model beside the rules: trained deterministically, combined with the rules (which
win where they speak), shown by --explain, and taught by editors' pins (`feedsvc file`, the
API, `feedsvc learn`, `feedsvc refile`) on both engines."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from feedsvc.catalog import BARS, BARS_HEADLINE, OTHER, load_catalog
from feedsvc.classifier import (
    LEARNED,
    SHIPPED,
    Example,
    Model,
    features,
    load_model,
    log_odds,
    shipped_examples,
    train,
)
from feedsvc.cli import main
from feedsvc.errors import CatalogError
from feedsvc.model import Item
from feedsvc.store import open_store
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, TOKEN

TOPICS = ["world", "business", "sport", "tech", "science", "health", "culture"]
# A few labelled items of our own: enough for a model to tell two kinds apart.
FIXTURE = [
    Example(frozenset({"culture"}), "Quilters stitch a coverlet for the abbey"),
    Example(frozenset({"culture"}), "Village quilters finish a patchwork coverlet"),
    Example(frozenset({"culture"}), "Patchwork coverlet by the quilting circle goes on show"),
    Example(frozenset({"sport"}), "Harriers win the fell race over the moor"),
    Example(frozenset({"sport"}), "Fell race record falls to the harriers' captain"),
    Example(frozenset({"sport"}), "Harriers take the fell race relay"),
    Example(frozenset(), "Council repaints the bus shelter on Mill Lane"),
    Example(frozenset(), "Bus shelter on Mill Lane gets a bench"),
]
# Items of a kind no rule knows (so filed under `other`), pinned by an editor to culture.
QUILTS = [
    ("q1", "Marlow quilters stitch a record coverlet", "The circle met for six weeks."),
    ("q2", "Quilting circle unveils coverlet of the old mill", "Forty quilters stitched it."),
    ("q3", "Patchwork coverlet by village quilters goes on show", "A winter's patchwork."),
    ("q4", "Young quilters stitch their first coverlet", "A quilting circle for teenagers."),
    ("q5", "Quilters' guild stitches a coverlet for the harbour", "It shows the boats."),
]
SIMILAR = ("q9", "Tadley quilters stitch a patchwork coverlet", "They worked on it all spring.")


def jsonl(items: list[tuple[str, str, str]]) -> str:
    lines = (
        json.dumps(
            {"id": i, "title": t, "content": f"<p>{b}</p>", "published": "2026-11-20T09:00:00Z"}
        )
        for i, t, b in items
    )
    return "\n".join(lines) + "\n"


def copy_feeds(tmp_path: Path) -> Path:
    feeds = tmp_path / "feeds"
    shutil.copytree(FEEDS, feeds, ignore=shutil.ignore_patterns("samples", LEARNED))
    return feeds


def test_training_is_deterministic_and_learns_the_fixtures(tmp_path) -> None:
    first, second = train(FIXTURE, TOPICS), train(list(FIXTURE), TOPICS)
    assert first.to_json() == second.to_json()
    path = tmp_path / "model.json"
    path.write_text(first.to_json(), encoding="utf-8")
    model = load_model(path)
    assert model.probabilities("Quilters stitch a coverlet") == first.probabilities(
        "Quilters stitch a coverlet"
    )
    culture = model.probabilities("The quilting circle's new coverlet")
    assert max(culture, key=culture.get) == "culture"
    sport = model.probabilities("Harriers lead the fell race", "A fell race over the moor.")
    assert max(sport, key=sport.get) == "sport"


def test_the_shipped_model_is_what_its_shipped_data_trains() -> None:
    # scripts/train_topics.py wrote both files; training again gives the same bytes.
    shipped = train(shipped_examples(), sorted(TOPICS))  # the script lists them by slug
    assert shipped.to_json() == SHIPPED.read_text(encoding="utf-8")


def test_scoring_adds_up_the_features_training_saw() -> None:
    # Model.scores finds features its own quick way (sets of words, stems and pairs, rows
    # packed into integers): it must give what the features training sees give, item by item.
    model = load_model(SHIPPED)
    items = [(e.title, e.body) for e in shipped_examples()[::7]]
    items += [("Ã‰lection: Crème brûlée vaccine, vaccines", "vaccination " * 80), ("", "")]
    for title, body in items:
        expected = list(model.bias)
        for feature, value in features(title, body).items():
            row = model.weights.get(feature, (0.0,) * len(expected))
            expected = [score + value * weight for score, weight in zip(expected, row, strict=True)]
        assert model.scores(title, body) == pytest.approx(expected, abs=1e-9), title


def hand_made() -> Model:
    """A model whose every weight is chosen: it knows quilts are culture, and that a
    "political football" is no sport; of anything else it finds each topic 12% likely."""
    weights = {
        "quilters": (0, 0, 0, 0, 0, 0, 40),
        ("political", "football"): (0, 0, -60, 0, 0, 0, 0),
    }
    order = ["world", "business", "sport", "tech", "science", "health", "culture"]
    return Model(tuple(order), (-2.0,) * 7, weights)


def test_rules_stand_the_model_adds_decides_or_reads_another_sense(tmp_path) -> None:
    feeds = copy_feeds(tmp_path)
    (feeds / LEARNED).write_text(hand_made().to_json(), encoding="utf-8")
    catalog = load_catalog(feeds)
    assert catalog.model is not None and catalog.model.path == feeds / LEARNED
    # No rule speaks: the model decides.
    title = "Quilters stitch a patchwork coverlet"
    assert catalog.filer.file(title) == ()
    assert catalog.file(title) == ("culture",)
    explanation = catalog.explain(Item("x", title))
    assert explanation.topics == ("culture",)
    assert explanation.model[0].slug == "culture" and explanation.model[0].filed
    assert explanation.model[0].note.startswith("decided by the model")
    # A rule speaks (sport's "football") and the model has no view against it: it stands,
    # and the model adds its own to an item with a body; a headline alone is the rules'
    # (catalog.BARS_HEADLINE).
    title, body = "Quilters stitch a coverlet for the football club", "The club's quilters met."
    assert catalog.filer.file(title, body) == ("sport",)
    assert catalog.file(title, body) == ("sport", "culture")
    assert catalog.file(title) == ("sport",)
    # The model is sure the rule's word is used in another sense: that topic is kept out.
    title = "Budget becomes a political football"
    assert catalog.filer.file(title) == ("world", "sport")
    assert catalog.file(title) == ("world",)
    explanation = catalog.explain(Item("y", title))
    assert explanation.topics == ("world",)
    vote = next(vote for vote in explanation.model if vote.slug == "sport")
    assert not vote.filed and vote.note.startswith("kept out by the model")
    # Pinned topics and subject codes come first.
    pinned = Item("p", "Quilters stitch a coverlet", topics=("science",))
    assert catalog.topics_for(pinned) == ("science",)
    assert catalog.explain(pinned).topics == ("science",)
    coded = Item("c", "Quilters stitch a coverlet", subjects=("medtop:15000000",))
    assert catalog.topics_for(coded) == ("sport",) == catalog.explain(coded).topics
    # Without a model (site.toml `model = false`) the rules alone file.
    site = feeds / "site.toml"
    site.write_text("model = false\n" + site.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_catalog(feeds).file("Quilters stitch a patchwork coverlet") == ()


def test_explain_shows_the_model_part(tmp_path) -> None:
    runner = CliRunner()
    feeds = copy_feeds(tmp_path)
    (feeds / LEARNED).write_text(hand_made().to_json(), encoding="utf-8")
    wire = tmp_path / "in.txt"
    wire.write_text("-\nQuilters stitch a patchwork coverlet\n", encoding="utf-8")
    result = runner.invoke(main, ["--feeds", str(feeds), "parse", "--explain", str(wire)])
    assert result.exit_code == 0, result.output
    assert "no rule found" in result.output
    assert "    model      culture 1.00  business 0.12" in result.output  # likeliest first
    assert "+ culture" in result.output and "decided by the model" in result.output
    result = runner.invoke(main, ["--feeds", str(feeds), "parse", "--json", "--explain", str(wire)])
    explained = json.loads(result.output)["explain"]
    assert explained["model"][0]["topic"] == "culture" and explained["model"][0]["filed"]
    assert json.loads(result.output)["topics"] == ["culture"]


def test_a_damaged_model_is_one_line(tmp_path) -> None:
    runner = CliRunner()
    feeds = copy_feeds(tmp_path)
    (feeds / LEARNED).write_text('{"format": 1, "topics": ["a"]}', encoding="utf-8")
    with pytest.raises(CatalogError, match="not a topic model"):
        load_catalog(feeds).file("anything")
    # Well formed, but a weight too large for the packed rows the model scores with.
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    feature = next(iter(shipped["weights"]))
    shipped["weights"][feature] = [1e6] * len(shipped["topics"])
    (feeds / LEARNED).write_text(json.dumps(shipped), encoding="utf-8")
    with pytest.raises(CatalogError, match="not a topic model: a weight"):
        load_catalog(feeds).file("anything")
    (feeds / LEARNED).write_text('{"format": 1, "topics": ["a"]}', encoding="utf-8")
    wire = tmp_path / "in.txt"
    wire.write_text("-\nA headline\n", encoding="utf-8")
    result = runner.invoke(main, ["--feeds", str(feeds), "parse", str(wire)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not a topic model" in result.output
    assert "Traceback" not in result.output


def test_pinning_a_few_items_teaches_the_model(tmp_path, runner, settings) -> None:
    feeds = copy_feeds(tmp_path)
    documents = tmp_path / "quilts.jsonl"
    documents.write_text(jsonl([*QUILTS, SIMILAR]), encoding="utf-8")
    cli = ["--feeds", str(feeds)]
    result = runner.invoke(main, [*cli, "ingest", str(documents)])
    assert result.exit_code == 0, result.output
    store = open_store(settings.db)
    try:
        assert store.item(SIMILAR[0]).topics == (OTHER,)  # no rule, no model knows quilts
        for item_id, _, _ in QUILTS:
            result = runner.invoke(main, [*cli, "file", item_id, "--topics", "culture"])
            assert result.exit_code == 0, result.output
            assert result.output == f"{item_id}: culture (was other)\n"
        assert store.item("q1").topics == ("culture",)
        assert {item.id: item.topics for item in store.pinned()} == {
            item_id: ("culture",) for item_id, _, _ in QUILTS
        }
        result = runner.invoke(main, [*cli, "learn"])
        assert result.exit_code == 0, result.output
        assert "5 pinned items" in result.output and (feeds / LEARNED).is_file()
        learned = (feeds / LEARNED).read_bytes()
        result = runner.invoke(main, [*cli, "refile"])
        assert result.exit_code == 0, result.output
        assert result.output == "1 items re-filed\n"  # the similar one; the pinned stay
        assert store.item(SIMILAR[0]).topics == ("culture",)
        # Learning again from the same store writes the same model, byte for byte.
        assert runner.invoke(main, [*cli, "learn"]).exit_code == 0
        assert (feeds / LEARNED).read_bytes() == learned
    finally:
        store.close()
    # A new item of that kind, never stored, is filed under culture too.
    wire = tmp_path / "new.txt"
    wire.write_text("-\nA coverlet stitched by quilters from three villages\n", encoding="utf-8")
    result = runner.invoke(main, [*cli, "parse", "--json", str(wire)])
    assert json.loads(result.output)["topics"] == ["culture"]


def test_file_command_errors_are_one_line(tmp_path, runner) -> None:
    documents = tmp_path / "one.jsonl"
    documents.write_text(jsonl(QUILTS[:1]), encoding="utf-8")
    assert runner.invoke(main, ["ingest", str(documents)]).exit_code == 0
    for args, message in (
        (["file", "nosuch", "--topics", "sport"], "no published item 'nosuch'"),
        (["file", "q1", "--topics", "quilts"], "unknown topic 'quilts'"),
        (["file", "q1", "--topics", ","], "no topic given"),
        (["file", "q1", "--topics", "other,sport"], "'other' is for items of no topic"),
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, args
        assert result.output.startswith("feedsvc: error: ") and message in result.output
        assert result.output.count("\n") == 1, result.output
    result = runner.invoke(main, ["file", "q1", "--topics", "sport,culture"])
    assert result.output == "q1: sport,culture (was other)\n"  # in the catalogue's order
    result = runner.invoke(main, ["file", "q1", "--topics", "other"])
    assert result.output == "q1: other (was sport,culture)\n"


def test_api_pins_topics(settings, catalog, clock, tmp_path) -> None:
    store = open_store(settings.db, clock, create=True)
    store.close()
    app = create_app({"SETTINGS": settings, "CATALOG": catalog, "CLOCK": clock, "TESTING": True})
    client = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = jsonl(QUILTS[:1]).encode()
    posted = client.post("/api/items", data=body, headers=auth, content_type="application/jsonl")
    assert posted.status_code == 200, posted.data
    url = "/api/items/q1/topics"
    assert client.put(url, json={"topics": ["culture"]}).status_code == 401
    for sent, status in (
        ({"topics": ["quilts"]}, 400),
        ({"topics": "culture"}, 400),
        ({"topics": []}, 400),
        ([], 400),
    ):
        answer = client.put(url, json=sent, headers=auth)
        assert answer.status_code == status, sent
        assert b"Traceback" not in answer.data
    answer = client.put(url, data=b"{not json", headers=auth, content_type="application/json")
    assert answer.status_code == 400
    nosuch = client.put("/api/items/nosuch/topics", json={"topics": ["sport"]}, headers=auth)
    assert nosuch.status_code == 404
    answer = client.put(url, json={"topics": ["culture", "world"]}, headers=auth)
    assert answer.status_code == 200
    assert answer.get_json() == {"id": "q1", "topics": ["world", "culture"], "was": ["other"]}
    feed = feedparser.parse(client.get("/feeds/culture.rss").data)
    assert [entry.title for entry in feed.entries] == [QUILTS[0][1]]
    assert feedparser.parse(client.get("/feeds/other.rss").data).entries == []
    assert BASE_URL  # the app links to the test site


def test_a_catalogue_of_topics_the_model_does_not_know_files_by_its_rules(tmp_path) -> None:
    (tmp_path / "topics").mkdir()
    (tmp_path / "site.toml").write_text('title = "t"\ndescription = "d"\nauthor = "a"\n')
    weather = 'title = "Weather"\ndescription = "Skies."\n[rules]\nmatch = ["snow"]\n'
    (tmp_path / "topics" / "weather.toml").write_text(weather)
    catalog = load_catalog(tmp_path)
    assert catalog.model is not None and catalog.model.path == SHIPPED
    assert catalog.file("Snow closes mountain pass") == ("weather",)
    assert catalog.file("Central bank raises interest rates") == ()
    explanation = catalog.explain(Item("x", "Snow closes mountain pass"))
    assert explanation.topics == ("weather",) and explanation.model == ()


def test_the_bars_of_an_item_with_a_body_and_of_a_headline_alone(catalog) -> None:
    # _combine's rules, one at a time, with the model's scores given (log-odds).
    slugs = [topic.slug for topic in catalog.topics]

    def combined(by_rules, in_title, likely, bars=BARS):
        scores = [log_odds(likely.get(slug, 0.01)) for slug in slugs]
        return catalog._combine(by_rules, in_title, slugs, scores, bars.log_odds())[0]

    # The first title topic stands at 5%; a second title topic needs 20%, one from the body 40%.
    assert combined(("world",), ("world",), {"world": 0.06}) == ("world",)
    assert combined(("world",), ("world",), {"world": 0.04}) == ()
    both = ("world", "business")
    assert combined(both, both, {"world": 0.9, "business": 0.25}) == both
    assert combined(both, both, {"world": 0.9, "business": 0.15}) == ("world",)
    assert combined(both, ("world",), {"world": 0.9, "business": 0.45}) == both
    assert combined(both, ("world",), {"world": 0.9, "business": 0.35}) == ("world",)
    # The model adds at 90%, and decides at 30% where no rule stands.
    assert combined(("world",), ("world",), {"world": 0.9, "tech": 0.92}) == ("world", "tech")
    assert combined(("world",), ("world",), {"world": 0.9, "tech": 0.88}) == ("world",)
    assert combined((), (), {"tech": 0.35}) == ("tech",)
    assert combined((), (), {"tech": 0.25}) == ()
    # A headline alone: its first title topic stands however unlikely; no topic is added.
    assert combined(("world",), ("world",), {"world": 0.001}, BARS_HEADLINE) == ("world",)
    assert combined(("world",), ("world",), {"tech": 0.99}, BARS_HEADLINE) == ("world",)
    assert combined((), (), {"tech": 0.65}, BARS_HEADLINE) == ("tech",)
    # A margin (off by default) keeps out a second topic far below the first.
    margin = replace(BARS, margin=2.0)
    assert combined(both, both, {"world": 0.95, "business": 0.5}, margin) == ("world",)
    assert combined(both, both, {"world": 0.95, "business": 0.8}, margin) == both
