"""Author and source feeds: the names in a byline, and the slug of each, stable and safe in a URL
and a file name whatever the byline holds (accents, apostrophes, scripts without ASCII letters,
two authors in one byline).

An author or a source is filed like a topic, under a key `authors/<slug>` or `sources/<slug>`:
topic slugs hold no '/', so no key can be a topic's. The store keeps its feed, archive pages and
kills with no code of its own for them."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from .filing import fold_accents

AUTHORS, SOURCES = "authors", "sources"
KINDS = (AUTHORS, SOURCES)
MAX_SLUG_CHARS = 60  # of the readable part; a hash may follow it
HASH_CHARS = 8
# A slug: ASCII words joined by '-', and "--" + a hash when the name held letters that have no
# ASCII form (or was too long): a readable slug never holds "--", so the two never meet.
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:--[0-9a-f]{8})?")
KEY = rf"(?:{'|'.join(KINDS)})/{SLUG.pattern}"  # a filing key, as paths hold it
# Between two authors: / & ; , + | and the word "and" ("A.Costa/B.Ng", "Ana Costa and Bo Ng").
_SEPARATOR = re.compile(r"[/&;,+|]|\band\b", re.IGNORECASE)
_BY = re.compile(r"^\s*by\s+", re.IGNORECASE)  # "By Ana Costa"
_APOSTROPHES = re.compile("['\u2018\u2019\u02bc\u0060\u00b4]")  # O'Brien is obrien, not o-brien
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_SPELLED = str.maketrans({"ß": "ss", "ẞ": "SS"})  # what accent folding leaves as it is
_WORD = re.compile(r"[^\W_]+")


def feed_key(kind: str, slug: str) -> str:
    """Where an author's or a source's items are filed: `authors/<slug>`, `sources/<slug>`."""
    return f"{kind}/{slug}"


def is_topic(key: str) -> bool:
    """Whether a filing key is a topic's (not an author's or a source's)."""
    return "/" not in key


def author_names(byline: str | None) -> list[str]:
    """The authors a byline names, in its order, each once (by slug); none for an empty one."""
    if not byline:
        return []
    names: dict[str, str] = {}
    for part in _SEPARATOR.split(_BY.sub("", byline)):
        name = " ".join(part.split())
        slug = name_slug(name)
        if slug is not None:
            names.setdefault(slug, name)
    return list(names.values())


def name_slug(name: str | None) -> str | None:
    """A name's slug: accents and case folded, apostrophes dropped, other punctuation a '-'
    ("Zoë O'Brien" -> "zoe-obrien", "A.Costa" -> "a-costa"). Letters with no ASCII form keep the
    name apart by a hash of it ("王伟" -> "x--" + 8 hex digits). None: no letter or digit."""
    if not name:
        return None
    text = fold_accents(unicodedata.normalize("NFKC", _APOSTROPHES.sub("", name)))
    text = text.translate(_SPELLED)
    words = _WORD.findall(text)
    if not words:
        return None
    readable = "-".join(_ASCII_WORD.findall(text)).lower()
    whole = all(word.isascii() for word in words) and len(readable) <= MAX_SLUG_CHARS
    if whole:
        return readable
    readable = readable[:MAX_SLUG_CHARS].rstrip("-") or "x"
    canonical = " ".join(words).casefold()  # the name as its slug sees it, spacing aside
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_CHARS]
    return f"{readable}--{digest}"
