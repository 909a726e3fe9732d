"""Figures and animations: phase diagrams, token snapshots, GIFs, curves.

Every function takes numpy arrays or torch tensors and returns a
:class:`matplotlib.figure.Figure` (Agg canvas, not registered with pyplot; the caller saves
it with ``fig.savefig(path)``), except :func:`animate_tokens`, which writes a GIF and returns
its path. Nothing is ever shown.
"""

from tokenswarm.runtime.lazy import lazy_exports

#: Public name -> the submodule defining it, imported when the name is first read.
_EXPORTS = {
    "animate_tokens": "animate",
    "cluster_count_plot": "curves",
    "histogram_over_time": "curves",
    "line_plot": "curves",
    "angle_histograms": "density",
    "coarsen": "density",
    "density_snapshots": "density",
    "space_time": "density",
    "phase_diagram": "heatmap",
    "phase_diagram_grid": "heatmap",
    "circle_snapshots": "tokens",
    "sphere_snapshots": "tokens",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
