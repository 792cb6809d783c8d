"""An allowlist HTML cleaner for content that arrives as HTML (JSON Lines), so feeds and pages
never carry a script: unknown tags are dropped (their text kept), dangerous ones with their text.

The result is what an HTML5 parser reads without a parse error (the W3C feed validator checks
content with one): every element closed explicitly, in order, and where HTML ends an element
by itself (a `p` before a block, an `li` before the next, a link before another) the cleaner
writes that end tag first, so no end tag is left over for a reader to guess at."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from urllib.parse import urlsplit

from .model import clean_text

ALLOWED = frozenset(
    [
        "p",
        "br",
        "a",
        "em",
        "strong",
        "b",
        "i",
        "u",
        "s",
        "sub",
        "sup",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "code",
        "q",
        "cite",
    ]
)
VOID = frozenset(("br",))
# Their text is code or markup, not prose: dropped with the tag.
DROPPED = frozenset(
    [
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "template",
        "noscript",
        "svg",
        "math",
        "textarea",
        "select",
        "head",
        "title",
    ]
)
LINK_SCHEMES = ("http", "https", "mailto")
HEADINGS = frozenset(("h2", "h3", "h4", "h5", "h6"))
# Start tags that end an open `p` (HTML's "close a p element"), of the tags kept here.
CLOSE_P = frozenset(("p", "ul", "ol", "li", "blockquote", "pre", *HEADINGS))
# HTML's "special" elements among those kept, but for p: an `li` start tag ends an open `li`
# unless one of these lies between them (a list inside the item).
SPECIAL = frozenset(("ul", "ol", "li", "blockquote", "pre", *HEADINGS))


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED:
            self.dropping += 1
        elif not self.dropping and tag in ALLOWED:
            self._end_implied_by(tag)
            self.out.append(f"<{tag}{_attributes(tag, attrs)}>")
            if tag not in VOID:
                self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.dropping and tag in VOID:
            self.out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED:
            self.dropping = max(0, self.dropping - 1)
        elif not self.dropping and tag in self.open:
            self._close(len(self.open) - 1 - self.open[::-1].index(tag))

    def _close(self, depth: int) -> None:
        """End the open element at `depth` of the stack, and whatever was left open inside it."""
        while len(self.open) > depth:
            self.out.append(f"</{self.open.pop()}>")

    def _end_implied_by(self, tag: str) -> None:
        """Write the end tags HTML implies before a start `tag` (which an HTML5 parser would
        otherwise supply, then meet our own end tag with nothing left to close)."""
        if tag in CLOSE_P and "p" in self.open:
            self._close(self.open.index("p"))
        if tag in HEADINGS:
            for depth, name in enumerate(self.open):
                if name in HEADINGS:
                    self._close(depth)
                    break
        elif tag == "li":
            for depth in range(len(self.open) - 1, -1, -1):
                if self.open[depth] == "li":
                    self._close(depth)
                    break
                if self.open[depth] in SPECIAL:
                    break
        elif tag == "a" and "a" in self.open:
            self._close(self.open.index("a"))

    def handle_data(self, data: str) -> None:
        if not self.dropping:  # cleaned again: a character reference can decode to a control
            self.out.append(html.escape(clean_text(data), quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def _attributes(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    if tag != "a":
        return ""
    href = clean_text(dict(attrs).get("href") or "").strip()
    try:
        scheme = urlsplit(href).scheme.lower()
    except ValueError:
        return ""
    if scheme not in LINK_SCHEMES:
        return ""
    return f' href="{html.escape(href)}"'


def clean_html(fragment: str) -> str:
    """`fragment` with only harmless markup left."""
    cleaner = _Cleaner()
    cleaner.feed(fragment)
    return cleaner.result()
