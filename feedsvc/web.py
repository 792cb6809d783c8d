"""The live service: `create_app()`, its routes, and their HTTP semantics."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .accesslog import AccessLog, LogWriter, WSGIApp
from .catalog import ALL, load_catalog
from .config import Settings
from .errors import CatalogError, FeedsvcError, QueryError, StoreError
from .fastpath import FastPath, report_store_error
from .headers import STORE_UNAVAILABLE, respond
from .ingest import changed_topics, ingest_document, open_filed_store
from .model import ID_PATTERN, NO_BASE_URL
from .publish import RECENT_CACHED, SEARCHES_CACHED, Resource, ResourceCache, query_pairs
from .render import SEARCH
from .site import HTML_TYPE, INDEX, ITEMS_PREFIX, ITEMS_SUFFIX
from .sources import API_BODY_NAME, JSON, JSONL, NEWSML, NINJS, NITF, WIRE, XML, Document
from .store import utc_now
from .store.location import location_of

MAX_ERROR_CHARS = 160

BODY_KINDS = {
    "text/plain": WIRE,
    "application/x-ndjson": JSONL,
    "application/jsonl": JSONL,
    "application/json-lines": JSONL,
    "application/vnd.iptc.g2.newsitem+xml": NEWSML,
    "application/vnd.iptc.g2.newsmessage+xml": NEWSML,
    "application/nitf+xml": NITF,
    "application/ninjs+json": NINJS,
    "application/xml": XML,  # NewsML-G2 or NITF, told by the root element
    "text/xml": XML,
    "application/json": JSON,  # one ninjs document
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The WSGI app. Settings come from the environment (`Settings.from_env`) unless
    `test_config` gives them: SETTINGS (a `Settings`), CLOCK, FASTPATH (default on),
    RECENT_CACHED (how many item pages and `?limit=` feeds the cache keeps), SEARCHES_CACHED
    (how many search feeds and pages), CATALOG (a loaded `Catalog` of `feeds_dir`, so that
    tests need not read the same topic files again for every app)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        CLOCK=utc_now, FASTPATH=True, RECENT_CACHED=RECENT_CACHED, SEARCHES_CACHED=SEARCHES_CACHED
    )
    if test_config:
        app.config.update(test_config)
    if "SETTINGS" not in app.config:
        app.config["SETTINGS"] = Settings.from_env()  # a bad value raises SettingsError, named
    settings: Settings = app.config["SETTINGS"]
    location = location_of(settings.db, Path(app.instance_path))
    catalog = app.config.get("CATALOG") or load_catalog(settings.feeds_dir, settings.base_url)
    if catalog.site.base_url is None:  # `feedsvc serve` gives the address it serves
        raise CatalogError(NO_BASE_URL, str(settings.feeds_dir / "site.toml"))
    # Fails on a place that holds no store (create one with `feedsvc init`); re-files once here
    # rather than in every worker thread.
    open_filed_store(location, catalog, app.config["CLOCK"]).close()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body  # 413 before the body is read
    app.extensions["feedsvc"] = ResourceCache(
        location,
        catalog,
        app.config["CLOCK"],
        app.config["RECENT_CACHED"],
        settings.recheck_ms / 1000,
        app.config["SEARCHES_CACHED"],
    )
    app.config["SETTINGS"] = settings
    _routes(app)
    log = LogWriter() if settings.access_log else None
    if log is not None:
        app.extensions["feedsvc.log"] = log
        app.wsgi_app = AccessLog(app.wsgi_app, log)  # type: ignore[method-assign]
    if app.config["FASTPATH"]:
        app.wsgi_app = FastPath(app.wsgi_app, resource_cache(app), log)  # type: ignore[method-assign]
    return app


def serving_app() -> WSGIApp:
    """What `feedsvc serve` hands to the WSGI server: the app's WSGI callable itself, so a poll
    does not pass through `Flask.__call__` on its way to the fast path."""
    return create_app().wsgi_app


def resource_cache(app: Flask | None = None) -> ResourceCache:
    return (app or current_app).extensions["feedsvc"]


def _answer(published: Resource | None) -> Response:
    if published is None:
        abort(404)
    answer = respond(request.environ, published.http)
    response = Response(answer.body, status=answer.status)
    # After the body: Werkzeug sets Content-Length from the (empty) HEAD body, and HEAD must
    # report the GET's. Link may come more than once (hub, self).
    for name, value in answer.headers:
        if name == "Link":
            response.headers.add(name, value)
        else:
            response.headers[name] = value
    return response


def _routes(app: Flask) -> None:
    """A rule per path of the site map (so a wrong method is a 405, not a 404), one for item
    pages, and the service's own."""
    site = resource_cache(app).site
    app.add_url_rule("/", "index", partial(resource, INDEX))
    # The topics' feeds and pages as two rules that match their slugs alone (werkzeug compiles
    # each rule: one per path made every app take ~90 ms to create); the rest one rule each.
    paths = [*site.fixed_paths(), *site.live_paths()]
    feeds = [p for p in paths if _TOPIC_FEED.fullmatch(p) and site.is_feed(p)]
    pages = [p for p in paths if _TOPIC_PAGE.fullmatch(p)]
    slugs = sorted({p.split("/")[1].rsplit(".", 1)[0] for p in feeds})
    extensions = sorted({p.rsplit(".", 1)[1] for p in feeds})
    if len(feeds) != len(slugs) * len(extensions):  # not every topic in every format
        feeds = []
    elif feeds:
        rule = f"/feeds/<{_any(slugs)}:slug>.<{_any(extensions)}:extension>"
        app.add_url_rule(rule, "topic_feed", topic_feed)
    if pages:
        slugs = _any(sorted({p.split("/")[1].removesuffix(".html") for p in pages}))
        app.add_url_rule(f"/topics/<{slugs}:slug>.html", "topic_page", topic_page)
    for path in paths:
        if path not in feeds and path not in pages:
            view = partial(feed if site.is_feed(path) else resource, path)
            app.add_url_rule(f"/{path}", path, view)
    app.add_url_rule(f"/{ITEMS_PREFIX}<item_id>{ITEMS_SUFFIX}", "item", item)
    app.add_url_rule("/feeds/<slug>/archive/<page>.<extension>", "archive", archive)
    app.add_url_rule("/sitemaps/<name>.xml", "sitemap_part", sitemap_part)
    if site.byline_kinds:  # author and source feeds (site.toml turns them on)
        kinds = f"any({', '.join(site.byline_kinds)})"
        for rule in ("/<kind>/<slug>.html", "/feeds/<kind>/<slug>.<extension>"):
            app.add_url_rule(rule.replace("<kind>", f"<{kinds}:kind>"), rule, by_path)
        rule = f"/feeds/<{kinds}:kind>/<slug>/archive/<page>.<extension>"
        app.add_url_rule(rule, "byline_archive", by_path)
    app.add_url_rule(f"/{SEARCH}", "search", search)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/api/items", "api_items", api_items, methods=["POST"])
    app.add_url_rule("/api/items/<item_id>", "api_item", api_item, methods=["DELETE"])
    app.add_url_rule(
        "/api/items/<item_id>/topics", "api_item_topics", api_item_topics, methods=["PUT"]
    )
    app.register_error_handler(HTTPException, _plain_error)
    app.register_error_handler(StoreError, _store_unavailable)


