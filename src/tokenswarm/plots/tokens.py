"""Snapshots of tokens on the circle (d = 2, Fig. 4) and on the sphere S^2 (d = 3)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure

from tokenswarm.plots._common import (
    CLUSTER_CMAP,
    as_float_array,
    check_times,
    format_time,
    new_figure,
    settle,
    snapshot_list,
    style,
    time_decimals,
)

__all__ = ["circle_snapshots", "sphere_snapshots"]

_TOKEN_COLOR = "#2c4a87"  # a dark viridis blue: one colour when no labels are given


def _check_dimension(snaps: list[np.ndarray], d: int, function: str) -> None:
    for k, x in enumerate(snaps):
        if x.shape[-1] != d:
            other = {2: "circle_snapshots", 3: "sphere_snapshots"}
            alternative = next((f for dim, f in other.items() if dim == x.shape[-1]), None)
            hint = (f"use {alternative} for d = {x.shape[-1]}" if alternative else
                    "project the tokens to 2 or 3 dimensions first (e.g. onto their top "
                    "principal directions)")
            raise ValueError(f"{function} needs tokens of dimension d = {d}, but snapshot {k} "
                             f"has shape {x.shape} (d = {x.shape[-1]}); {hint}")


def _label_list(cluster_labels: Any, snaps: list[np.ndarray]) -> list[np.ndarray] | None:
    """Per-snapshot integer labels; a single ``(n,)`` array applies to every snapshot."""
    if cluster_labels is None:
        return None
    if isinstance(cluster_labels, (list, tuple)):
        labels = [np.asarray(as_float_array(c, f"cluster_labels[{k}]"), dtype=int).reshape(-1)
                  for k, c in enumerate(cluster_labels)]
    else:
        arr = np.asarray(as_float_array(cluster_labels, "cluster_labels"), dtype=int)
        labels = [arr.reshape(-1)] * len(snaps) if arr.ndim == 1 else list(arr)
    if len(labels) != len(snaps):
        raise ValueError(f"cluster_labels has {len(labels)} entries but there are "
                         f"{len(snaps)} snapshots")
    for k, (lab, x) in enumerate(zip(labels, snaps, strict=True)):
        if lab.shape[0] != x.shape[0]:
            raise ValueError(f"cluster_labels[{k}] has {lab.shape[0]} labels for "
                             f"{x.shape[0]} tokens")
    return labels


def _colors(labels: np.ndarray | None, n: int):
    if labels is None:
        return [_TOKEN_COLOR] * n
    from matplotlib import colormaps

    cmap = colormaps[CLUSTER_CMAP]
    # Relabel by first appearance so colours are stable whatever integers the caller used.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return [cmap(int(order[i]) % cmap.N) for i in inverse.reshape(-1)]


def _titles(titles: Any, times: np.ndarray) -> list[str]:
    if titles is None:
        decimals = time_decimals(times)
        return [format_time(t, decimals) for t in times]
    titles = list(titles)
    if len(titles) != len(times):
        raise ValueError(f"titles has {len(titles)} entries but there are {len(times)} "
                         "snapshots")
    return [str(s) for s in titles]


def _draw_circle_panel(ax: Axes, x: np.ndarray, colors, title: str, marker_size: float) -> None:
    angle = np.linspace(0.0, 2.0 * np.pi, 361)
    ax.plot(np.cos(angle), np.sin(angle), color="0.55", linewidth=1.0, zorder=1)
    ax.axhline(0.0, color="0.88", linewidth=0.6, zorder=0)
    ax.axvline(0.0, color="0.88", linewidth=0.6, zorder=0)
    ax.scatter(x[:, 0], x[:, 1], s=marker_size, c=colors, edgecolors="white",
               linewidths=0.6, alpha=0.9, zorder=3)
    ax.set_aspect("equal")
    ax.set_xlim(-1.18, 1.18)
    ax.set_ylim(-1.18, 1.18)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title)


def circle_snapshots(x_list: Any, times: Any, *, titles: Any = None,
                     cluster_labels: Any = None, marker_size: float = 36.0) -> Figure:
    """Tokens on the unit circle at several times, one panel per time (Fig. 4).

    Args:
        x_list: ``K`` snapshots of ``n`` tokens in d = 2: a list of ``(n, 2)`` arrays or one
            ``(K, n, 2)`` array (numpy or torch).
        times: ``(K,)`` times, shown as ``t = ...`` in each panel title.
        titles: ``K`` panel titles replacing the default ``t = ...``.
        cluster_labels: integer labels colouring the tokens: a list of ``K`` arrays ``(n,)``,
            a ``(K, n)`` array, or one ``(n,)`` array for all snapshots.
        marker_size: scatter marker area in points².

    Returns:
        The figure, one axes per snapshot.
    """
    snaps = snapshot_list(x_list)
    _check_dimension(snaps, 2, "circle_snapshots")
    t = check_times(times, len(snaps))
    labels = _label_list(cluster_labels, snaps)
    names = _titles(titles, t)
    with style():
        fig = new_figure((2.45 * len(snaps), 2.6))
        axes = fig.subplots(1, len(snaps), squeeze=False)[0]
        for k, (ax, x) in enumerate(zip(axes, snaps, strict=True)):
            colors = _colors(None if labels is None else labels[k], x.shape[0])
            _draw_circle_panel(ax, x, colors, names[k], marker_size)
    return settle(fig)


def sphere_snapshots(x_list: Any, times: Any, *, titles: Any = None,
                     cluster_labels: Any = None, elev: float = 20.0, azim: float = -60.0,
                     marker_size: float = 22.0) -> Figure:
    """Tokens on the unit sphere S^2 at several times: 3-D scatter on a wireframe sphere.

    Args:
        x_list: ``K`` snapshots of ``n`` tokens in d = 3: a list of ``(n, 3)`` arrays or one
            ``(K, n, 3)`` array (numpy or torch).
        times: ``(K,)`` times, shown as ``t = ...`` in each panel title.
        titles: ``K`` panel titles replacing the default ``t = ...``.
        cluster_labels: as in :func:`circle_snapshots`.
        elev, azim: camera elevation and azimuth in degrees (matplotlib convention).
        marker_size: scatter marker area in points².

    Returns:
        The figure, one 3-D axes per snapshot.
    """
    snaps = snapshot_list(x_list)
    _check_dimension(snaps, 3, "sphere_snapshots")
    t = check_times(times, len(snaps))
    labels = _label_list(cluster_labels, snaps)
    names = _titles(titles, t)
    u = np.linspace(0.0, 2.0 * np.pi, 49)
    v = np.linspace(0.0, np.pi, 25)
    sx = np.outer(np.cos(u), np.sin(v))
    sy = np.outer(np.sin(u), np.sin(v))
    sz = np.outer(np.ones_like(u), np.cos(v))
    # Smooth wireframe: parallels and meridians every 30 degrees, finely sampled.
    w = np.linspace(0.0, 2.0 * np.pi, 121)
    grid_lines = [(np.cos(lat) * np.cos(w), np.cos(lat) * np.sin(w), np.full_like(w, np.sin(lat)))
                  for lat in np.radians([-60, -30, 0, 30, 60])]
    grid_lines += [(np.sin(w) * np.cos(lon), np.sin(w) * np.sin(lon), np.cos(w))
                   for lon in np.radians([0, 30, 60, 90, 120, 150])]
    e, a = np.radians(elev), np.radians(azim)
    toward = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    with style():
        fig = new_figure((2.6 * len(snaps), 2.6))
        for k, x in enumerate(snaps):
            ax = fig.add_subplot(1, len(snaps), k + 1, projection="3d")
            ax.plot_surface(sx, sy, sz, color="#e8edf5", alpha=0.25, linewidth=0,
                            shade=False, zorder=0)
            for gx, gy, gz in grid_lines:
                ax.plot(gx, gy, gz, color="0.6", linewidth=0.4, alpha=0.7)
            colors = to_rgba_array(_colors(None if labels is None else labels[k], x.shape[0]))
            # Matplotlib's depth shading fades by distance to the box and washes the front
            # out; fade only the tokens on the far hemisphere instead.
            behind = x @ toward < 0
            colors[behind, :3] = colors[behind, :3] + (1.0 - colors[behind, :3]) * 0.55
            order = np.argsort(x @ toward)
            ax.scatter(x[order, 0], x[order, 1], x[order, 2], s=marker_size, c=colors[order],
                       edgecolors="white", linewidths=0.4, alpha=1.0, depthshade=False)
            ax.view_init(elev=elev, azim=azim)
            ax.set_box_aspect((1, 1, 1), zoom=1.4)
            ax.set_xlim(-1, 1)
            ax.set_ylim(-1, 1)
            ax.set_zlim(-1, 1)
            ax.set_axis_off()
            ax.set_title(names[k], y=1.02)
    return settle(fig)
