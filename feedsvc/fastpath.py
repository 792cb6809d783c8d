"""A thin WSGI layer in front of Flask: GET/HEAD of the site's resources (feeds, pages, lists)
answered straight from the publish cache, and of feeds with parameters (searches, filters)
(Flask's per-request machinery costs several times the whole cached answer); everything else,
a bad feed parameter included, goes on to Flask. It logs its own answers (one wrapper less per
poll); Flask's are logged by `AccessLog`. A store that cannot be read gets the plain 503 Flask's
handler gives (`headers.STORE_UNAVAILABLE`), and one line on the server's error stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from .accesslog import LogWriter, WSGIApp
from .errors import QueryError, StoreError
from .headers import STORE_UNAVAILABLE, Answer, respond
from .publish import Resource, ResourceCache
from .site import INDEX

GET_HEAD = frozenset(("GET", "HEAD"))


class FastPath:
    """Wraps Flask's `wsgi_app`."""

    def __init__(
        self, app: WSGIApp, resources: ResourceCache, log: LogWriter | None = None
    ) -> None:
        self.app = app
        self.resources = resources
        self.get = resources.get  # bound once: the hot path's one call
        self.log = log.log if log is not None else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/") and environ.get("REQUEST_METHOD") in GET_HEAD:
            query_string = environ.get("QUERY_STRING")
            try:
                published = (
                    self.get(path[1:] or INDEX)
                    if not query_string
                    else self._query(path[1:], query_string)
                )
            except StoreError as error:
                report_store_error(environ, error)
                answer = STORE_UNAVAILABLE
                if environ["REQUEST_METHOD"] == "HEAD":
                    answer = replace(answer, body=b"")
                return self._send(environ, start_response, answer)
            if published is not None:
                return self._send(environ, start_response, respond(environ, published.http))
        return self.app(environ, start_response)

    def _send(self, environ: dict, start_response: Callable, answer: Answer) -> Iterable[bytes]:
        start_response(answer.status, answer.headers.copy())
        if self.log is not None:
            self.log(environ, answer.status[:3], answer.length)
        return [answer.body]

    def _query(self, path: str, query_string: str) -> Resource | None:
        """A feed with parameters (a search, filters, a limit), or None for Flask to answer."""
        if not self.resources.site.is_feed(path):
            return None
        try:
            return self.resources.feed_query(path, query_string)
        except QueryError:
            return None  # Flask answers it: 400 with the reason


def report_store_error(environ: dict, error: StoreError) -> None:
    """One line for the operator on the server's error stream (PEP 3333 `wsgi.errors`)."""
    stream = environ.get("wsgi.errors")
    if stream is not None:
        stream.write(f"feedsvc: store unavailable: {error}\n")
