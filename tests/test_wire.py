"""The wire-text rules of DESIGN.md, one behaviour per test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc import wire as wire_module
from feedsvc.errors import DocumentError, FeedsvcError
from feedsvc.model import item_id
from feedsvc.sources import Document, parse_document
from feedsvc.wire import parse_wire

from .conftest import DATA


def wire(data: bytes, name: str = "doc.txt") -> list:
    return parse_document(Document(name, data, "wire"))


def titles(data: bytes) -> list[str]:
    return [item.title for item in wire(data)]


def test_headlines_and_article_with_byline_in_document_order() -> None:
    items = wire((DATA / "wire_basic.txt").read_bytes())
    assert [i.title for i in items] == [
        "Harbour authority approves night ferry trial",
        "Glacier survey finds meltwater lakes doubling in size",
        "Ministers meet to settle fishing quota dispute",
        "Violin maker restores a 200-year-old cello for village orchestra",
    ]
    article = items[2]
    assert article.author == "M.Okonkwo"
    assert article.source == "NWS"
    assert article.content == (
        "<p>Talks over the northern fishing grounds resumed on Tuesday after a two-week pause."
        "</p>\n"
        '<p>Negotiators said a deal on quotas for cod and haddock was "within reach".</p>\n'
        "<p>Both sides agreed to publish the catch data they rely on.</p>"
    )
    assert (
        article.summary
        == "Talks over the northern fishing grounds resumed on Tuesday after a two-week pause."
    )
    assert items[0].content is None and items[0].summary is None and items[0].author is None


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_any_line_end_gives_the_same_items(end: bytes) -> None:
    data = (DATA / "wire_basic.txt").read_bytes().replace(b"\n", end)
    assert wire(data) == wire((DATA / "wire_basic.txt").read_bytes())


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_a_big_document_split_into_pieces_gives_the_same_items(end: str, monkeypatch) -> None:
    """Lines are split a piece at a time (`wire.PIECE_CHARS`): with tiny pieces, every kind of
    line end, a title, a paragraph and a byline land on a piece's edge somewhere."""
    lines = []
    for n in range(300):
        lines += ["-", f"Council bulletin {n}: road {n * 13 % 97} reopens"]
        if n % 7 == 0:
            lines += [f"Article {n} title", f"First paragraph {n}, with more words.", "A.Lee--HB"]
    text = end.join(lines) + end
    whole = parse_wire(text)
    monkeypatch.setattr(wire_module, "PIECE_CHARS", 16)
    assert parse_wire(text) == whole
    assert len(whole) == 300 + 43 and whole[1].author == "A.Lee"


def test_mixed_line_ends() -> None:
    data = b"-\r\nFirst headline\r-\nSecond headline\r\n-\rThird headline"
    assert titles(data) == ["First headline", "Second headline", "Third headline"]


def test_bom_is_ignored() -> None:
    assert titles(b"\xef\xbb\xbf-\nA headline after a BOM\n") == ["A headline after a BOM"]


def test_blank_and_whitespace_lines_are_ignored() -> None:
    data = b"\n  \n-\n\n \t \n  Padded headline  \n\n-\n\t\nNext one\n"
    assert titles(data) == ["Padded headline", "Next one"]


def test_marker_at_end_and_repeated_markers_yield_nothing() -> None:
    assert titles(b"-\n-\n-\nOnly headline\n-\n-\n") == ["Only headline"]
    assert titles(b"-\n") == []


def test_lines_starting_with_dash_are_not_markers() -> None:
    items = wire(b"-\n- not a marker headline\n--\n-- also text\n")
    assert items[0].title == "- not a marker headline"
    assert items[1].title == "--"  # an article: its paragraphs follow
    assert items[1].content == "<p>-- also text</p>"


def test_line_after_headline_begins_an_article() -> None:
    items = wire(b"-\nHeadline\nArticle title\nFirst paragraph.\nSecond paragraph.\n")
    assert [i.title for i in items] == ["Headline", "Article title"]
    assert items[1].content == "<p>First paragraph.</p>\n<p>Second paragraph.</p>"


def test_text_before_the_first_marker_is_an_article() -> None:
    items = wire(b"Opening title\nIts paragraph.\n-\nA headline\n")
    assert items[0].title == "Opening title" and items[0].content == "<p>Its paragraph.</p>"


@pytest.mark.parametrize(
    ("last_line", "author", "source"),
    [
        ("A.Writer--X", "A.Writer", "X"),
        ("Jo Bloggs--ABCDEFGH12", "Jo Bloggs", "ABCDEFGH12"),
        ("P.Serrano-Diaz--NW7", "P.Serrano-Diaz", "NW7"),
    ],
)
def test_byline_code_of_1_to_10_capitals_or_digits(
    last_line: str, author: str, source: str
) -> None:
    item = wire(f"Title\nParagraph.\n{last_line}\n".encode())[0]
    assert (item.author, item.source) == (author, source)
    assert item.content == "<p>Paragraph.</p>"


