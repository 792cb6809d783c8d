"""A thin WSGI layer in front of Flask: GET/HEAD of the site's resources (feeds, pages, lists)
and of feeds with parameters (searches, filters) answered straight from the publish cache
(Flask's per-request machinery costs several times the whole cached answer); everything else,
a bad feed parameter included, goes on to Flask."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus

from .errors import QueryError
from .headers import respond
from .publish import Published, Publisher
from .site import INDEX

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
STATUS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class FastPath:
    """Wraps Flask's `wsgi_app`."""

    def __init__(self, app: WSGIApp, publisher: Publisher, max_age: int) -> None:
        self.app = app
        self.publisher = publisher
        self.max_age = max_age

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            published = self._published(path[1:] or INDEX, environ.get("QUERY_STRING", ""))
            if published is not None:
                answer = respond(environ, published, self.max_age)
                start_response(STATUS[answer.status], answer.headers)
                return [answer.body]
        return self.app(environ, start_response)

    def _published(self, path: str, query_string: str) -> Published | None:
        if not query_string:
            return self.publisher.get(path)
        if not self.publisher.site.is_feed(path):
            return None
        try:
            return self.publisher.feed_query(path, query_string)
        except QueryError:
            return None  # Flask answers it: 400 with the reason
