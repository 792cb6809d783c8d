"""The HTML cleaner's output is what an HTML5 parser reads without a parse error: html5lib in
strict mode, the parser the W3C feed validator checks feed content with ("Invalid HTML")."""

from __future__ import annotations

import html5lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.sanitize import ALLOWED, DROPPED, clean_html

from .conftest import examples


def parse_errors(fragment: str) -> list[str]:
    parser = html5lib.HTMLParser(strict=False)
    parser.parseFragment(fragment)
    return [f"{code} at {position}" for position, code, _ in parser.errors]


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        # an li ends the one before it; the list's end ends the last
        ("<ul><li>a<li>b</ul>", "<ul><li>a</li><li>b</li></ul>"),
        # a block ends an open paragraph; the paragraph's own end tag is then left out
        ("<p>x<ul><li>y</ul>z</p>", "<p>x</p><ul><li>y</li></ul>z"),
        # ... and what was open inside the paragraph is ended first, in order
        (
            "<p><b>x<blockquote>q</blockquote>y</b></p>",
            "<p><b>x</b></p><blockquote>q</blockquote>y",
        ),
        ("<h2>a<h3>b</h3>", "<h2>a</h2><h3>b</h3>"),
        (
            '<a href="https://a.example/">1<a href="https://b.example/">2</a>',
            '<a href="https://a.example/">1</a><a href="https://b.example/">2</a>',
        ),
        # a list inside an item keeps the item open
        ("<ul><li>x<ul><li>in</ul><li>z</ul>", "<ul><li>x<ul><li>in</li></ul></li><li>z</li></ul>"),
        ("<b><p>x</b>y</p>", "<b><p>x</p></b>y"),
        ("<p>one<p>two", "<p>one</p><p>two</p>"),
        ("text</p></li></br>", "text"),
    ],
)
def test_ends_html_implies_are_written_out(given: str, cleaned: str) -> None:
    assert clean_html(given) == cleaned
    assert parse_errors(cleaned) == []


def test_the_validators_parser_finds_errors_in_the_html_we_used_to_write() -> None:
    # What the cleaner made of a list before: an li inside an li, closed twice (the
    # validator's "Invalid HTML"). The check above must be able to see that.
    assert parse_errors("<ul><li>a<li>b</li></li></ul>")


TAGS = sorted(ALLOWED) + sorted(DROPPED)[:4] + ["div", "span", "table", "td", "font"]
piece = st.one_of(
    st.builds(lambda tag: f"<{tag}>", st.sampled_from(TAGS)),
    st.builds(lambda tag: f"</{tag}>", st.sampled_from(TAGS)),
    st.builds(
        lambda href: f'<a href="{href}">',
        st.sampled_from(["https://news.example/a?b=1&c=2", "javascript:x()", "mailto:a@b.example"]),
    ),
    st.sampled_from(["<br>", "<br/>", "</br>", "&amp;", "&lt;", "&", "<", ">", "\n", " "]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(piece, max_size=30).map("".join))
def test_any_fragment_cleans_to_html_without_a_parse_error(fragment: str) -> None:
    cleaned = clean_html(fragment)
    assert parse_errors(cleaned) == [], cleaned
    assert clean_html(cleaned) == cleaned  # and cleaning it again changes nothing
