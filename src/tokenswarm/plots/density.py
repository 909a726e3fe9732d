"""Densities on the circle over time: the mean-field view beside particle histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tokenswarm.plots._common import DENSITY_CMAP, _np, new_figure, style

__all__ = ["coarsen", "angle_histograms", "space_time", "density_snapshots"]

TWO_PI = 2 * np.pi


def coarsen(density: Any, bins: int) -> np.ndarray:
    """Average ``(..., N)`` cell values onto ``bins`` equal bins (``bins`` must divide ``N``)."""
    density = _np(density)
    cells = density.shape[-1]
    if cells % bins:
        raise ValueError(f"bins = {bins} must divide the number of cells {cells}")
    return density.reshape(*density.shape[:-1], bins, cells // bins).mean(-1)


def angle_histograms(theta: Any, bins: int) -> np.ndarray:
    """Normalised histograms ``(T, bins)`` on ``[0, 2π)`` of angles ``(T, n)``."""
    return np.stack([np.histogram(np.mod(t, TWO_PI), bins=bins, range=(0, TWO_PI), density=True)[0]
                     for t in _np(theta)])


def space_time(panels: Mapping[str, Any], t_max: float, *, vmax: float | None = None) -> Figure:
    """Side-by-side images ``{title: (T, bins)}`` of densities over (θ, t), one shared colour scale."""
    images = {title: _np(img) for title, img in panels.items()}
    if vmax is None:
        vmax = float(np.quantile(next(iter(images.values())), 0.995))
    with style():
        fig = new_figure((4.5 * len(images), 3.6))
        axes = np.atleast_1d(fig.subplots(1, len(images), sharey=True))
        for ax, (title, img) in zip(axes, images.items()):
            im = ax.imshow(img, origin="lower", aspect="auto", extent=(0, TWO_PI, 0, t_max), vmin=0, vmax=vmax,
                           cmap=DENSITY_CMAP)
            ax.set_xlabel(r"$\theta$")
            ax.set_title(title)
        axes[0].set_ylabel("t")
        fig.colorbar(im, ax=list(axes), label="density")
    return fig


def density_snapshots(density: Any, histogram: Any, times: Sequence[float], picks: Sequence[int], *,
                      label: str) -> Figure:
    """The density (line) and a particle histogram (steps) at a few of ``times``."""
    density, histogram = _np(density), _np(histogram)
    bins = density.shape[-1]
    centers, edges = (np.arange(bins) + 0.5) * TWO_PI / bins, np.linspace(0, TWO_PI, bins + 1)
    with style():
        fig = new_figure((3.0 * len(picks), 3.2))
        axes = np.atleast_1d(fig.subplots(1, len(picks), sharey=True))
        for ax, i in zip(axes, picks):
            ax.plot(centers, density[i], color="k", lw=1.2, label="PDE")
            ax.stairs(histogram[i], edges, color="C1", alpha=0.7, label=label)
            ax.set_title(f"t = {times[i]:.3g}")
            ax.set_xlabel(r"$\theta$")
        axes[0].set_ylabel("density")
        axes[0].legend()
    return fig
