"""Curves and distributions over time: histograms of inner products, generic measured vs
predicted curves, cluster counts against beta."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tokenswarm.plots._common import (
    DENSITY_CMAP,
    _np,
    as_float_array,
    new_figure,
    settle,
    style,
)

__all__ = ["histogram_over_time", "line_plot", "cluster_count_plot"]

_REFERENCE_COLORS = ["black", "0.45", "#b2182b", "#2166ac"]
_REFERENCE_STYLES = ["--", ":", "-.", (0, (5, 2, 1, 2))]


def _row_edges(times: np.ndarray) -> np.ndarray:
    """Cell edges around (possibly non-uniform) increasing times."""
    if times.size == 1:
        return np.array([times[0] - 0.5, times[0] + 0.5])
    mid = (times[1:] + times[:-1]) / 2
    return np.concatenate([[2 * times[0] - mid[0]], mid, [2 * times[-1] - mid[-1]]])


def histogram_over_time(values_list: Any, times: Any, *, bins: int = 50,
                        range: tuple[float, float] = (-1.0, 1.0),  # noqa: A002 (public name)
                        xlabel: str = r"$\langle x_i, x_j\rangle$", log: bool = False,
                        kind: str = "image", max_ridges: int = 12,
                        title: str | None = None) -> Figure:
    """Histograms of a scalar (e.g. pairwise inner products) at several times.

    Args:
        values_list: ``T`` samples, one per time: a list of arrays of any shape (flattened;
            lengths may differ; non-finite values dropped) or one ``(T, m)`` array.
        times: ``(T,)`` increasing times.
        bins: number of histogram bins over ``range``.
        range: histogram range; ``(-1, 1)`` for inner products on the sphere.
        xlabel: label of the value axis.
        log: logarithmic colour scale (``kind="image"``) or y-scale (``kind="ridge"``).
        kind: ``"image"`` (x = value, y = time, colour = density) or ``"ridge"`` (one
            density curve per time, offset upwards, at most ``max_ridges`` evenly chosen).
        title: axes title.

    Returns:
        The figure: for ``"image"`` one axes plus a colour bar, for ``"ridge"`` one axes.
    """
    value_range = tuple(float(v) for v in range)
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"range must be (low, high) with low < high, got {range}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if kind not in ("image", "ridge"):
        raise ValueError(f"kind must be 'image' or 'ridge', got {kind!r}")
    if isinstance(values_list, (list, tuple)):
        samples = [as_float_array(v, f"values_list[{k}]").reshape(-1)
                   for k, v in enumerate(values_list)]
    else:
        arr = as_float_array(values_list, "values_list")
        samples = [row.reshape(-1) for row in (arr if arr.ndim > 1 else arr[None])]
    t = as_float_array(times, "times").reshape(-1)
    if t.size != len(samples):
        raise ValueError(f"times has {t.size} entries but values_list has {len(samples)}")
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("times must be strictly increasing")
    edges = np.linspace(*value_range, bins + 1)
    density = np.zeros((len(samples), bins))
    for k, sample in enumerate(samples):
        sample = sample[np.isfinite(sample)]
        if sample.size:
            counts, _ = np.histogram(np.clip(sample, *value_range), bins=edges)
            density[k] = counts / (sample.size * np.diff(edges))
    with style():
        fig = new_figure((4.8, 3.4))
        ax = fig.add_subplot()
        if kind == "image":
            positive = density[density > 0]
            if log and positive.size:
                norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-4),
                               vmax=positive.max(), clip=True)
                shown = np.ma.masked_less_equal(density, 0)
            else:
                norm = Normalize(vmin=0.0, vmax=density.max() if density.max() > 0 else 1.0)
                shown = density
            from matplotlib import colormaps

            base = colormaps[DENSITY_CMAP]
            cmap = base.with_extremes(bad=base(0.0))  # empty bins on a log scale: not blank
            mesh = ax.pcolormesh(edges, _row_edges(t), shown, cmap=cmap, norm=norm,
                                 shading="flat", rasterized=True)
            fig.colorbar(mesh, ax=ax, label="density" + (" (log scale)" if log else ""))
            ax.set_ylabel(r"time $t$")
            for spine in ax.spines.values():
                spine.set_visible(True)
        else:
            from matplotlib import colormaps

            chosen = np.unique(np.round(np.linspace(0, t.size - 1,
                                                    min(t.size, max_ridges))).astype(int))
            centres = (edges[1:] + edges[:-1]) / 2
            curves = np.log1p(density) if log else density
            scale = curves[chosen].max() if curves[chosen].max() > 0 else 1.0
            step = 0.6  # ridge spacing in units of the tallest curve: ridges overlap a bit
            cmap = colormaps["viridis"]
            for rank, k in enumerate(chosen[::-1]):  # back to front: late times behind
                offset = (len(chosen) - 1 - rank) * step
                y = offset + curves[k] / scale
                colour = cmap(0.9 * (len(chosen) - 1 - rank) / max(1, len(chosen) - 1))
                ax.fill_between(centres, offset, y, color=colour, alpha=0.75, linewidth=0,
                                zorder=2 * rank)
                ax.plot(centres, y, color="black", linewidth=0.7, zorder=2 * rank + 1)
            ax.set_yticks([i * step for i in np.arange(len(chosen))],
                          [f"{t[k]:.3g}" for k in chosen])
            ax.set_ylabel(r"time $t$" + (" (log(1 + density) ridges)" if log else ""))
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", length=0)
            ax.set_xlim(*value_range)
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title)
    return settle(fig)


def _curve(value: Any, x: np.ndarray | None, label: str,
           what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a ``y`` array on the shared grid or an explicit ``(x, y)`` pair."""
    if isinstance(value, tuple) and len(value) == 2 and np.ndim(_np(value[0])) == 1:
        cx = as_float_array(value[0], f"{what}[{label!r}] x").reshape(-1)
        cy = as_float_array(value[1], f"{what}[{label!r}] y").reshape(-1)
    else:
        if x is None:
            raise ValueError(f"{what}[{label!r}] has no x values: pass x or an (x, y) pair")
        cx, cy = x, as_float_array(value, f"{what}[{label!r}]").reshape(-1)
    if cx.shape != cy.shape:
        raise ValueError(f"{what}[{label!r}]: x has {cx.size} points but y has {cy.size}")
    return cx, cy


