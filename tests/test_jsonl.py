"""JSON Lines documents: the Item fields, one object a line, errors naming file and line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from feedsvc.errors import DocumentError
from feedsvc.sources import Document, kind_of, parse_document

from .conftest import DATA


def jsonl(text: str, name: str = "items.jsonl") -> list:
    return parse_document(Document(name, text.encode(), "jsonl"))


def test_fields_and_dates_are_read() -> None:
    items = parse_document(Document("items.jsonl", (DATA / "items.jsonl").read_bytes(), "jsonl"))
    assert [i.id for i in items] == ["desk-0001", "desk-0002", "desk-0003"]
    first = items[0]
    assert first.title == "Port strike enters its third day"
    assert first.summary == "Dock workers kept the gates shut."  # first paragraph of content
    assert first.link == "https://news.example.org/port-strike"
    assert first.published == datetime(2026, 11, 20, 8, 15, tzinfo=UTC)
    assert first.updated == datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert items[1].published == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert items[1].content is None and items[1].summary == "Amateur astronomers spotted it first."
    assert items[2].topics == ("culture",)


def test_extension_decides_the_format() -> None:
    assert kind_of("a.jsonl") == kind_of("B.NDJSON") == "jsonl"
    assert kind_of("a.txt") == "wire"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"id": "a", "title": "ok"}\n{"id": "b", "title": "x",}\n', 2, "not valid JSON"),
        ('{"id": "a"}\n', 1, "'title' is required"),
        ('{"title": "no id"}\n', 1, "'id' is required"),
        ('\n\n{"id": "a", "title": "t", "colour": "red"}\n', 3, "unknown field 'colour'"),
        ("[1, 2]\n", 1, "a line must hold a JSON object"),
        ('{"id": "a", "title": "t", "published": "2026-11-20 08:00"}\n', 1, "needs a timezone"),
        ('{"id": "a", "title": "t", "updated": "not a date"}\n', 1, "is not a date"),
        ('{"id": "a", "title": "t", "link": "/relative"}\n', 1, "absolute http(s) URL"),
        ('{"id": "a", "title": "t", "link": "javascript:alert(1)"}\n', 1, "absolute http(s)"),
        ('{"id": "../../etc/passwd", "title": "t"}\n', 1, "'id' must be"),
        ('{"id": "a", "title": 5}\n', 1, "'title' is required"),
        ('{"id": "a", "title": "t", "author": ["x"]}\n', 1, "'author' must be a string"),
        ('{"id": "a", "title": "t", "topics": "sport"}\n', 1, "'topics' must be a list"),
        (
            '{"id": "a", "title": "one"}\n{"id": "b", "title": "two"}\n\n'
            '{"id": "a", "title": "x"}\n',
            4,
            "id 'a' is also on line 1",
        ),
    ],
)
def test_bad_line_is_rejected_with_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DocumentError) as caught:
        jsonl(text)
    assert str(caught.value).startswith(f"items.jsonl:{line}: ")
    assert message in str(caught.value)


def test_html_content_is_cleaned_of_scripts() -> None:
    item = jsonl(
        '{"id": "a", "title": "t", "content": "<p onclick=\\"x()\\">Hi<script>alert(1)</script>'
        '<a href=\\"javascript:alert(1)\\">link</a></p>"}'
    )[0]
    assert item.content == "<p>Hi<a>link</a></p>"


def test_lone_surrogates_and_controls_are_removed() -> None:
    item = jsonl('{"id": "a", "title": "bad \\ud800 char \\u0007 here \\ufffe"}')[0]
    assert item.title == "bad  char  here"  # and stripped


def test_u2028_inside_a_string_does_not_split_the_line() -> None:
    item = jsonl('{"id": "a", "title": "one\u2028two"}\n')[0]
    assert item.title == "one\u2028two"


def test_empty_document_has_no_items() -> None:
    assert jsonl("") == []
