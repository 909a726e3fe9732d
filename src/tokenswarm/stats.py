"""Small statistical summaries shared by experiments: mean ± standard error, log-log slopes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["mean_se", "loglog_slope"]


def mean_se(values: Any) -> tuple[float, float]:
    """Mean and standard error ``std(ddof=1)/sqrt(N)`` of all entries (NaN s.e. for ``N < 2``).

    Accepts numpy arrays, sequences and torch tensors (moved to the CPU).
    """
    array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64)
    if array.size < 2:
        return float(array.mean()), float("nan")
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def loglog_slope(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares slope of ``log y`` against ``log x`` and its standard error from the
    residuals (NaN with fewer than three points)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if lx.shape != ly.shape or lx.size < 2:
        raise ValueError(f"need matching x and y with at least 2 points, got {lx.shape} and {ly.shape}")
    slope, intercept = np.polyfit(lx, ly, 1)
    if lx.size < 3:
        return float(slope), float("nan")
    residual = ly - (slope * lx + intercept)
    se = math.sqrt(float((residual**2).sum()) / (lx.size - 2) / float(((lx - lx.mean()) ** 2).sum()))
    return float(slope), se
