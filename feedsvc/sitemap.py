"""Sitemaps for search engines: the sitemaps protocol 0.9 (a URL set, or an index of URL sets
past one file's limits), Google News' sitemap, and the robots.txt that names them. Bytes from
plain values (URLs, dates, titles): which pages go in, and when, is the site map's choice."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
XML_TYPE = "application/xml; charset=utf-8"
ROBOTS_TYPE = "text/plain; charset=utf-8"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
# The protocol's limits for one file: 50,000 URLs and 50 MB (52,428,800 bytes) uncompressed.
MAX_URLS = 50_000
MAX_BYTES = 50 * 1024 * 1024
# Google News: articles of the last two days, at most 1,000 per sitemap.
NEWS_WINDOW = timedelta(days=2)
MAX_NEWS = 1_000
# The longest <url> line, less its URL: the tags and a lastmod (ids are plain ASCII, so a URL
# is written as it is, with no escaping to lengthen it).
_ENTRY_OVERHEAD = len("<url><loc></loc><lastmod>0000-00-00T00:00:00Z</lastmod></url>\n")
_FRAME = len(HEAD) + len(f'<urlset xmlns="{SITEMAP_NS}">\n</urlset>\n')
# Google News takes ISO 639 codes, two or three letters, and these two with their region.
_NEWS_REGIONS = {"zh-cn", "zh-tw"}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}")


@dataclass(frozen=True, slots=True)
class Entry:
    """A page of the site in a sitemap: its absolute URL and when it last changed."""

    url: str
    lastmod: datetime | None  # None: not given (optional in a sitemap index)


@dataclass(frozen=True, slots=True)
class Article:
    """An item in the news sitemap."""

    url: str
    title: str
    published: datetime


def w3c_datetime(when: datetime) -> str:
    """The W3C Datetime form the protocol asks for, in UTC, to the second."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lastmod(entry: Entry) -> str:
    return "" if entry.lastmod is None else f"<lastmod>{w3c_datetime(entry.lastmod)}</lastmod>"


def urls_per_file(longest_url: int) -> int:
    """How many URLs one file may hold when none is longer than `longest_url` characters: the
    protocol's 50,000, fewer if that many could pass 50 MB (a very long base URL)."""
    return min(MAX_URLS, (MAX_BYTES - _FRAME) // (longest_url + _ENTRY_OVERHEAD))


def urlset(entries: Iterable[Entry]) -> bytes:
    """A sitemap: one <url> per page, in the order given."""
    return _listing("urlset", "url", entries)


def sitemap_index(entries: Iterable[Entry]) -> bytes:
    """A sitemap index: one <sitemap> per sitemap file."""
    return _listing("sitemapindex", "sitemap", entries)


def _listing(root: str, element: str, entries: Iterable[Entry]) -> bytes:
    lines = [HEAD, f'<{root} xmlns="{SITEMAP_NS}">\n']
    for entry in entries:
        lines.append(f"<{element}><loc>{escape(entry.url)}</loc>{_lastmod(entry)}</{element}>\n")
    lines.append(f"</{root}>\n")
    return "".join(lines).encode()


def news_language(language: str) -> str:
    """The site's language (BCP 47, `en-GB`) as Google News wants it: the ISO 639 code."""
    code = language.strip().lower()
    if code in _NEWS_REGIONS:
        return code
    primary = code.split("-")[0]
    return primary if _LANGUAGE.fullmatch(primary) else "und"


def news_window(articles: list[Article]) -> list[Article]:
    """The articles of the two days up to the newest one's publication (not up to the clock:
    the same store gives the same sitemap whenever it is built), newest first, at most 1,000."""
    if not articles:
        return []
    newest = max(article.published for article in articles)
    recent = [a for a in articles if a.published >= newest - NEWS_WINDOW]
    recent.sort(key=lambda article: article.published, reverse=True)  # stable: ties keep order
    return recent[:MAX_NEWS]


def news_sitemap(articles: Iterable[Article], name: str, language: str) -> bytes:
    """Google News' sitemap: each article with its publication (the site's name and language),
    publication date and title."""
    publication = (
        f"<news:publication><news:name>{escape(name)}</news:name>"
        f"<news:language>{news_language(language)}</news:language></news:publication>"
    )
    lines = [HEAD, f'<urlset xmlns="{SITEMAP_NS}" xmlns:news="{NEWS_NS}">\n']
    for article in articles:
        lines.append(
            f"<url><loc>{escape(article.url)}</loc><news:news>{publication}"
            f"<news:publication_date>{w3c_datetime(article.published)}"
            f"</news:publication_date><news:title>{escape(article.title)}</news:title>"
            "</news:news></url>\n"
        )
    lines.append("</urlset>\n")
    return "".join(lines).encode()


def robots(sitemaps: Iterable[str]) -> bytes:
    """robots.txt (RFC 9309): every crawler may fetch everything; the sitemaps' absolute URLs."""
    lines = ["User-agent: *", "Allow: /", ""]
    lines.extend(f"Sitemap: {url}" for url in sitemaps)
    return ("\n".join(lines) + "\n").encode()
