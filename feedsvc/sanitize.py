"""An allowlist HTML cleaner for content that arrives as HTML (JSON Lines), so feeds and pages
never carry a script: unknown tags are dropped (their text kept), dangerous ones with their text."""

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
            while self.open:  # close whatever was left open inside it
                inner = self.open.pop()
                self.out.append(f"</{inner}>")
                if inner == tag:
                    break

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
