"""Figures and animations: phase diagrams, token snapshots, GIFs, curves.

Every function takes numpy arrays or torch tensors and returns a
:class:`matplotlib.figure.Figure` (Agg canvas, not registered with pyplot; the caller saves
it with ``fig.savefig(path)``), except :func:`animate_tokens`, which writes a GIF and returns
its path. Nothing is ever shown.
"""

from tokenswarm.plots.animate import animate_tokens
from tokenswarm.plots.curves import cluster_count_plot, histogram_over_time, line_plot
from tokenswarm.plots.density import (
    angle_histograms,
    coarsen,
    density_snapshots,
    space_time,
)
from tokenswarm.plots.heatmap import phase_diagram, phase_diagram_grid
from tokenswarm.plots.tokens import circle_snapshots, sphere_snapshots

__all__ = [
    "phase_diagram",
    "phase_diagram_grid",
    "circle_snapshots",
    "sphere_snapshots",
    "animate_tokens",
    "histogram_over_time",
    "line_plot",
    "cluster_count_plot",
    "coarsen",
    "angle_histograms",
    "space_time",
    "density_snapshots",
]
