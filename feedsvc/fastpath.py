"""A thin WSGI layer in front of Flask: feed GET/HEAD answered straight from the publish cache
(Flask's per-request machinery costs several times the whole cached answer); everything else,
and any feed request with a query string, goes on to Flask."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus

from .headers import respond
from .publish import Publisher

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
STATUS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
PREFIX = "/feeds/"


class FastPath:
    """Wraps Flask's `wsgi_app`."""

    def __init__(self, app: WSGIApp, publisher: Publisher, max_age: int) -> None:
        self.app = app
        self.publisher = publisher
        self.max_age = max_age

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (
            path.startswith(PREFIX)
            and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and not environ.get("QUERY_STRING")
        ):
            slug, dot, extension = path[len(PREFIX) :].rpartition(".")
            published = self.publisher.feed(slug, extension) if dot else None
            if published is not None:
                answer = respond(environ, published, self.max_age)
                start_response(STATUS[answer.status], answer.headers)
                return [answer.body]
        return self.app(environ, start_response)