@pytest.mark.parametrize(
    "last_line",
    [
        "A.Writer--ABCDEFGHIJK",  # 11 characters
        "A.Writer--abc",  # lowercase
        "2--1 Hull City.",
        "round--UN-brokered talks",
        "--AFP",  # no name
        "A.Writer-- AFP",
    ],
)
def test_not_a_byline_is_a_paragraph(last_line: str) -> None:
    item = wire(f"Title\nParagraph.\n{last_line}\n".encode())[0]
    assert item.author is None and item.source is None
    assert item.content.endswith("</p>") and item.content.count("<p>") == 2


def test_byline_only_counts_as_the_last_line() -> None:
    item = wire(b"Title\nA.Writer--AFP\nA later paragraph.\n")[0]
    assert item.author is None
    assert item.content == "<p>A.Writer--AFP</p>\n<p>A later paragraph.</p>"


def test_html_in_paragraphs_is_escaped_and_titles_kept_as_written() -> None:
    item = wire(b'Tom & Jerry <script>x</script> "quoted"\n<b>bold</b> & 1 < 2\n')[0]
    assert item.title == 'Tom & Jerry <script>x</script> "quoted"'
    assert item.content == "<p>&lt;b&gt;bold&lt;/b&gt; &amp; 1 &lt; 2</p>"
    assert item.summary == "<b>bold</b> & 1 < 2"  # plain text, as written


def test_entities_in_titles_are_not_decoded() -> None:
    assert titles(b"-\nAT&amp;T shares rise\n") == ["AT&amp;T shares rise"]


def test_control_characters_are_removed() -> None:
    item = wire(b"-\nBell\x07 and\x1b escape\x00 and\x7f del\x0b\x0c\n")[0]
    assert item.title == "Bell and escape and del"


def test_line_separator_u2028_is_kept_and_not_a_line_end() -> None:
    items = wire("-\nOne\u2028headline\n".encode())
    assert [i.title for i in items] == ["One\u2028headline"]


def test_tab_inside_a_line_is_kept() -> None:
    assert titles(b"-\nTab\there\n") == ["Tab\there"]


def test_empty_document_has_no_items() -> None:
    assert wire(b"") == []
    assert wire(b"\n\n  \r\n") == []


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ("-\nCaf\u00e9 au lait\n".encode("latin-1"), 2),
        ("-\nHeadline\n".encode("utf-16"), 1),
        ("-\nHeadline one\n-\nHeadline two\n".encode("utf-16-le"), 1),
        (bytes(range(256)) * 4, 3),  # 0x80 comes after LF (0x0a) and CR (0x0d)
        (b"-\nGood line\n-\nAnother good line\n-\nBad last line \xff\n", 6),
    ],
    ids=["latin-1", "utf-16", "utf-16-no-bom", "binary", "bad-byte-last-line"],
)
def test_non_utf8_is_rejected_whole_naming_file_and_line(data: bytes, line: int) -> None:
    with pytest.raises(DocumentError) as caught:
        wire(data, name="bad.txt")
    assert caught.value.where == "bad.txt"
    assert caught.value.line == line
    assert str(caught.value).startswith(f"bad.txt:{line}: ")


def test_same_headline_gives_the_same_id_across_case_and_spacing() -> None:
    first = item_id("Markets  rally after\trate cut")
    assert first == item_id("markets rally after rate CUT")
    assert first != item_id("Markets rally after rate cuts")
    assert len(first) == 16 and first.isalnum() and first.islower()


def test_ids_are_nfc_normalised() -> None:
    assert item_id("Cafe\u0301 opens") == item_id("Caf\u00e9 opens")


def test_parse_wire_takes_text() -> None:
    assert [i.title for i in parse_wire("-\nFrom text\n")] == ["From text"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_nothing_but_feedsvc_error(data: bytes) -> None:
    for kind in ("wire", "jsonl"):
        try:
            items = parse_document(Document("fuzz", data, kind))
        except FeedsvcError:
            continue
        for item in items:
            assert item.title and item.id


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("<stdin>", "--stdin-format jsonl"),
        ("drop/items.txt", "a .jsonl name"),
        ("request body", "application/x-ndjson"),
    ],
)
def test_json_lines_read_as_wire_text_is_rejected_with_a_hint(name: str, hint: str) -> None:
    data = b'\xef\xbb\xbf{"id": "s1", "title": "x"}\r\n\r\n  {"id": "s2", "title": "y"}  \n'
    with pytest.raises(DocumentError) as caught:
        parse_document(Document(name, data, "wire"))
    message = str(caught.value)
    assert message.startswith(f"{name}: every line is a JSON object") and hint in message


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "s1", "title": "x"}\nA headline that is plain text\n',
        "{curly} braces open this headline\n",
        '{"id": "s1"}\n[1, 2]\n',
        '{"unclosed": \n',
    ],
)
def test_wire_text_with_some_json_looking_lines_is_still_wire(text: str) -> None:
    items = parse_document(Document("<stdin>", text.encode(), "wire"))
    assert [item.title for item in items] == [line.strip() for line in text.splitlines()][:1]
