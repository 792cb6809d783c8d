"""The HTTP rules for published resources, in one place: the Flask routes and the WSGI fast
path both answer through `respond`, so their headers cannot drift apart.

A resource has few possible answers (two encodings, each as GET, HEAD and 304), so `answers_for`
builds them all once per render and `respond` only picks one: no header is formatted per request.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

from werkzeug.http import parse_accept_header, parse_date, parse_etags

Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Answer:
    status: str  # the status line, "200 OK"
    headers: Headers  # the server may change the list it is given (PEP 3333): send a copy
    body: bytes
    length: str  # the Content-Length sent, "-" for none (the access log's field)


@dataclass(frozen=True, slots=True)
class Encoding:
    """One representation of a resource (RFC 9110 3.2) and its three answers."""

    get: Answer
    head: Answer
    not_modified: Answer


@dataclass(frozen=True, slots=True)
class Answers:
    plain: Encoding
    gzip: Encoding
    etags: tuple[str, str]  # unquoted: plain, gzip
    quoted: tuple[str, str]  # what pollers send back in If-None-Match
    last_modified: datetime  # to the second
    conditional: bool  # only a 200 can be answered by a 304


def answers_for(
    body: bytes,
    gzipped: bytes,
    etags: tuple[str, str],
    last_modified: datetime,
    http_date: str,
    content_type: str,
    cache_control: str,
    links: tuple[str, ...] = (),
    status: int = 200,
) -> Answers:
    """Every answer a resource can get, headers formatted once."""
    line = f"{status} {HTTPStatus(status).phrase}"

    def encoding(data: bytes, etag: str, extra: Headers) -> Encoding:
        common = [
            ("ETag", f'"{etag}"'),
            ("Last-Modified", http_date),
            ("Cache-Control", cache_control),
            ("Vary", "Accept-Encoding"),
            *(("Link", link) for link in links),
        ]
        length = str(len(data))
        full = [*common, ("Content-Type", content_type), ("Content-Length", length), *extra]
        return Encoding(
            get=Answer(line, full, data, length),
            head=Answer(line, full, b"", length),  # HEAD reports the GET's length
            not_modified=Answer("304 Not Modified", common, b"", "-"),
        )

    return Answers(
        plain=encoding(body, etags[0], []),
        gzip=encoding(gzipped, etags[1], [("Content-Encoding", "gzip")]),
        etags=etags,
        quoted=(f'"{etags[0]}"', f'"{etags[1]}"'),
        last_modified=last_modified.replace(microsecond=0),
        conditional=status == 200,
    )


def respond(environ: Mapping[str, object], answers: Answers) -> Answer:
    """200 (plain or gzip), or 304 when the client's copy is current; HEAD gets no body."""
    accept = environ.get("HTTP_ACCEPT_ENCODING")
    encoding = answers.gzip if accept and accepts_gzip(str(accept)) else answers.plain
    if answers.conditional and not_modified(environ, answers):
        return encoding.not_modified
    return encoding.head if environ.get("REQUEST_METHOD") == "HEAD" else encoding.get


def not_modified(environ: Mapping[str, object], answers: Answers) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison, either encoding's tag) decides when
    present; else If-Modified-Since at or after Last-Modified, to the second."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        if if_none_match in answers.quoted:
            return True  # what pollers send back: skip the general parser
        tags = parse_etags(str(if_none_match))
        return any(tags.contains_weak(etag) for etag in answers.etags)
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not if_modified_since:
        return False  # a first poll: no parser at all
    since = parse_date(str(if_modified_since))
    return since is not None and answers.last_modified <= since


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct headers
def accepts_gzip(accept_encoding: str) -> bool:
    if "gzip" not in accept_encoding:
        return False
    return parse_accept_header(accept_encoding)["gzip"] > 0


def plain_error(status: int) -> Answer:
    """A short plain-text error (`503 Service Unavailable`), never cached: the one answer the
    Flask handler and the fast path both give when the store cannot be read."""
    line = f"{status} {HTTPStatus(status).phrase}"
    body = f"{line}\n".encode()
    length = str(len(body))
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", length),
        ("Cache-Control", "no-store"),
    ]
    return Answer(line, headers, body, length)


STORE_UNAVAILABLE = plain_error(503)
