"""URLs as people see them: in pages, API answers, audit entries and `hub doctor`'s lines, a
user and password written into a URL (``https://user:secret@host/``) never appear."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
