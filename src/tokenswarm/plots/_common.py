"""Shared helpers for the figure modules: array conversion, figure creation, style, checks.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas attached, never
through ``pyplot``: nothing is registered in a global figure manager, nothing is shown, and a
caller that forgets to close a figure leaks nothing but the object itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 120
PROBABILITY_CMAP = "viridis"  # quantities in [0, 1]: phase diagrams
DENSITY_CMAP = "magma"  # densities: histograms over time
CLUSTER_CMAP = "tab10"  # categorical: cluster labels
TOKEN_CMAP = "viridis"  # token index in animations

STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
    "image.cmap": PROBABILITY_CMAP,
    "savefig.dpi": "figure",
    "savefig.bbox": "tight",
}


def style():
    """Context manager applying the package style (rcParams are read at artist creation)."""
    return matplotlib.rc_context(STYLE)


def _np(a: Any) -> np.ndarray:
    """A numpy view/copy of ``a``: torch tensors are detached and moved to the CPU."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure at :data:`DPI` with an Agg canvas (renderable, savable)."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def settle(fig: Figure) -> Figure:
    """Run the layout until it is stable, so the first ``savefig`` gets the final positions.

    Constrained layout measures titles and colour bars from the previous draw; on a fresh
    figure the first pass can leave a title outside the canvas. Two dry runs converge.
    """
    fig.draw_without_rendering()
    fig.draw_without_rendering()
    return fig


def as_float_array(a: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``a`` as a float numpy array, with a ``ValueError`` naming ``name`` on a wrong ``ndim``."""
    arr = _np(a)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(float, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    return arr


def snapshot_list(x_list: Any, name: str = "x_list") -> list[np.ndarray]:
    """A list of ``(n, d)`` arrays from a sequence of arrays or one ``(K, n, d)`` array."""
    if isinstance(x_list, Sequence) and not isinstance(x_list, (str, bytes)):
        snaps = [as_float_array(x, f"{name}[{k}]", ndim=2) for k, x in enumerate(x_list)]
    else:
        arr = as_float_array(x_list, name)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"{name} must be a list of (n, d) arrays or a (K, n, d) array, "
                             f"got shape {arr.shape}")
        snaps = list(arr)
    if not snaps:
        raise ValueError(f"{name} is empty: give at least one (n, d) snapshot")
    return snaps


def check_times(times: Any, count: int, name: str = "times") -> np.ndarray:
    t = as_float_array(times, name).reshape(-1)
    if t.shape[0] != count:
        raise ValueError(f"{name} has {t.shape[0]} entries but there are {count} snapshots")
    return t


def time_decimals(times: np.ndarray) -> int:
    """Decimals needed to tell neighbouring times apart (0 to 4)."""
    steps = np.abs(np.diff(np.sort(np.asarray(times, dtype=float))))
    steps = steps[steps > 0]
    separating = 0 if steps.size == 0 else int(min(4, max(0, math.ceil(-math.log10(steps.min()) - 1e-9))))
    # Also enough decimals to print every time exactly (t = 2.5 must not read "t = 2").
    values = np.asarray(times, dtype=float)
    exact = next((k for k in range(5) if np.all(np.abs(np.round(values, k) - values) < 1e-9)), 4)
    return max(separating, exact)


def format_time(t: float, decimals: int) -> str:
    return f"$t = {t:.{decimals}f}$"


def figure_rgba(fig: Figure) -> np.ndarray:
    """Render ``fig`` and return its pixels as an ``(H, W, 4)`` uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()
