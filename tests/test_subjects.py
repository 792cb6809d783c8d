"""IPTC subject codes file items exactly: listed codes, broader codes (IPTC's Media Topics
hierarchy, the Subject Codes' numbering, codes the document states), before any word rule."""

from __future__ import annotations

import pytest

from feedsvc.catalog import load_catalog
from feedsvc.errors import CatalogError
from feedsvc.model import Item
from feedsvc.subjects import lineage, media_topics

from .conftest import FEEDS
from .newsroom import CORPUS, cli


def test_media_topics_hierarchy_is_shipped_and_walked() -> None:
    assert len(media_topics()) > 1000
    # information technology -> technology and engineering -> science and technology
    assert lineage("medtop:20000763") == ["medtop:20000763", "medtop:20000756", "medtop:13000000"]
    assert lineage("medtop:15000000") == ["medtop:15000000"]
    assert lineage("medtop:99999999") == ["medtop:99999999"]


def test_subject_codes_broader_by_their_numbering() -> None:
    assert lineage("subj:15008001") == [
        "subj:15008001",
        "subj:15008000",
        "subj:15000000",
        "medtop:15000000",  # the top levels share their numbers and meaning
    ]


def catalogue(tmp_path, topics: dict[str, str]):
    feeds = tmp_path / "feeds"
    (feeds / "topics").mkdir(parents=True)
    (feeds / "site.toml").write_text('title = "T"\ndescription = "D"\nauthor = "A"\n')
    for slug, extra in topics.items():
        (feeds / "topics" / f"{slug}.toml").write_text(
            f'title = "{slug}"\ndescription = "About {slug}."\n{extra}\n'
        )
    return feeds


def two_level(tmp_path):
    feeds = catalogue(
        tmp_path,
        {
            "science": 'subjects = ["medtop:13000000"]\n[rules]\nmatch = ["telescope"]',
            "tech": 'subjects = ["medtop:20000756"]\n[rules]\nmatch = ["software"]',
            "weather": '[rules]\nmatch = ["rain"]',
        },
    )
    return load_catalog(feeds, "https://news.example/")


@pytest.mark.parametrize(
    ("codes", "title", "topics"),
    [
        (("medtop:13000000",), "Rain all week", ("science",)),  # listed: words not read
        (("medtop:20000763",), "Rain all week", ("tech",)),  # the nearest listed code wins
        (("medtop:20000711",), "A new strain", ("science",)),  # biotechnology -> ... -> 13000000
        (("subj:13004000",), "Rain all week", ("science",)),  # old numbering, then medtop
        (("medtop:20000763", "medtop:20000711"), "Both", ("science", "tech")),
        (("medtop:17000000",), "Rain all week", ("weather",)),  # no topic lists it: words
        ((), "New software release", ("tech",)),  # no codes: words
        ((), "Nothing to see", ("other",)),
    ],
)
def test_codes_file_items_before_words(tmp_path, codes, title, topics) -> None:
    catalog = two_level(tmp_path)
    item = Item(id="x1", title=title, subjects=codes)
    assert catalog.topics_for(item) == topics


def test_topics_pinned_by_the_source_still_win(tmp_path) -> None:
    catalog = two_level(tmp_path)
    item = Item(id="x1", title="t", subjects=("medtop:13000000",), topics=("weather",))
    assert catalog.topics_for(item) == ("weather",)


def test_a_bad_code_in_a_topic_is_one_line_with_its_line(tmp_path) -> None:
    feeds = catalogue(tmp_path, {"science": 'subjects = [\n  "medtop:13000000",\n  "science",\n]'})
    with pytest.raises(CatalogError) as raised:
        load_catalog(feeds)
    assert str(raised.value) == (
        f"{feeds / 'topics/science.toml'}:5: subjects[2] must be an IPTC code such as "
        "'medtop:15000000' or 'subj:15000000': 'science'"
    )


def test_the_sample_catalogue_maps_every_topic_to_media_topics() -> None:
    catalog = load_catalog(FEEDS)
    for topic in catalog.topics:
        assert topic.subjects, topic.slug
        assert all(code.startswith("medtop:") for code in topic.subjects)


def test_parse_explain_says_when_subjects_filed_it() -> None:
    result = cli("parse", "--explain", str(CORPUS / "ninjs3-20-text.json"))
    assert result.exit_code == 0, result.output
    assert "filed by subject codes: science (medtop:20000418 -> medtop:06000000, " in (
        result.stdout
    )
    result = cli("parse", "--json", "--explain", str(CORPUS / "g2-09-item-no-codes.xml"))
    assert '"subjects": []' in result.stdout  # no codes: the words decided
