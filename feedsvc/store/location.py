"""Where a store is: `--db` / FEEDSVC_DB read into an engine and an address."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError

POSTGRES_SCHEMES = ("postgresql", "postgres")
STORE_FILE = "feedsvc.sqlite3"  # the default store's name, in the instance folder


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


def location_of(db: str | None, instance_path: Path) -> Location:
    """Where the store is: `db` (the settings' `--db` / FEEDSVC_DB), else `feedsvc.sqlite3` in
    the instance folder (the one place whose directory feedsvc creates)."""
    if db:
        return parse_location(db)
    return parse_location(instance_path / STORE_FILE, default=True)


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
