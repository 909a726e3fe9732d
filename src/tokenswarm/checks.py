"""Argument checks of the library functions: one function per idea, used everywhere.

Each check names the parameter, the value and what is allowed, and raises ``ValueError`` (or
``TypeError`` for a tensor of the wrong type), so that a bad argument fails at the boundary of
the public function and not as a NaN deep inside it. ``note`` adds the reason to the message
(for example ``" (a standard deviation)"``). Parsing command-line text is
:mod:`tokenswarm.params`' job; these checks see Python values.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FloatOrArray",
    "Model",
    "scalar_or_array",
    "integer",
    "number",
    "numbers",
    "tensor_numbers",
    "inner_products",
    "model",
    "choice",
    "tokens",
    "delta",
]

Model = Literal["sa", "usa"]

FloatOrArray = float | NDArray[np.float64]


def scalar_or_array(values: NDArray[np.float64]) -> FloatOrArray:
    """A 0-d array as a Python float, any other array as it is (what the closed forms return)."""
    return float(values) if values.ndim == 0 else values


def integer(name: str, value: int, minimum: int, note: str = "", *, strict: bool = False) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) ``>= minimum``.

    ``strict``: the value must already be a Python ``int`` (for fields that store it as given).
    """
    integral = isinstance(value, int) if strict else int(value) == value
    if isinstance(value, bool) or not integral or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{note}, got {value!r}")
    return int(value)


def _bound(positive: bool) -> str:
    return "> 0" if positive else ">= 0"


def numbers(name: str, value: ArrayLike, *, positive: bool = False, note: str = "") -> NDArray[np.float64]:
    """``value`` as a float64 array if every entry is finite and ``>= 0`` (``> 0`` if ``positive``)."""
    values = np.asarray(value, dtype=np.float64)
    inside = values > 0 if positive else values >= 0
    if not (np.all(inside) and np.all(np.isfinite(values))):
        raise ValueError(f"{name} must be finite and {_bound(positive)}{note}, got {value!r}")
    return values


def number(name: str, value: float, *, positive: bool = False, note: str = "") -> float:
    """``value`` as a float if it is finite and ``>= 0`` (``> 0`` if ``positive``)."""
    value = float(value)
    if not ((value > 0.0 if positive else value >= 0.0) and math.isfinite(value)):
        raise ValueError(f"{name} must be finite and {_bound(positive)}{note}, got {value!r}")
    return value


def tensor_numbers(name: str, value: torch.Tensor, *, positive: bool = False, note: str = "") -> torch.Tensor:
    """The tensor ``value`` if every entry is finite and ``>= 0`` (``> 0`` if ``positive``).

    One device synchronisation: a clear error beats a silent NaN further on.
    """
    inside = value > 0 if positive else value >= 0
    if not bool((inside & torch.isfinite(value)).all()):
        raise ValueError(f"{name} must be finite and {_bound(positive)} everywhere{note}, got {value!r}")
    return value


def inner_products(name: str, value: ArrayLike, tolerance: float = 0.0) -> NDArray[np.float64]:
    """``value`` as a float64 array in ``[-1, 1]`` (inner products of unit vectors).

    Entries up to ``tolerance`` outside (round-off of a computed inner product) are clipped to
    ``[-1, 1]``; anything further out, or not finite, is an error.
    """
    values = np.asarray(value, dtype=np.float64)
    if not (np.all(np.isfinite(values)) and np.all(np.abs(values) <= 1.0 + tolerance)):
        raise ValueError(f"{name} must lie in [-1, 1] (an inner product of unit vectors), got {value!r}")
    return np.clip(values, -1.0, 1.0) if tolerance > 0 else values


def model(value: str) -> str:
    """The attention model ``"sa"`` or ``"usa"``, case insensitive, as lower case."""
    name = str(value).lower()
    if name not in ("sa", "usa"):
        raise ValueError(f"model must be 'sa' or 'usa' (case insensitive), got {value!r}")
    return name


def choice(name: str, value, allowed) -> None:
    """Raise unless ``value`` is one of ``allowed`` (a closed set of names)."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")


def tokens(x: torch.Tensor, *, min_tokens: int = 1, name: str = "x") -> None:
    """Raise if ``x`` is not a floating tensor of shape ``(*batch, n, d)`` with ``n >= min_tokens``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (*batch, n, d), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (*batch, n, d) with at least 2 dims, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if x.shape[-2] < min_tokens:
        raise ValueError(f"{name} must hold at least {min_tokens} tokens (shape[-2]), got shape {tuple(x.shape)}")


def delta(value: float) -> None:
    """Raise unless ``0 < delta <= 2`` (thresholds ``1 - delta`` must lie in ``[-1, 1)``)."""
    if not (0.0 < float(value) <= 2.0):
        raise ValueError(f"delta must satisfy 0 < delta <= 2, got {value!r}")
