"""Modules for tensor operations that would otherwise be invisible to forward hooks.

Layer descriptors come from forward hooks on modules; an operation written inline in a
``forward`` (``x + y``) would be silently free. Networks use these modules instead.
"""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """Element-wise sum of two tensors of the same shape (a residual connection)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Return ``a + b``."""
        return a + b


class Mul(nn.Module):
    """Element-wise product, broadcasting ``b`` (e.g. squeeze-and-excitation channel gates)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Return ``a * b``; the output has ``a``'s shape."""
        return a * b
