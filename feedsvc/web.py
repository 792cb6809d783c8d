"""The live service: `create_app()`, its routes, and their HTTP semantics."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .accesslog import AccessLog
from .catalog import load_catalog
from .config import Settings
from .errors import FeedsvcError, StoreError
from .fastpath import FastPath
from .headers import respond
from .ingest import ingest_document, open_store
from .jsonlines import ID_PATTERN
from .publish import Published, Publisher, publish
from .sources import API_BODY_NAME, Document
from .store import utc_now

MAX_ERROR_CHARS = 160

BODY_KINDS = {
    "text/plain": "wire",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The WSGI app. Settings come from the environment (`Settings.from_env`) unless
    `test_config` gives them: SETTINGS (a `Settings`), CLOCK, FASTPATH (default on)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(CLOCK=utc_now, FASTPATH=True)
    if test_config:
        app.config.update(test_config)
    if "SETTINGS" not in app.config:
        app.config["SETTINGS"] = Settings.from_env()  # a bad value raises SettingsError, named
    settings: Settings = app.config["SETTINGS"]
    if settings.db_path is None:
        settings = replace(settings, db_path=Path(app.instance_path) / "feedsvc.sqlite3")
    catalog = load_catalog(settings.feeds_dir, settings.base_url)
    open_store(settings.store_path(), catalog, app.config["CLOCK"]).close()  # create, re-file
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body  # 413 before the body is read
    app.extensions["feedsvc"] = Publisher(settings.store_path(), catalog, app.config["CLOCK"])
    app.config["SETTINGS"] = settings
    _routes(app)
    if app.config["FASTPATH"]:
        app.wsgi_app = FastPath(app.wsgi_app, publisher(app), catalog.site.max_age)  # type: ignore[method-assign]
    if settings.access_log:
        app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    return app


def publisher(app: Flask | None = None) -> Publisher:
    return (app or current_app).extensions["feedsvc"]


def _answer(published: Published | None) -> Response:
    if published is None:
        abort(404)
    answer = respond(request.environ, published, publisher().catalog.site.max_age)
    response = Response(answer.body, status=answer.status)
    # After the body: Werkzeug sets Content-Length from the (empty) HEAD body, and HEAD must
    # report the GET's.
    response.headers.update(answer.headers)
    return response


def _routes(app: Flask) -> None:
    app.add_url_rule("/", "index", lambda: _answer(publisher().index()))
    app.add_url_rule("/index.html", "index_html", lambda: _answer(publisher().index()))
    app.add_url_rule("/feeds.opml", "opml", lambda: _answer(publisher().opml()))
    app.add_url_rule("/feeds/<slug>.<extension>", "feed", feed)
    app.add_url_rule("/items/<item_id>.html", "item", item)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/api/items", "api_items", api_items, methods=["POST"])
    app.register_error_handler(HTTPException, _plain_error)


def feed(slug: str, extension: str) -> Response:
    limit = request.args.get("limit")
    entries = publisher().catalog.site.entries_per_feed
    if limit is not None and not (
        limit.isascii() and limit.isdigit() and 1 <= int(limit) <= entries
    ):
        abort(400, f"limit must be a whole number from 1 to {entries}")
    return _answer(publisher().feed(slug, extension, int(limit) if limit else None))


def item(item_id: str) -> Response:
    if len(item_id) > 128 or not ID_PATTERN.fullmatch(item_id):
        abort(404)
    stored = publisher().store().item(item_id)
    if stored is None:
        abort(404)
    body = publisher().pages.item(stored)
    generation = publisher().store().generation()
    return _answer(publish(body, "text/html; charset=utf-8", stored.updated, generation))


def healthz() -> Response:
    try:
        items, generation = publisher().health()
    except StoreError as error:
        return _json({"status": "unavailable", "error": str(error)}, 503)
    status = {"status": "ok", "items": items, "generation": generation}
    return _json({**status, "renders": publisher().renders}, 200)


def _json(document: dict, status: int) -> Response:
    response = jsonify(document)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def api_items() -> Response:
    settings: Settings = current_app.config["SETTINGS"]
    if not settings.token:
        abort(404)  # the API is off until a token is configured
    _authorize(settings.token)
    kind = BODY_KINDS.get(request.mimetype)
    if kind is None:
        abort(415, "send wire text as text/plain or JSON Lines as application/x-ndjson")
    document = Document(API_BODY_NAME, _body(settings.max_body), kind)
    try:
        counts = ingest_document(publisher().store(), publisher().catalog, document)
    except FeedsvcError as error:
        abort(400, str(error))
    return _json({"new": counts.new, "updated": counts.updated, "unchanged": counts.unchanged}, 200)


def _body(limit: int) -> bytes:
    """The request body, or 413. With a Content-Length over the limit Werkzeug refuses before
    reading; a chunked body has none, and Werkzeug would quietly cut it at the limit, so read one
    byte more and refuse rather than store a truncated document."""
    if request.content_length is None:
        request.max_content_length = limit + 1
    data = request.get_data(cache=False)
    if len(data) > limit:
        abort(413)
    return data


def _authorize(token: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        response = Response(
            "401 Unauthorized: a valid bearer token is required\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="feedsvc"'},
            mimetype="text/plain",
        )
        abort(response)


def _plain_error(error: HTTPException) -> Response:
    """Every error is a short plain-text body, never a page of HTML or a traceback."""
    response = error.get_response()
    message = error.description if error.code in (400, 415) else error.name
    if len(message) > MAX_ERROR_CHARS:  # an error is one short line, whatever it quotes
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    response.set_data(
        f"{error.code} {error.name}: {message}\n"
        if message != error.name
        else f"{error.code} {error.name}\n"
    )
    response.mimetype = "text/plain"
    return response
