"""Boundary validation shared by the metric functions (internal)."""

from __future__ import annotations

import torch

__all__ = ["check_tokens", "check_delta"]


def check_tokens(x: torch.Tensor, *, min_tokens: int = 1, name: str = "x") -> None:
    """Raise if ``x`` is not a floating tensor of shape ``(*batch, n, d)`` with ``n >= min_tokens``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (*batch, n, d), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (*batch, n, d) with at least 2 dims, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if x.shape[-2] < min_tokens:
        raise ValueError(f"{name} must hold at least {min_tokens} tokens (shape[-2]), got shape {tuple(x.shape)}")


def check_delta(delta: float) -> None:
    """Raise unless ``0 < delta <= 2`` (thresholds ``1 - delta`` must lie in ``[-1, 1)``)."""
    if not (0.0 < float(delta) <= 2.0):
        raise ValueError(f"delta must satisfy 0 < delta <= 2, got {delta!r}")
