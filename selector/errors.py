"""Errors of the selector package."""

from __future__ import annotations


class SelectorError(ValueError):
    """Invalid input to a selection computation (bad shapes, unknown metric)."""
