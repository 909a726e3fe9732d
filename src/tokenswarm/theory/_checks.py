"""Validation shared by the closed forms of :mod:`tokenswarm.theory`."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Model = Literal["sa", "usa"]

FloatOrArray = float | NDArray[np.float64]



# --------------------------------------------------------------------------- validation


def _model(model: str) -> str:
    name = str(model).lower()
    if name not in ("sa", "usa"):
        raise ValueError(f"model must be 'sa' or 'usa' (case insensitive), got {model!r}")
    return name


def _tokens(n: int, minimum: int = 2) -> int:
    if int(n) != n or n < minimum:
        raise ValueError(f"n must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _nonnegative_beta(beta: float) -> float:
    beta = float(beta)
    if not (beta >= 0.0 and math.isfinite(beta)):
        raise ValueError(f"beta must be finite and >= 0, got {beta!r}")
    return beta


def _positive_beta_array(beta: ArrayLike) -> NDArray[np.float64]:
    values = np.asarray(beta, dtype=np.float64)
    if not np.all(values > 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"beta must be finite and > 0 (energies carry a factor 1/(2 beta)), got {beta!r}")
    return values


def _scalar_or_array(values: NDArray[np.float64]) -> FloatOrArray:
    return float(values) if values.ndim == 0 else values

def _check_dimension(d: int, minimum: int) -> int:
    if int(d) != d or d < minimum:
        raise ValueError(f"d must be an integer >= {minimum}, got {d!r}")
    return int(d)
