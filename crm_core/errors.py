"""The domain's named failures; the web layer maps each to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class NotFound(DomainError):
    """The record asked for does not exist (or was deleted)."""


class Conflict(DomainError):
    """The change would break a uniqueness rule or a concurrent edit."""


class InvalidInput(DomainError):
    """The input is well-formed but breaks a domain rule; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AuthenticationFailed(DomainError):
    """Wrong user name, password or token; deliberately does not say which."""
