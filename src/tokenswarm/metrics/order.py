"""Order parameters: the Kuramoto order parameter and circle angles."""

from __future__ import annotations

import math

import torch

from tokenswarm import checks

__all__ = ["kuramoto_order", "angles"]


def kuramoto_order(x: torch.Tensor) -> torch.Tensor:
    """Norm of the token mean, ``r = |(1/n) sum_i x_i|``.

    On the circle (``d = 2``, ``x_j = (cos theta_j, sin theta_j)``) this is the Kuramoto order
    parameter ``|(1/n) sum_j e^{i theta_j}|``. On the sphere ``r`` is 1 exactly at a single
    cluster and 0 for balanced configurations (antipodal pairs, regular simplices).

    Args:
        x: tokens, shape ``(*batch, n, d)``.

    Returns:
        shape ``(*batch,)``, dtype of ``x``.
    """
    checks.tokens(x)
    return torch.linalg.vector_norm(x.mean(dim=-2), dim=-1)


def angles(x: torch.Tensor) -> torch.Tensor:
    """Angles ``theta_i`` of circle tokens ``x_i = (cos theta_i, sin theta_i)``, in ``(-pi, pi]``.

    Args:
        x: tokens on the circle, shape ``(*batch, n, 2)``.

    Returns:
        shape ``(*batch, n)``, dtype of ``x``.
    """
    checks.tokens(x)
    if x.shape[-1] != 2:
        raise ValueError(f"angles needs circle tokens (d = 2), got shape {tuple(x.shape)}")
    theta = torch.atan2(x[..., 1], x[..., 0])
    # atan2(-0.0, negative) returns -pi; the half-open convention maps it to +pi.
    return torch.where(theta == -math.pi, torch.full_like(theta, math.pi), theta)