def line_plot(x: Any, ys: Mapping[str, Any], *, xlabel: str, ylabel: str, logy: bool = False,
              logx: bool = False, reference: Mapping[str, tuple[Any, Any]] | None = None,
              title: str | None = None, bands: Mapping[str, tuple[Any, Any]] | None = None,
              markers: bool = False) -> Figure:
    """Measured curves (solid) with optional reference curves (dashed), e.g. predicted.

    Args:
        x: shared x values ``(m,)``; may be ``None`` if every curve is an ``(x, y)`` pair.
        ys: ``{label: y}`` with ``y`` of shape ``(m,)``, or ``{label: (x_k, y_k)}``.
        xlabel, ylabel: axis labels (state symbols and units).
        logy, logx: logarithmic axes.
        reference: ``{label: (x_ref, y_ref)}`` drawn dashed in black/grey.
        title: axes title.
        bands: ``{label of a ys curve: (low, high)}``, a shaded band in the curve's colour
            (Monte Carlo error, interquartile range) on the same x values as the curve.
        markers: draw markers at the data points of the measured curves.

    Returns:
        The figure, one axes.
    """
    shared = None if x is None else as_float_array(x, "x").reshape(-1)
    bands = dict(bands or {})
    unknown = set(bands) - set(ys)
    if unknown:
        raise ValueError(f"bands has keys {sorted(unknown)} that are not curves in ys")
    with style():
        fig = new_figure((4.6, 3.3))
        ax = fig.add_subplot()
        for k, (label, value) in enumerate(ys.items()):
            cx, cy = _curve(value, shared, label, "ys")
            (line,) = ax.plot(cx, cy, color=f"C{k % 10}", label=label,
                              marker="o" if markers else None, markersize=3.5)
            if label in bands:
                low, high = (as_float_array(b, f"bands[{label!r}]").reshape(-1)
                             for b in bands[label])
                ax.fill_between(cx, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        for k, (label, value) in enumerate((reference or {}).items()):
            cx, cy = _curve(tuple(value), None, label, "reference")
            ax.plot(cx, cy, color=_REFERENCE_COLORS[k % len(_REFERENCE_COLORS)],
                    linestyle=_REFERENCE_STYLES[k % len(_REFERENCE_STYLES)], linewidth=1.3,
                    label=label, zorder=1.9)  # under the measured curves
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major")
        if ys or reference:
            ax.legend()
        if title:
            ax.set_title(title)
    return settle(fig)


def cluster_count_plot(beta: Any, counts_median: Any, counts_q25: Any, counts_q75: Any,
                       prediction: Any = None, *,
                       prediction_label: str = r"prediction $c\sqrt{\beta}$",
                       label: str = "median", loglog: bool = False,
                       title: str | None = None) -> Figure:
    """Number of clusters against beta: median with interquartile band and a prediction.

    Args:
        beta: ``(m,)`` inverse temperatures.
        counts_median, counts_q25, counts_q75: ``(m,)`` median and quartiles over runs.
        prediction: predicted counts, ``(m,)`` on the ``beta`` grid or an ``(x, y)`` pair on
            its own grid (e.g. a fine grid of ``c * sqrt(beta)``); drawn dashed.
        prediction_label: legend entry of the prediction.
        label: legend entry of the median.
        loglog: logarithmic axes (a power law is then a straight line).
        title: axes title.

    Returns:
        The figure, one axes.
    """
    b = as_float_array(beta, "beta").reshape(-1)
    median, q25, q75 = (as_float_array(v, name).reshape(-1) for v, name in (
        (counts_median, "counts_median"), (counts_q25, "counts_q25"),
        (counts_q75, "counts_q75")))
    for name, arr in (("counts_median", median), ("counts_q25", q25), ("counts_q75", q75)):
        if arr.shape != b.shape:
            raise ValueError(f"{name} has {arr.size} values but beta has {b.size}")
    with style():
        fig = new_figure((4.4, 3.2))
        ax = fig.add_subplot()
        ax.fill_between(b, q25, q75, color="C0", alpha=0.22, linewidth=0,
                        label="interquartile range")
        ax.plot(b, median, color="C0", marker="o", markersize=3.5, label=label)
        if prediction is not None:
            px, py = _curve(prediction if isinstance(prediction, tuple) else _np(prediction),
                            b, prediction_label, "prediction")
            ax.plot(px, py, color="black", linestyle="--", linewidth=1.3,
                    label=prediction_label)
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(r"inverse temperature $\beta$")
        ax.set_ylabel("number of clusters")
        ax.grid(True)
        handles, labels = ax.get_legend_handles_labels()
        order = [1, 0, *range(2, len(handles))]  # median first, then its band
        ax.legend([handles[i] for i in order], [labels[i] for i in order])
        if title:
            ax.set_title(title)
    return settle(fig)
