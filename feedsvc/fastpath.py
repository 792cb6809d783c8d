"""A thin WSGI layer in front of Flask: GET/HEAD of the site's resources (feeds, pages, lists)
answered straight from the publish cache (Flask's per-request machinery costs several times the
whole cached answer); everything else, and any request with a query string, goes on to Flask.
It logs its own answers (one wrapper less per poll); Flask's are logged by `AccessLog`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .accesslog import LogWriter
from .headers import respond
from .publish import Publisher
from .site import INDEX

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
GET_HEAD = frozenset(("GET", "HEAD"))


class FastPath:
    """Wraps Flask's `wsgi_app`."""

    def __init__(self, app: WSGIApp, publisher: Publisher, log: LogWriter | None = None) -> None:
        self.app = app
        self.get = publisher.get
        self.log = log.log if log is not None else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") in GET_HEAD
            and not environ.get("QUERY_STRING")
            and path.startswith("/")
        ):
            published = self.get(path[1:] or INDEX)
            if published is not None:
                answer = respond(environ, published.http)
                start_response(answer.status, answer.headers.copy())
                if self.log is not None:
                    self.log(environ, answer.status[:3], answer.length)
                return [answer.body]
        return self.app(environ, start_response)
