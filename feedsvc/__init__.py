"""feedsvc: publish news documents as per-topic RSS, Atom and JSON feeds."""

__version__ = "0.1.0"