_TOPIC_FEED = re.compile(r"feeds/[a-z0-9-]+\.[a-z]+")
_TOPIC_PAGE = re.compile(r"topics/[a-z0-9-]+\.html")


def _any(words: list[str]) -> str:
    """werkzeug's `any` converter matching exactly `words`."""
    return f"any({', '.join(words)})"


def topic_feed(slug: str, extension: str) -> Response:
    return feed(f"feeds/{slug}.{extension}")


def topic_page(slug: str) -> Response:
    return resource(f"topics/{slug}.html")


def resource(path: str) -> Response:
    return _answer(resource_cache().get(path))


def by_path(**_: str) -> Response:
    """A resource its path names whole (an author's or a source's feed, page, archive)."""
    path = request.path[1:]
    return feed(path) if resource_cache().site.is_feed(path) else resource(path)


def archive(slug: str, page: str, extension: str) -> Response:
    return _answer(resource_cache().get(f"feeds/{slug}/archive/{page}.{extension}"))


def sitemap_part(name: str) -> Response:
    return _answer(resource_cache().get(f"sitemaps/{name}.xml"))


def item(item_id: str) -> Response:
    return _answer(resource_cache().get(f"{ITEMS_PREFIX}{item_id}{ITEMS_SUFFIX}"))


def feed(path: str) -> Response:
    query_string = request.environ.get("QUERY_STRING", "")
    if not query_string:
        return _answer(resource_cache().get(path))
    try:
        published = resource_cache().feed_query(path, query_string)
    except QueryError as error:
        abort(400, str(error))
    return _answer(published)


def search() -> Response:
    query_string = request.environ.get("QUERY_STRING", "")
    try:
        return _answer(resource_cache().search_page(query_string))
    except QueryError as error:
        return _search_error(query_string, error)


