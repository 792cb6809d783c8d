"""A thin WSGI layer in front of Flask: GET/HEAD of the site's resources (feeds, pages, lists)
answered straight from the publish cache (Flask's per-request machinery costs several times the
whole cached answer); everything else, and any request with a query string, goes on to Flask."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus

from .headers import respond
from .publish import Publisher
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
        if (
            path.startswith("/")
            and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and not environ.get("QUERY_STRING")
        ):
            published = self.publisher.get(path[1:] or INDEX)
            if published is not None:
                answer = respond(environ, published, self.max_age)
                start_response(STATUS[answer.status], answer.headers)
                return [answer.body]
        return self.app(environ, start_response)
