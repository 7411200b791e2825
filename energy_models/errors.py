"""Errors of the energy-model package (kept apart so it does not depend on adaptive_cnn)."""

from __future__ import annotations


class EnergyModelError(Exception):
    """Base class for energy-model errors a user can act on."""


class UnsupportedLayerError(EnergyModelError):
    """A network contains a layer type the descriptors do not know: never silently free."""
