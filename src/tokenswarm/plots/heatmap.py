"""Phase diagrams: a probability over the (t, beta) plane, as in Fig. 3 and Fig. 5 of
Geshkovski et al. (docs/theory/attention_ode.md §3.5).

The array convention is ``fraction[beta_index, t_index]`` (rows = beta, columns = t), so the
image is drawn as stored: t on the x-axis, beta on the y-axis, beta increasing upwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, NonUniformImage

from tokenswarm.plots._common import (
    PROBABILITY_CMAP,
    as_float_array,
    new_figure,
    settle,
    style,
)

__all__ = ["phase_diagram", "phase_diagram_grid"]

DEFAULT_COLORBAR_LABEL = r"$\mathbb{P}(\langle x_i(t), x_j(t)\rangle \geq 1-\delta)$"

# Overlay curves are black (as in the paper) with a thin white halo, so they stay visible on
# the dark low-probability region as well as on the bright one.
_OVERLAY_STYLES = ["-", "--", ":", "-."]
_HALO = [patheffects.withStroke(linewidth=3.2, foreground="white", alpha=0.9)]

Overlay = Mapping[str, tuple[Any, Any]]


def _cell_edges(centres: np.ndarray) -> tuple[float, float]:
    """Outer edges of a grid of cell centres (half a step beyond the ends)."""
    if centres.size == 1:
        return float(centres[0]) - 0.5, float(centres[0]) + 0.5
    return (float(centres[0] - (centres[1] - centres[0]) / 2),
            float(centres[-1] + (centres[-1] - centres[-2]) / 2))


def _is_uniform(centres: np.ndarray) -> bool:
    if centres.size < 3:
        return True
    steps = np.diff(centres)
    return bool(np.allclose(steps, steps[0], rtol=1e-6, atol=1e-12 * max(1.0, abs(steps[0]))))


def _check_grid(fraction: Any, t: Any, beta: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frac = as_float_array(fraction, "fraction", ndim=2)
    t = as_float_array(t, "t", ndim=1)
    beta = as_float_array(beta, "beta", ndim=1)
    expected = (beta.size, t.size)
    if frac.shape != expected:
        hint = (" (it looks transposed: pass fraction.T)"
                if frac.shape == expected[::-1] else "")
        raise ValueError(f"fraction must have shape (len(beta), len(t)) = {expected}, "
                         f"got {frac.shape}{hint}")
    for name, grid in (("t", t), ("beta", beta)):
        if grid.size > 1 and not np.all(np.diff(grid) > 0):
            raise ValueError(f"{name} must be strictly increasing")
    return frac, t, beta


def _draw_phase(ax: Axes, fraction: Any, t: Any, beta: Any, *, title: str | None,
                overlay: Overlay | None, clim: tuple[float, float]) -> AxesImage:
    frac, t, beta = _check_grid(fraction, t, beta)
    t_lo, t_hi = _cell_edges(t)
    b_lo, b_hi = _cell_edges(beta)
    if _is_uniform(t) and _is_uniform(beta):
        image = ax.imshow(frac, origin="lower", aspect="auto", interpolation="nearest",
                          extent=(t_lo, t_hi, b_lo, b_hi), cmap=PROBABILITY_CMAP,
                          vmin=clim[0], vmax=clim[1])
    else:
        # NonUniformImage keeps the cells where the grid puts them and is still an image
        # (ax.images[0].get_array() returns the data, as for imshow).
        image = NonUniformImage(ax, interpolation="nearest", cmap=PROBABILITY_CMAP,
                                extent=(t_lo, t_hi, b_lo, b_hi))
        image.set_data(t, beta, frac)
        image.set_clim(*clim)
        ax.add_image(image)
    if overlay:
        for k, (label, (t_curve, beta_curve)) in enumerate(overlay.items()):
            tc = as_float_array(t_curve, f"overlay[{label!r}] t").reshape(-1)
            bc = as_float_array(beta_curve, f"overlay[{label!r}] beta").reshape(-1)
            if tc.shape != bc.shape:
                raise ValueError(f"overlay[{label!r}]: t and beta curves differ in length "
                                 f"({tc.size} vs {bc.size})")
            ax.plot(tc, bc, color="black", linestyle=_OVERLAY_STYLES[k % len(_OVERLAY_STYLES)],
                    linewidth=1.5, label=label, path_effects=_HALO)
        legend = ax.legend(loc="lower right", frameon=True, framealpha=0.85,
                           edgecolor="none", handlelength=2.2)
        legend.get_frame().set_facecolor("white")
    ax.set_xlim(t_lo, t_hi)
    ax.set_ylim(b_lo, b_hi)
    ax.set_xlabel(r"time $t$")
    ax.set_ylabel(r"inverse temperature $\beta$")
    for spine in ax.spines.values():
        spine.set_visible(True)
    if title:
        ax.set_title(title)
    return image


def phase_diagram(fraction: Any, t: Any, beta: Any, *, title: str | None = None,
                  ax: Axes | None = None, overlay: Overlay | None = None,
                  colorbar_label: str = DEFAULT_COLORBAR_LABEL,
                  clim: tuple[float, float] = (0.0, 1.0)) -> Figure:
    """Heatmap of a probability over the (t, beta) plane.

    Args:
        fraction: array ``(len(beta), len(t))``; ``fraction[b, k]`` is the value at
            ``beta[b]``, ``t[k]`` (e.g. the fraction of pairs with ``<x_i, x_j> > 1 - delta``).
        t: increasing times, shape ``(len(t),)``; x-axis.
        beta: increasing inverse temperatures, shape ``(len(beta),)``; y-axis.
        title: panel title, e.g. ``"d = 2"``.
        ax: draw into this axes (its figure is returned) instead of a new figure.
        overlay: ``{label: (t_curve, beta_curve)}`` drawn as black lines, e.g. the
            equiangular crossing-time curve.
        colorbar_label: colour-bar label.
        clim: colour range, ``(0, 1)`` for probabilities.

    Returns:
        The figure (image in ``ax.images[0]``; colour bar as a second axes).
    """
    with style():
        if ax is None:
            fig = new_figure((4.6, 3.4))
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        image = _draw_phase(ax, fraction, t, beta, title=title, overlay=overlay, clim=clim)
        fig.colorbar(image, ax=ax, label=colorbar_label)
    return settle(fig)


def phase_diagram_grid(panels: Mapping[str, tuple[Any, Any, Any]], *, ncols: int = 3,
                       suptitle: str | None = None,
                       overlays: Mapping[str, Overlay] | None = None,
                       colorbar_label: str = DEFAULT_COLORBAR_LABEL,
                       clim: tuple[float, float] = (0.0, 1.0)) -> Figure:
    """One phase diagram per entry of ``panels`` with a shared colour bar (Fig. 3 / Fig. 5).

    Args:
        panels: ``{panel title: (fraction, t, beta)}`` in display order, e.g. keyed
            ``"d = 2"``, ``"d = 8"``, ...; each as in :func:`phase_diagram`.
        ncols: panels per row.
        suptitle: figure title.
        overlays: ``{panel title: {label: (t_curve, beta_curve)}}``; panels without an
            entry get no overlay.
        colorbar_label, clim: as in :func:`phase_diagram`.

    Returns:
        The figure: ``len(panels)`` image axes plus one colour-bar axes.
    """
    if not panels:
        raise ValueError("panels is empty: give at least one {title: (fraction, t, beta)}")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    overlays = dict(overlays or {})
    unknown = set(overlays) - set(panels)
    if unknown:
        raise ValueError(f"overlays has keys {sorted(unknown)} that are not panels "
                         f"(panels: {list(panels)})")
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    with style():
        fig = new_figure((3.3 * ncols + 0.9, 2.75 * nrows + (0.35 if suptitle else 0.0)))
        grid = fig.subplots(nrows, ncols, squeeze=False)
        used = []
        image = None
        for k, (key, (fraction, t, beta)) in enumerate(panels.items()):
            ax = grid[k // ncols][k % ncols]
            image = _draw_phase(ax, fraction, t, beta, title=key, overlay=overlays.get(key),
                                clim=clim)
            # Label only the outer edges: the axes mean the same thing in every panel.
            if k % ncols:
                ax.set_ylabel("")
            if k + ncols < len(panels):
                ax.set_xlabel("")
            used.append(ax)
        for ax in grid.flat[len(panels):]:
            fig.delaxes(ax)
        fig.colorbar(image, ax=used, label=colorbar_label, shrink=0.95 if nrows > 1 else 1.0)
        if suptitle:
            fig.suptitle(suptitle)
    return settle(fig)
