"""Settings from one place: the environment and the command line, never read elsewhere."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import StoreError

DEFAULT_MAX_BODY = 5 * 1024 * 1024
POSTGRES_SCHEMES = ("postgresql", "postgres")


def default_instance_path() -> Path:
    """Flask's instance folder for this package (the default home of the store)."""
    from flask import Flask  # deferred: importing the CLI should not build an app

    return Path(Flask("feedsvc").instance_path)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a store is: an engine and its address."""

    engine: str  # "sqlite" or "postgresql"
    address: str  # a file path, or the PostgreSQL connection URL
    default: bool = False  # the instance folder's store: its directory may be created

    def __str__(self) -> str:
        return self.address if self.engine == "sqlite" else _without_password(self.address)


def parse_location(value: str | Path, default: bool = False) -> Location:
    """A `--db` / FEEDSVC_DB value: a path, `sqlite:///path` or `postgresql://...`."""
    text = str(value)
    scheme, sep, rest = text.partition("://")
    if not sep or len(scheme) < 3 or "/" in scheme:  # a plain path (C:\\ is not a scheme)
        return Location("sqlite", text, default)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise StoreError(
                "write an SQLite URL as sqlite:///relative/path or sqlite:////abs", text
            )
        return Location("sqlite", rest[1:], default)
    if scheme in POSTGRES_SCHEMES:
        return Location("postgresql", text, default)
    raise StoreError(f"unknown store scheme {scheme!r} (use a path, sqlite:/// or postgresql://)")


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the store and the catalogue are, and the few knobs of the live service."""

    db: str | None = None  # a path or URL; None: `feedsvc.sqlite3` in Flask's instance folder
    feeds_dir: Path = Path("feeds")
    base_url: str | None = None  # overrides feeds/site.toml
    token: str | None = None  # enables POST /api/items
    max_body: int = DEFAULT_MAX_BODY
    access_log: bool = False  # one line per request on stdout (`feedsvc serve` turns it on)
    # How long a worker thread trusts the store generation it read (`feedsvc serve`: 5 ms):
    # 0 asks the store at every request.
    recheck_ms: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls()
        if env.get("FEEDSVC_DB"):
            settings = replace(settings, db=env["FEEDSVC_DB"])
        if env.get("FEEDSVC_FEEDS"):
            settings = replace(settings, feeds_dir=Path(env["FEEDSVC_FEEDS"]))
        if env.get("FEEDSVC_MAX_BODY", "").isdigit():
            settings = replace(settings, max_body=int(env["FEEDSVC_MAX_BODY"]))
        if env.get("FEEDSVC_RECHECK_MS", "").isdigit():
            settings = replace(settings, recheck_ms=int(env["FEEDSVC_RECHECK_MS"]))
        return replace(
            settings,
            base_url=env.get("FEEDSVC_BASE_URL") or None,
            token=env.get("FEEDSVC_TOKEN") or None,
            access_log=env.get("FEEDSVC_ACCESS_LOG") == "1",
        )

    def store_location(self, instance_path: Path | None = None) -> Location:
        """Where the store is: `db`, else `feedsvc.sqlite3` in the instance folder (the one
        place whose directory feedsvc creates)."""
        if self.db:
            return parse_location(self.db)
        folder = instance_path or default_instance_path()
        return parse_location(folder / "feedsvc.sqlite3", default=True)