def _search_error(query_string: str, error: QueryError) -> Response:
    """A search that cannot be run: the form again, holding what was sent, and why (400)."""
    try:
        given = dict(query_pairs(query_string))
    except QueryError:
        given = {}
    catalog = resource_cache().catalog
    topic = catalog.topic(given.get("topic", ALL)) or catalog.all_topic
    body = resource_cache().site.pages.search(topic, text=given.get("q", ""), error=str(error))
    return Response(body, 400, {"Cache-Control": "no-store"}, content_type=HTML_TYPE)


def healthz() -> Response:
    try:
        items, generation = resource_cache().health()
    except StoreError as error:
        return _json({"status": "unavailable", "error": str(error)}, 503)
    status = {"status": "ok", "items": items, "generation": generation}
    return _json({**status, "renders": resource_cache().renders}, 200)


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
        abort(415, f"send one document as one of: {', '.join(BODY_KINDS)}")
    document = Document(API_BODY_NAME, _body(settings.max_body), kind)
    store = resource_cache().store()
    before = store.generation()
    try:
        counts = ingest_document(store, resource_cache().catalog, document, who="api")
    except StoreError:
        raise  # the store's fault, not the document's: 503 (`_store_unavailable`)
    except FeedsvcError as error:
        abort(400, str(error))
    resource_cache().forget_generation()
    if counts.new or counts.updated or counts.canceled:
        resource_cache().announce(changed_topics(store, before))
    answer = {"new": counts.new, "updated": counts.updated, "unchanged": counts.unchanged}
    answer |= {"held": counts.held, "killed": counts.killed}
    # The newsroom formats' outcomes, only when they happened (other answers stay as they were).
    answer |= {name: n for name, n in (("canceled", counts.canceled), ("stale", counts.stale)) if n}
    return _json(answer, 200)


def _item_route(item_id: str) -> Settings:
    """The checks of an API route about one item: the API is on (else it is not there), the
    token is right, the id could be an item's (else no such item)."""
    settings: Settings = current_app.config["SETTINGS"]
    if not settings.token:
        abort(404)
    _authorize(settings.token)
    if len(item_id) > 128 or not ID_PATTERN.fullmatch(item_id):
        abort(404)
    return settings


def api_item(item_id: str) -> Response:
    """DELETE: withdraw an item (the kill of `feedsvc kill`), with `?reason=` if given."""
    _item_route(item_id)
    reason = request.args.get("reason") or None
    if reason is not None and (len(reason) > 500 or not reason.isprintable()):
        abort(400, "reason must be printable text of at most 500 characters")
    store = resource_cache().store()
    item = store.item(item_id)
    try:
        killed = store.kill([item_id], reason, "api")
    except StoreError:
        abort(404)
    resource_cache().forget_generation()
    if item is not None and killed:
        resource_cache().announce(item.topics)
    return _json({"killed": killed, "already": [] if killed else [item_id]}, 200)


def api_item_topics(item_id: str) -> Response:
    """PUT {"topics": ["a", "b"]}: pin an item's topics (`feedsvc file ID --topics a,b`)."""
    settings = _item_route(item_id)
    try:
        document = json.loads(_body(settings.max_body))
    except (ValueError, UnicodeDecodeError):
        abort(400, 'send JSON: {"topics": ["slug", ...]}')
    topics = document.get("topics") if isinstance(document, dict) else None
    if not isinstance(topics, list) or not all(isinstance(slug, str) for slug in topics):
        abort(400, 'send JSON: {"topics": ["slug", ...]}')
    catalog = resource_cache().catalog
    try:
        slugs = catalog.check_topics(topics)
    except FeedsvcError as error:
        abort(400, str(error))
    store = resource_cache().store()
    try:
        old = store.pin(item_id, slugs, "api")
    except StoreError:
        if store.item(item_id) is None:
            abort(404)
        raise  # the store's fault: 503 (`_store_unavailable`)
    resource_cache().forget_generation()
    resource_cache().announce({*old, *slugs})
    return _json({"id": item_id, "topics": list(slugs), "was": list(old)}, 200)


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


def _store_unavailable(error: StoreError) -> Response:
    """Any route whose store cannot be read or written: the fast path's plain 503, byte for
    byte (healthz says it in its own JSON)."""
    report_store_error(request.environ, error)
    answer = STORE_UNAVAILABLE
    response = Response(answer.body, status=answer.status)
    for name, value in answer.headers:
        response.headers[name] = value
    return response
