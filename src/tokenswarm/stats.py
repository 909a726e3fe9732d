"""Small statistical summaries shared by experiments: mean ± standard error, log-log slopes,
Student-t intervals and a three-way (pass / fail / inconclusive) equivalence decision."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["mean_se", "loglog_slope", "loglog_slope_of_means", "t_interval", "slope_over_draws", "Decision", "equivalence"]


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


def loglog_slope_of_means(x: Any, draws: Any) -> tuple[float, float, int]:
    """Log-log slope of the mean of independent draws against ``x``, with a propagated standard error.

    ``draws`` has shape ``(len(x), runs)``: independent draws at each ``x``; the means and their
    standard errors go to :func:`loglog_slope_from_means`. Returns ``(slope, se, dof)``.
    """
    values = np.asarray(draws, float)
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"need draws of shape (len(x), runs >= 2), got {values.shape}")
    return loglog_slope_from_means(x, values.mean(1), values.std(1, ddof=1) / math.sqrt(values.shape[1]), values.shape[1])


def loglog_slope_from_means(x: Any, means: Any, standard_errors: Any, runs: int) -> tuple[float, float, int]:
    """Least-squares slope of ``log means`` against ``log x``, with the standard error that the
    means' own standard errors give it.

    The standard error propagates each point's (delta method: ``se(log m) = se(m)/m``) through the
    linear fit, so it measures the Monte Carlo uncertainty of the points rather than their misfit
    to a line. ``dof`` pools the points' standard errors, ``len(x) (runs - 1)`` (each estimated
    from ``runs`` independent draws with similar relative scatter). Returns ``(slope, se, dof)``.
    """
    lx = np.log(np.asarray(x, float))
    m, se = np.asarray(means, float), np.asarray(standard_errors, float)
    if lx.size < 2 or m.shape != lx.shape or se.shape != lx.shape or runs < 2:
        raise ValueError(f"need >= 2 points with one mean and one standard error each, and runs >= 2; "
                         f"got x {lx.shape}, means {m.shape}, standard errors {se.shape}, runs {runs}")
    weights = (lx - lx.mean()) / float(((lx - lx.mean()) ** 2).sum())
    slope = float(weights @ np.log(m))
    return slope, float(math.sqrt(float((weights**2 * (se / m) ** 2).sum()))), int(lx.size * (runs - 1))


def t_interval(estimate: float, se: float, dof: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t interval ``estimate ± t_{dof, (1+level)/2} se``.

    With few draws the standard error is itself uncertain; treating it as Gaussian (``± 1.96 se``)
    would overstate the evidence, so the quantile comes from Student's t with ``dof`` degrees
    of freedom (``N - 1`` for a mean of ``N`` draws, ``N - 2`` for a fitted slope of ``N`` points).
    """
    if dof < 1 or not math.isfinite(se):
        return (-math.inf, math.inf)
    half = float(_scipy_stats.t.ppf(0.5 + level / 2.0, dof)) * se
    return (estimate - half, estimate + half)


def slope_over_draws(x: Any, y: Any) -> tuple[float, float, int]:
    """Log-log slope of ``y`` against ``x`` from independent draws, with its standard error.

    ``y`` has shape ``(draws, len(x))``: one curve per independent draw. The slope is fitted per
    draw and the draws' slopes are averaged, so the standard error comes from the scatter between
    independent draws (``dof = draws - 1``) and not from the residuals of one fit, which are
    correlated along a curve. Returns ``(slope, se, dof)``.
    """
    lx = np.log(np.asarray(x, float))
    ly = np.log(np.asarray(y, float))
    if ly.ndim != 2 or ly.shape[1] != lx.size or lx.size < 2:
        raise ValueError(f"need y of shape (draws, {lx.size}) with at least 2 points, got {ly.shape}")
    slopes = np.polyfit(lx, ly.T, 1)[0]
    mean, se = mean_se(slopes)
    return mean, se, int(slopes.size - 1)


class Decision(tuple):
    """``(status, low, high)``: the three-way outcome of :func:`equivalence` and its interval."""

    __slots__ = ()

    def __new__(cls, status: str, low: float, high: float) -> Decision:
        return super().__new__(cls, (status, low, high))

    @property
    def status(self) -> str:
        return self[0]

    @property
    def passed(self) -> bool | None:
        return {"pass": True, "fail": False}.get(self[0])


def equivalence(estimate: float, se: float, dof: int, target: float, tolerance: float,
                level: float = 0.95) -> Decision:
    """Is ``estimate`` within ``tolerance`` of ``target``, given its uncertainty?

    The ``level`` Student-t interval of the estimate decides (an equivalence test, two one-sided
    tests at ``(1 - level)/2`` each):

    * ``pass``: the whole interval lies inside ``[target - tolerance, target + tolerance]``;
    * ``fail``: the whole interval lies outside it (the data reject the claim);
    * ``inconclusive``: the interval straddles an edge: too few draws to decide; more draws
      shrink the interval like ``1/sqrt(N)``.
    """
    low, high = t_interval(estimate, se, dof, level)
    band = (target - tolerance, target + tolerance)
    if not (math.isfinite(estimate) and math.isfinite(low) and math.isfinite(high)):
        return Decision("inconclusive" if math.isfinite(estimate) else "fail", low, high)
    if band[0] <= low and high <= band[1]:
        return Decision("pass", low, high)
    if high < band[0] or low > band[1]:
        return Decision("fail", low, high)
    return Decision("inconclusive", low, high)
