"""POST /api/items: the bearer token, the body limit, content types, bad documents and counts.

Each test runs against both app variants (the `app` fixture: with the WSGI fast path in front,
and Flask alone). tests/test_web.py already checks that a posted headline shows in the feed."""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import replace

import pytest

from feedsvc.config import DEFAULT_MAX_BODY, Settings
from feedsvc.errors import DocumentError
from feedsvc.sources import Document, parse_document
from feedsvc.store import open_store as open_engine
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, TOKEN, app_config

AUTH = {"Authorization": f"Bearer {TOKEN}"}
WIRE = (
    "-\nLighthouse keepers vote to keep the night watch\n"
    "-\nTram line extension opens a week early\n"
    "Port authority publishes winter timetable\n"
    "The winter timetable adds two late sailings.\n"
    "A.Reporter--PA\n"
)
JSONL = (
    '{"id": "api-1", "title": "Museum reopens its map room", "content": "<p>Maps.</p>"}\n'
    '{"id": "api-2", "title": "Bakers guild elects a new chair", '
    '"published": "2026-11-20T09:00:00Z"}\n'
)


class Unreadable(io.RawIOBase):
    """A request body that fails the test if more than `allowed` bytes of it are read, and that
    never ends (a client streaming forever): `-` and a new headline, again and again."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.consumed = 0
        self.pending = b""
        self.number = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.consumed + len(buffer) > self.allowed:
            raise AssertionError(
                f"the app read past byte {self.allowed} of the body "
                f"({self.consumed} read, {len(buffer)} more asked)"
            )
        while len(self.pending) < len(buffer):
            self.number += 1
            self.pending += f"-\nStreamed headline number {self.number} of many\n".encode()
        buffer[:] = self.pending[: len(buffer)]
        self.pending = self.pending[len(buffer) :]
        self.consumed += len(buffer)
        return len(buffer)


def post(client, data, content_type="text/plain", headers=AUTH, **kwargs):
    return client.post(
        "/api/items", data=data, content_type=content_type, headers=headers, **kwargs
    )


def state(settings: Settings) -> tuple[dict[str, int], int, list[str]]:
    """Everything an ingest could change: counts per topic, the generation, the item ids."""
    store = open_engine(settings.db)
    try:
        return store.counts(), store.generation(), list(store.item_ids())
    finally:
        store.close()


@pytest.fixture
def make_client(app, settings, catalog, clock):
    """A client on an app of the same variant as `app`, with changed settings."""

    def make(**changes):
        changed = replace(settings, **changes)
        return create_app(
            app_config(changed, catalog, CLOCK=clock, TESTING=True, FASTPATH=app.config["FASTPATH"])
        ).test_client()

    return make


@pytest.fixture
def seeded(client, settings):
    """A store holding a few items, so 'nothing stored' means 'nothing changed'."""
    response = post(client, "-\nSeed headline for the API tests\n")
    assert response.status_code == 200, response.data
    return state(settings)


# -- the token -------------------------------------------------------------------------------

SAME_LENGTH = TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1")
BAD_AUTHORIZATION = {
    "missing": None,
    "empty": "",
    "basic scheme": "Basic " + base64.b64encode(f"feedsvc:{TOKEN}".encode()).decode(),
    "token scheme": f"Token {TOKEN}",
    "no scheme": TOKEN,
    "scheme glued to token": f"Bearer{TOKEN}",
    "bearer alone": "Bearer",
    "bearer and a space": "Bearer ",
    "wrong token, same length": f"Bearer {SAME_LENGTH}",
    "shorter token": f"Bearer {TOKEN[:-1]}",
    "longer token": f"Bearer {TOKEN}x",
    "token prefix only": f"Bearer {TOKEN[:4]}",
    "upper-cased token": f"Bearer {TOKEN.upper()}",
    "token twice": f"Bearer {TOKEN} {TOKEN}",
    "non-ascii token": "Bearer t\u00e9st-t\u00f6ken",
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION)
def test_without_the_right_bearer_token_is_401(client, settings, seeded, authorization) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = post(client, WIRE, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN.encode() not in response.data
    assert state(settings) == seeded


def test_token_elsewhere_than_the_header_is_401(client, settings, seeded) -> None:
    for response in (
        client.post(f"/api/items?token={TOKEN}", data=WIRE, content_type="text/plain"),
        client.post(f"/api/items?access_token={TOKEN}", data=WIRE, content_type="text/plain"),
        client.post(
            "/api/items",
            data={"access_token": TOKEN},
            content_type="application/x-www-form-urlencoded",
        ),
        post(client, WIRE, headers={"X-Token": TOKEN, "Authorization": f"Token {TOKEN}"}),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert state(settings) == seeded


def test_unauthorized_request_body_is_not_read(client, settings, seeded) -> None:
    body = Unreadable(allowed=0)
    response = client.post(
        "/api/items",
        headers={"Authorization": f"Bearer {SAME_LENGTH}", "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": "1000"},
    )
    assert response.status_code == 401 and body.consumed == 0
    assert state(settings) == seeded


def test_bearer_scheme_is_case_insensitive(client) -> None:
    response = post(client, WIRE, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200 and response.json["new"] == 3


def test_token_never_in_a_response_or_a_log_line(client, make_client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bad_doc = '{"id": "x", "title": "t"}\n{"id": "y"}\n'
    responses = [
        post(client, WIRE),
        post(client, WIRE),
        post(client, WIRE, headers={}),
        post(client, WIRE, headers={"Authorization": f"Bearer {SAME_LENGTH}"}),
        post(client, WIRE, headers={"Authorization": f"Basic {TOKEN}"}),
        post(client, bad_doc, content_type="application/x-ndjson"),
        post(client, b"-\nBad \xe9 bytes\n"),
        post(client, WIRE, content_type="text/csv"),
        post(make_client(max_body=10), WIRE),
        client.get("/api/items", headers=AUTH),
        client.get("/healthz", headers=AUTH),
        client.get("/feeds/all.rss", headers=AUTH),
    ]
    assert [r.status_code for r in responses] == [
        200, 200, 401, 401, 401, 400, 400, 415, 413, 405, 200, 200,
    ]  # fmt: skip
    for response in responses:
        assert TOKEN.encode() not in response.data
        assert TOKEN not in str(response.headers)
    for needle in (TOKEN, SAME_LENGTH):
        assert needle not in caplog.text
        for record in caplog.records:
            assert needle not in record.getMessage()
            assert needle not in repr(record.args)


def test_api_is_off_without_a_token(app, settings, clock) -> None:
    # FEEDSVC_TOKEN set but empty is "no token", as when it is not set at all.
    environ = {
        "FEEDSVC_DB": settings.db,
        "FEEDSVC_FEEDS": str(FEEDS),
        "FEEDSVC_BASE_URL": BASE_URL,
    }
    for env in (environ, {**environ, "FEEDSVC_TOKEN": ""}):
        off = Settings.from_env(env)
        assert off.token is None
        client = create_app(
            {"SETTINGS": off, "CLOCK": clock, "TESTING": True, "FASTPATH": app.config["FASTPATH"]}
        ).test_client()
        before = state(settings)
        for headers in ({}, AUTH, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            response = post(client, WIRE, headers=headers)
            assert response.status_code == 404
            assert "WWW-Authenticate" not in response.headers
        assert state(settings) == before
        assert client.get("/healthz").status_code == 200  # the rest of the app still runs


# -- the body limit --------------------------------------------------------------------------


def test_default_limit_is_5_mib(settings) -> None:
    assert DEFAULT_MAX_BODY == 5 * 1024 * 1024 and settings.max_body == DEFAULT_MAX_BODY
    assert Settings.from_env({"FEEDSVC_MAX_BODY": "1234"}).max_body == 1234
    assert Settings.from_env({}).max_body == DEFAULT_MAX_BODY


@pytest.mark.parametrize("declared", [DEFAULT_MAX_BODY + 1, 10 * DEFAULT_MAX_BODY, 2**40])
def test_content_length_over_the_limit_is_413_unread(client, settings, seeded, declared) -> None:
    body = Unreadable(allowed=0)
    response = client.post(
        "/api/items",
        headers={**AUTH, "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": str(declared)},
    )
    assert response.status_code == 413
    assert body.consumed == 0
    assert response.mimetype == "text/plain" and len(response.data) < 200
    assert state(settings) == seeded


def test_configured_limit_applies_at_its_byte(make_client, settings) -> None:
    limit = 4096
    client = make_client(max_body=limit)
    exact = ("-\n" + "Limit test headline number one about the harbour\n").encode()
    exact += b"\n" * (limit - len(exact))
    assert len(exact) == limit
    over = exact + b"\n"
    response = post(client, over)
    assert response.status_code == 413
    assert state(settings)[0]["all"] == 0
    response = post(client, exact)
    assert response.status_code == 200 and response.json["new"] == 1
    body = Unreadable(allowed=0)
    response = client.post(
        "/api/items",
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
        environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": str(limit + 1)},
    )
    assert response.status_code == 413 and body.consumed == 0


def test_streamed_body_over_the_limit_is_413_without_reading_it_all(make_client, settings) -> None:
    """No Content-Length (a chunked request, which granian and gunicorn pass on marked
    wsgi.input_terminated): a body over the limit is refused whole with 413, after reading
    little more than the limit. It must not be cut at the limit and the first part stored."""
    limit = 64 * 1024
    client = make_client(max_body=limit)
    body = Unreadable(allowed=limit + 1 + 64 * 1024)
    response = client.post(
        "/api/items",
        headers={**AUTH, "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True},
    )
    stored = state(settings)[0]["all"]
    assert (response.status_code, stored) == (413, 0), (
        f"a streamed body over the {limit}-byte limit got {response.status_code} "
        f"{response.data[:80]!r} and {stored} items of its first {limit} bytes were stored"
    )
    assert body.consumed <= limit + 1 + 64 * 1024


def test_streamed_body_within_the_limit_is_stored(make_client) -> None:
    client = make_client(max_body=4096)
    data = b"-\nChunked headline within the limit\n-\nAnother chunked headline\n"
    response = client.post(
        "/api/items",
        headers={**AUTH, "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True},
    )
    assert response.status_code == 200 and response.json["new"] == 2


# -- content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "text/csv",
        "",
    ],
)
def test_wrong_content_type_is_415(client, settings, seeded, content_type) -> None:
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    response = client.post("/api/items", data=WIRE.encode(), headers=headers)
    assert response.status_code == 415
    assert response.mimetype == "text/plain" and response.data.count(b"\n") == 1
    assert state(settings) == seeded


# -- documents -------------------------------------------------------------------------------

BAD_DOCUMENTS = {
    "jsonl missing title": (
        "application/x-ndjson",
        b'{"id": "bad-1", "title": "A good first line"}\n{"id": "bad-2"}\n',
    ),
    "jsonl not json": (
        "application/jsonl",
        b'{"id": "bad-3", "title": "Fine"}\n{"id": "bad-4", "title": }\n',
    ),
    "jsonl unknown field": (
        "application/x-ndjson",
        b'{"id": "bad-5", "title": "Fine"}\n{"id": "bad-6", "title": "x", "colour": "red"}\n',
    ),
    "jsonl bad id": ("application/x-ndjson", b'{"id": "../etc/passwd", "title": "Nope"}\n'),
    "jsonl relative link": (
        "application/x-ndjson",
        b'{"id": "bad-7", "title": "Fine", "link": "/relative/path"}\n',
    ),
    "wire not utf-8": ("text/plain", b"-\nA good headline first\n-\nBad \xe9 headline\n"),
    "wire utf-16": ("text/plain", "-\nHeadline in UTF-16\n".encode("utf-16-le")),
}


@pytest.mark.parametrize(("content_type", "data"), BAD_DOCUMENTS.values(), ids=list(BAD_DOCUMENTS))
def test_bad_document_is_400_with_the_parser_message(client, settings, seeded, content_type, data):
    kind = "wire" if content_type == "text/plain" else "jsonl"
    with pytest.raises(DocumentError) as parsed:
        parse_document(Document("doc", data, kind))
    error = parsed.value
    response = post(client, data, content_type=content_type)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.startswith("400 Bad Request: ") and text.endswith("\n")
    assert text.count("\n") == 1, text  # one line
    assert f":{error.line}: {error.message}\n" in text, (text, str(error))
    assert state(settings) == seeded  # nothing of the document, not even its good lines


def test_json_lines_posted_as_plain_text_is_400_saying_how_to_send_it(client, settings, seeded):
    response = post(client, JSONL, content_type="text/plain")
    assert response.status_code == 400
    assert response.get_data(as_text=True) == (
        "400 Bad Request: request body: every line is a JSON object: this is JSON Lines, "
        "not wire text (send it as application/x-ndjson)\n"
    )
    assert state(settings) == seeded


def test_wire_text_counts_and_repeat_is_unchanged(client, settings) -> None:
    first = post(client, WIRE)
    assert first.status_code == 200
    assert first.mimetype == "application/json"
    assert first.headers["Cache-Control"] == "no-store"
    assert first.json == {"new": 3, "updated": 0, "unchanged": 0, "held": 0, "killed": 0}
    etag = client.get("/feeds/all.atom").headers["ETag"]
    generation = state(settings)[1]
    again = post(client, WIRE)
    assert again.json == {"new": 0, "updated": 0, "unchanged": 3, "held": 0, "killed": 0}
    assert state(settings)[1] == generation  # a repeat is not a change of the store
    assert client.get("/feeds/all.atom").headers["ETag"] == etag
    # A headline seen later as an article becomes the article: one updated.
    article = "Tram line extension opens a week early\nThe first tram left at six.\n"
    updated = post(client, article, content_type="text/plain; charset=utf-8")
    assert updated.json == {"new": 0, "updated": 1, "unchanged": 0, "held": 0, "killed": 0}
    assert post(client, article).json == {
        "new": 0,
        "updated": 0,
        "unchanged": 1,
        "held": 0,
        "killed": 0,
    }


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/jsonl"])
def test_json_lines_counts_and_repeat_is_unchanged(client, settings, content_type) -> None:
    first = post(client, JSONL, content_type=content_type)
    assert first.status_code == 200, first.data
    assert first.json == {"new": 2, "updated": 0, "unchanged": 0, "held": 0, "killed": 0}
    store = open_engine(settings.db)
    assert store.item("api-1").content == "<p>Maps.</p>"
    assert post(client, JSONL, content_type=content_type).json == {
        "new": 0,
        "updated": 0,
        "unchanged": 2,
        "held": 0,
        "killed": 0,
    }
    changed = JSONL.replace("Bakers guild elects a new chair", "Bakers guild elects its chair")
    assert post(client, changed, content_type=content_type).json == {
        "new": 0,
        "updated": 1,
        "unchanged": 1,
        "held": 0,
        "killed": 0,
    }
    assert store.item("api-2").title == "Bakers guild elects its chair"
    store.close()


@pytest.mark.both_paths
def test_get_on_the_api_is_405(client) -> None:
    response = client.get("/api/items", headers=AUTH)
    assert response.status_code == 405 and b"Traceback" not in response.data
