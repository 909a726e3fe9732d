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

DPI = 150  # saved PNGs: sharp when a report shows them at 120 CSS px per inch
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


# --------------------------------------------------------------------------------------
# Finishing pass before a figure is saved
# --------------------------------------------------------------------------------------

#: Legend positions tried, in order, when a legend covers data (matplotlib location codes:
#: upper right, upper left, lower left, lower right, right, centre left, centre right,
#: lower centre, upper centre).
_LEGEND_LOCATIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
_SAMPLES_PER_SEGMENT = 24


def finish_figure(fig: Figure) -> Figure:
    """Integer ticks on integer axes and legends off the data, then a settled layout.

    Applied to every figure an experiment saves (:mod:`tokenswarm.io.results`), so the
    figure functions and the experiments' own figures get the same treatment:

    * a linear axis with automatic ticks whose plotted lines all sit at integer
      coordinates (layers, token counts, dimensions) gets integer ticks only;
    * a logarithmic axis spanning less than two decades labels its ticks ``3``, ``0.4``
      rather than ``3 x 10^0``, ``4 x 10^-1``;
    * a legend that covers plotted points or lines is moved to the free corner of its
      axes, or, when there is none, outside the axes on the right.
    """
    for ax in fig.axes:
        if ax.name != "rectilinear":
            continue
        _integer_ticks(ax)
        _plain_log_labels(ax)
    fig.draw_without_rendering()
    moved = False
    for ax in fig.axes:
        legend = ax.get_legend()
        if ax.name == "rectilinear" and legend is not None and legend.get_visible():
            moved |= _place_legend(ax, legend)
    if moved:
        settle(fig)
    return fig


def _line_data(ax) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(x, y)`` of the visible data lines of ``ax`` (no reference lines spanning the axes)."""
    curves = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_transform() != ax.transData:
            continue
        x = np.asarray(line.get_xdata(orig=False), dtype=float)
        y = np.asarray(line.get_ydata(orig=False), dtype=float)
        if x.size and x.shape == y.shape:
            curves.append((x, y))
    return curves


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import AutoLocator, MaxNLocator

    curves = _line_data(ax)
    for which, axis, scale in (("x", ax.xaxis, ax.get_xscale()), ("y", ax.yaxis, ax.get_yscale())):
        if scale != "linear" or type(axis.get_major_locator()) is not AutoLocator:
            continue
        values = np.concatenate([c[0] if which == "x" else c[1] for c in curves]) if curves else np.array([])
        values = values[np.isfinite(values)]
        if np.unique(values).size >= 2 and np.all(values == np.round(values)):
            axis.set_major_locator(MaxNLocator(integer=True))


def _plain_log_labels(ax) -> None:
    from matplotlib.ticker import LogFormatter, LogFormatterSciNotation

    for axis, scale, limits in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        low, high = sorted(limits)
        if scale != "log" or low <= 0 or high / low >= 100:
            continue
        for formatter, setter in ((axis.get_major_formatter(), axis.set_major_formatter),
                                  (axis.get_minor_formatter(), axis.set_minor_formatter)):
            # Only matplotlib's default: a figure that chose its own labels keeps them.
            if type(formatter) is LogFormatterSciNotation:
                # Same choice of labelled ticks, written as plain numbers.
                setter(LogFormatter(base=getattr(formatter, "_base", 10), labelOnlyBase=formatter.labelOnlyBase,
                                    minor_thresholds=formatter.minor_thresholds))


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the plotted data: line vertices and points between them,
    scatter offsets, and the vertices of bands and error bars; ``(m, 2)``."""
    from matplotlib.collections import Collection

    points = []
    for x, y in _line_data(ax):
        xy = ax.transData.transform(np.column_stack([x, y]))
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) > 1:
            steps = np.linspace(0.0, 1.0, _SAMPLES_PER_SEGMENT, endpoint=False)[:, None, None]
            xy = np.concatenate([(xy[:-1] + steps * (xy[1:] - xy[:-1])).reshape(-1, 2), xy[-1:]])
        points.append(xy)
    for collection in ax.collections:
        if not isinstance(collection, Collection) or not collection.get_visible():
            continue
        offsets = collection.get_offsets()
        if len(offsets) and collection.get_offset_transform() == ax.transData:
            points.append(ax.transData.transform(np.asarray(offsets, dtype=float)))
        for path in collection.get_paths():
            vertices = path.vertices
            if len(vertices) and collection.get_transform() == ax.transData:
                points.append(ax.transData.transform(vertices))
    if not points:
        return np.empty((0, 2))
    xy = np.concatenate(points)
    return xy[np.all(np.isfinite(xy), axis=1)]


def _covered(legend, points: np.ndarray) -> int:
    box = legend.get_window_extent()
    inside = ((points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
              & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1))
    return int(inside.sum())


def _place_legend(ax, legend) -> bool:
    """Move ``legend`` off the data if it covers any; returns whether it moved."""
    if ax.images:  # a heatmap is data everywhere: its overlay legend stays where it was put
        return False
    points = _data_points(ax)
    if points.size == 0 or _covered(legend, points) == 0:
        return False
    renderer = ax.figure.canvas.get_renderer()
    for location in _LEGEND_LOCATIONS:
        legend.set_loc(location)
        legend.get_window_extent(renderer)  # positions the legend for this location
        if _covered(legend, points) == 0:
            return True
    legend.set_loc("upper left")
    legend.set_bbox_to_anchor((1.02, 1.0), transform=ax.transAxes)
    return True
