"""User errors: the one exception family the CLI and the web layer turn into messages."""

from __future__ import annotations


class FeedsvcError(Exception):
    """A problem with the user's input or setup, reported as one line.

    `where` is a file name (and `line` a 1-based line number) when there is one.
    """

    def __init__(self, message: str, where: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.line = line

    def __reduce__(self) -> tuple:  # keep `where` and `line` across processes (ingest workers)
        return (type(self), (self.message, self.where, self.line))

    def __str__(self) -> str:
        if self.where is None:
            return self.message
        if self.line is None:
            return f"{self.where}: {self.message}"
        return f"{self.where}:{self.line}: {self.message}"


class DocumentError(FeedsvcError):
    """A document (wire text, JSON Lines) that cannot be read; nothing of it is kept."""


class CatalogError(FeedsvcError):
    """A bad `feeds/` catalogue: TOML syntax, unknown key, bad slug or rule."""


class SettingsError(FeedsvcError):
    """A bad setting in the environment (`FEEDSVC_MAX_BODY=5M`): named with its value."""


class StoreError(FeedsvcError):
    """A store that cannot be opened or used (newer schema, not a database)."""


class NotFound(FeedsvcError):
    """An unknown topic or item."""


class QueryError(FeedsvcError):
    """A search query or feed parameter that cannot be used (too long, nothing to find)."""
