"""A thin WSGI layer in front of Flask: GET/HEAD of the site's resources (feeds, pages, lists)
answered straight from the publish cache, and of feeds with parameters (searches, filters)
(Flask's per-request machinery costs several times the whole cached answer); everything else,
a bad feed parameter included, goes on to Flask. It logs its own answers (one wrapper less per
poll); Flask's are logged by `AccessLog`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .accesslog import LogWriter, WSGIApp
from .errors import QueryError
from .headers import respond
from .publish import Published, Publisher
from .site import INDEX

GET_HEAD = frozenset(("GET", "HEAD"))


class FastPath:
    """Wraps Flask's `wsgi_app`."""

    def __init__(self, app: WSGIApp, publisher: Publisher, log: LogWriter | None = None) -> None:
        self.app = app
        self.publisher = publisher
        self.get = publisher.get  # bound once: the hot path's one call
        self.log = log.log if log is not None else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/") and environ.get("REQUEST_METHOD") in GET_HEAD:
            query_string = environ.get("QUERY_STRING")
            published = (
                self.get(path[1:] or INDEX)
                if not query_string
                else self._query(path[1:], query_string)
            )
            if published is not None:
                answer = respond(environ, published.http)
                start_response(answer.status, answer.headers.copy())
                if self.log is not None:
                    self.log(environ, answer.status[:3], answer.length)
                return [answer.body]
        return self.app(environ, start_response)

    def _query(self, path: str, query_string: str) -> Published | None:
        """A feed with parameters (a search, filters, a limit), or None for Flask to answer."""
        if not self.publisher.site.is_feed(path):
            return None
        try:
            return self.publisher.feed_query(path, query_string)
        except QueryError:
            return None  # Flask answers it: 400 with the reason
