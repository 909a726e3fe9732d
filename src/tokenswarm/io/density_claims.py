"""Claims shared by the experiments that solve a density (mean-field, common-noise-pde).

Both check a finite-volume solver the same way: mass conserved to round-off, no negative cell,
and W1 between particles and the density falling like ``n^(-1/2)``. The two rules and the
negative controls of all three live here once; each experiment passes its references and its
``summary`` (which must give ``mass_error`` and ``min_density``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, between, less
from tokenswarm.io.refs import Ref

__all__ = ["add_mass_and_positivity", "leaking_mass", "undershooting_density", "drifting_density"]


def leaking_mass(data: xr.Dataset, rate: float = 1e-9) -> xr.Dataset:
    """Negative control: a scheme that leaks mass at a relative rate ``rate`` per unit time
    (a flux not in conservative form), ``M(t) = M(0) e^{-rate t}``."""
    return data.assign(mass=data.mass * np.exp(-rate * data.t))


def undershooting_density(data: xr.Dataset, depth: float = 1e-6) -> xr.Dataset:
    """Negative control: a non-monotone scheme (CFL bound broken) whose smallest cell dips ``depth`` below zero."""
    return data.assign(min_density=np.minimum(data.min_density, 0.0) - depth)


def drifting_density(data: xr.Dataset) -> xr.Dataset:
    """Negative control: a density solver that drifts from the true solution, so W1 gains a bias
    growing linearly in time to the size of the smallest n's sampling error at t_max: the error
    stops falling with n (a floor), and its scatter between draws shrinks relative to it."""
    bias = float(data.w1.isel(n=0, t=-1).mean()) * data.t / data.t[-1]
    return data.assign(w1=(data.w1 + bias).transpose(*data.w1.dims))


def add_mass_and_positivity(claims: ClaimSet, summary: Callable[[xr.Dataset, Any], dict],
                            mass_ref: Ref, positivity_ref: Ref) -> None:
    """Add the mass and positivity rules, in that order, to ``claims``."""

    @claims.rule("mass is conserved to round-off", mass_ref, control=leaking_mass)
    def _mass(data: xr.Dataset, p: Any, run: RunSettings) -> Verdict:
        return less(summary(data, p)["mass_error"], 1e-12, detail="max_t |M(t) - M(0)| / M(0)")

    @claims.rule("the density never becomes negative", positivity_ref, control=undershooting_density)
    def _positive(data: xr.Dataset, p: Any, run: RunSettings) -> Verdict:
        return between(summary(data, p)["min_density"], 0.0, np.inf, detail="smallest cell value over all steps")
