"""The error for a CSV file that cannot be read as a whole."""

from __future__ import annotations

from crm_core.errors import DomainError


class CsvError(DomainError):
    """The file as a whole cannot be read: empty, not text, no name column, broken quoting."""
