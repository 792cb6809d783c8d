"""The HTTP rules for published resources, in one place: the Flask routes and the WSGI fast
path both answer through `respond`, so their headers cannot drift apart."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from werkzeug.http import parse_accept_header, parse_date, parse_etags

from .publish import Published


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def respond(environ: Mapping[str, object], published: Published, max_age: int) -> Answer:
    """200 (plain or gzip), or 304 when the client's copy is current; HEAD gets no body."""
    gzipped = accepts_gzip(str(environ.get("HTTP_ACCEPT_ENCODING", "")))
    etag = published.gzip_etag if gzipped else published.etag
    headers = [
        ("ETag", f'"{etag}"'),
        ("Last-Modified", published.http_date),
        ("Cache-Control", published.cache_control or f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
    ]
    headers.extend(("Link", link) for link in published.links)
    if published.status == 200 and not_modified(environ, published):
        return Answer(304, headers, b"")
    body = published.gzip if gzipped else published.body
    headers.append(("Content-Type", published.content_type))
    headers.append(("Content-Length", str(len(body))))
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    head = environ.get("REQUEST_METHOD") == "HEAD"
    return Answer(published.status, headers, b"" if head else body)


def not_modified(environ: Mapping[str, object], published: Published) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison, either encoding's tag) decides when
    present; else If-Modified-Since at or after Last-Modified, to the second."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        if if_none_match in (f'"{published.etag}"', f'"{published.gzip_etag}"'):
            return True  # what pollers send back: skip the general parser
        tags = parse_etags(str(if_none_match))
        return tags.contains_weak(published.etag) or tags.contains_weak(published.gzip_etag)
    since = parse_date(str(environ.get("HTTP_IF_MODIFIED_SINCE") or "")) or None
    return since is not None and published.last_modified.replace(microsecond=0) <= since


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct headers
def accepts_gzip(accept_encoding: str) -> bool:
    if "gzip" not in accept_encoding:
        return False
    return parse_accept_header(accept_encoding)["gzip"] > 0
