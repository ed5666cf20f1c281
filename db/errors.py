"""Errors the query functions raise for bad requests (as opposed to bad rows, which are reported)."""

from __future__ import annotations


class DatabaseInputError(ValueError):
    """A request the database cannot honour; the message says what and why."""


class UnknownUserError(DatabaseInputError):
    """No (active) user with the given id or name."""


class UnknownVesselError(DatabaseInputError):
    """No stack with the given id or filename."""


class ClaimConflictError(DatabaseInputError):
    """The stack is claimed by someone else."""
