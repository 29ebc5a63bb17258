"""Errors raised by services and selectors, mapped to HTTP by the API and pages.

Services never return half-done work: they raise one of these inside their
transaction, so nothing is written.
"""

from __future__ import annotations

from django.http import Http404


class ServiceError(Exception):
    """Base of all expected, user-facing service failures."""


class ValidationFailed(ServiceError):
    """Bad input. `errors` maps a field name (or "row 12: column") to messages."""

    def __init__(self, errors: dict[str, list[str] | str]):
        self.errors = {k: ([v] if isinstance(v, str) else list(v)) for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


class StaleVersion(ServiceError):
    """The record changed since the client read it (optimistic concurrency)."""

    def __init__(self, current_version: int):
        self.current_version = current_version
        super().__init__(f"stale version; current version is {current_version}")


class Forbidden(ServiceError):
    """The actor can see the record but may not perform this action."""


class NotFound(Http404):
    """Missing, or invisible to this user: the two are indistinguishable on purpose."""
