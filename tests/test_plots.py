"""Figures: structure (axes counts, image data), non-blank pixels, GIF frames, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from tokenswarm.plots import (
    animate_tokens,
    circle_snapshots,
    cluster_count_plot,
    histogram_over_time,
    line_plot,
    phase_diagram,
    phase_diagram_grid,
    sphere_snapshots,
)
from tokenswarm.plots._common import figure_rgba, time_decimals
from tokenswarm.plots.animate import frame_indices


def _sphere_points(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _trajectory(T, n, d, seed=0):
    """Tokens rotating at distinct speeds: every state differs from the previous one."""
    x0 = _sphere_points((n, d), seed)
    angles = np.linspace(0, 2, T)[:, None] * np.linspace(0.5, 1.5, n)[None, :]
    c, s = np.cos(angles), np.sin(angles)
    traj = np.repeat(x0[None], T, axis=0)
    traj[..., 0] = c * x0[:, 0] - s * x0[:, 1]
    traj[..., 1] = s * x0[:, 0] + c * x0[:, 1]
    return traj


def _assert_not_blank(fig: Figure):
    pixels = figure_rgba(fig)[..., :3].astype(float)
    assert pixels.std() > 5.0


@pytest.fixture(scope="module")
def grid():
    t = np.linspace(0, 30, 40)
    beta = np.linspace(0.1, 9, 18)
    fraction = 1 / (1 + np.exp(-(t[None, :] - 3 * beta[:, None])))
    return fraction, t, beta


def test_phase_diagram_shows_input_array(grid):
    fraction, t, beta = grid
    fig = phase_diagram(torch.tensor(fraction), t, beta, title="d = 2",
                        overlay={"equiangular": (3 * beta, beta)})
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # heatmap + colour bar
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), fraction)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert ax.get_xlim() == pytest.approx((t[0] - (t[1] - t[0]) / 2, t[-1] + (t[1] - t[0]) / 2))
    assert [line.get_label() for line in ax.get_lines()] == ["equiangular"]
    assert ax.get_title() == "d = 2"
    _assert_not_blank(fig)


def test_phase_diagram_non_uniform_grid_and_existing_axes(grid):
    fraction, _, beta = grid
    t = np.geomspace(0.1, 30, fraction.shape[1])
    host = Figure()
    ax = host.add_subplot()
    fig = phase_diagram(fraction, t, beta, ax=ax)
    assert fig is host
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), fraction)


def test_phase_diagram_rejects_wrong_shape(grid):
    fraction, t, beta = grid
    with pytest.raises(ValueError, match="transposed"):
        phase_diagram(fraction.T, t, beta)


def test_phase_diagram_grid_has_one_panel_per_key_and_shared_colorbar(grid):
    fraction, t, beta = grid
    panels = {f"d = {d}": (fraction * k / 4, t, beta) for k, d in enumerate([2, 8, 32, 128])}
    fig = phase_diagram_grid(panels, ncols=3, suptitle="SA",
                             overlays={"d = 8": {"curve": (3 * beta, beta)}})
    assert len(fig.axes) == 4 + 1
    assert [ax.get_title() for ax in fig.axes[:4]] == list(panels)
    for ax, (frac, _, _) in zip(fig.axes[:4], panels.values(), strict=True):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), frac)
    _assert_not_blank(fig)
    with pytest.raises(ValueError, match="not panels"):
        phase_diagram_grid(panels, overlays={"d = 3": {}})


def test_circle_snapshots_one_panel_per_time():
    x = torch.tensor(_sphere_points((3, 16, 2)))
    labels = [np.arange(16) % 3] * 3
    fig = circle_snapshots(x, [0.0, 18.0, 30.0], cluster_labels=labels)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["$t = 0$", "$t = 18$", "$t = 30$"]
    assert len(set(map(tuple, fig.axes[0].collections[0].get_facecolors()))) == 3
    _assert_not_blank(fig)


def test_snapshots_wrong_dimension_names_the_alternative():
    with pytest.raises(ValueError, match="sphere_snapshots"):
        circle_snapshots([_sphere_points((8, 3))], [0.0])
    with pytest.raises(ValueError, match="d = 3"):
        sphere_snapshots([_sphere_points((8, 5))], [0.0])
    with pytest.raises(ValueError, match="3 entries but there are 2"):
        circle_snapshots(_sphere_points((2, 8, 2)), [0.0, 1.0, 2.0])


def test_sphere_snapshots_3d_axes():
    fig = sphere_snapshots([_sphere_points((20, 3), k) for k in range(2)], [0.0, 5.0])
    assert len(fig.axes) == 2
    assert all(ax.name == "3d" for ax in fig.axes)
    _assert_not_blank(fig)


@pytest.mark.parametrize(("d", "T", "max_frames", "rotation"),
                         [(2, 50, 120, 0.0), (2, 300, 40, 0.0), (3, 30, 120, 90.0)])
def test_animate_tokens_writes_gif_with_expected_frames(tmp_path, d, T, max_frames, rotation):
    traj = torch.tensor(_trajectory(T, 12, d))
    path = animate_tokens(traj, np.linspace(0, 30, T), tmp_path / "sub" / "a.gif",
                          max_frames=max_frames, title="demo", rotation=rotation, size=160)
    assert path.exists()
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == min(T, max_frames)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"), dtype=float)
    assert last.std() > 5.0
    assert (last == 255).all(axis=-1).mean() > 0.3  # background stays pure white


def test_animate_tokens_rejects_other_dimensions(tmp_path):
    with pytest.raises(ValueError, match=r"d = 2 \(circle\) or d = 3 \(sphere\).*project"):
        animate_tokens(_sphere_points((5, 4, 6)), np.arange(5), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="times has 4 entries"):
        animate_tokens(_sphere_points((5, 4, 2)), np.arange(4), tmp_path / "x.gif")
    bad = _sphere_points((5, 4, 2))
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="state 3"):
        animate_tokens(bad, np.arange(5), tmp_path / "x.gif")


def test_frame_indices_even_distinct_and_inclusive():
    idx = frame_indices(1000, 120)
    assert idx.size == 120 and idx[0] == 0 and idx[-1] == 999
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(frame_indices(7, 120), np.arange(7))
    assert time_decimals(np.linspace(0, 30, 121)) == 2  # steps of 0.25 print exactly
    assert time_decimals(np.array([0.0, 2.5, 18.0, 30.0])) == 1


@pytest.mark.parametrize(("kind", "log", "n_axes"),
                         [("image", False, 2), ("image", True, 2), ("ridge", False, 1)])
def test_histogram_over_time(kind, log, n_axes):
    rng = np.random.default_rng(0)
    times = np.linspace(0, 10, 15)
    values = [np.clip(rng.normal(t / 10, 0.2, 200), -1, 1) for t in times]
    fig = histogram_over_time(values, times, bins=30, kind=kind, log=log)
    assert len(fig.axes) == n_axes
    _assert_not_blank(fig)
    if kind == "image":
        density = fig.axes[0].collections[0].get_array()
        assert density.shape == (15, 30)
        assert np.sum(density[0]) * (2 / 30) == pytest.approx(1.0)  # each row is a density


def test_line_plot_reference_dashed():
    x = np.array([4, 8, 16, 32])
    fig = line_plot(x, {"measured": 1 / x}, xlabel="$L$", ylabel="error", logx=True,
                    logy=True, reference={"1/L": (x, 1.0 / x)},
                    bands={"measured": (0.9 / x, 1.1 / x)})
    assert len(fig.axes) == 1
    lines = fig.axes[0].get_lines()
    assert [line.get_linestyle() for line in lines] == ["-", "--"]
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    _assert_not_blank(fig)
    with pytest.raises(ValueError, match="x has 4 points but y has 3"):
        line_plot(x, {"bad": [1, 2, 3]}, xlabel="x", ylabel="y")


def test_cluster_count_plot():
    beta = np.linspace(1, 81, 9)
    median = np.round(np.sqrt(beta))
    fig = cluster_count_plot(beta, median, median - 1, median + 1, prediction=np.sqrt(beta))
    assert len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 2
    _assert_not_blank(fig)
    with pytest.raises(ValueError, match="counts_q75"):
        cluster_count_plot(beta, median, median, median[:-1])


def test_animation_title_fits_the_frame(tmp_path):
    # A title wider than the frame at the default font size is shrunk, not clipped: the
    # title band keeps a white margin at both edges.
    path = animate_tokens(_trajectory(3, 4, 2), np.array([0.0, 10.0, 20.0]), tmp_path / "t.gif",
                          title="SA, beta = 4, n = 32, a deliberately long title", size=160)
    with Image.open(path) as gif:
        frame = np.asarray(gif.convert("RGB"), dtype=float)
    band = frame[:24]  # the title band of a 160-pixel frame
    ink = np.flatnonzero((band < 200).any(axis=(0, 2)))
    assert ink.size > 0  # the title is drawn
    assert ink[0] >= 2 and ink[-1] <= frame.shape[1] - 3


def _legend_covers_data(ax) -> int:
    from tokenswarm.plots._common import _covered, _data_points

    ax.figure.draw_without_rendering()
    return _covered(ax.get_legend(), _data_points(ax))


def test_finish_figure_moves_a_legend_off_the_data():
    from tokenswarm.plots._common import finish_figure

    x = np.linspace(0.0, 1.0, 50)
    fig = line_plot(x, {f"curve {k}": np.sin(6 * x + k) for k in range(6)}, xlabel="t", ylabel="y")
    ax = fig.axes[0]
    assert _legend_covers_data(ax) > 0  # curves fill the axes: "best" has no free spot
    finish_figure(fig)
    assert _legend_covers_data(ax) == 0


def test_finish_figure_gives_integer_axes_integer_ticks():
    from matplotlib.ticker import MaxNLocator

    from tokenswarm.plots._common import finish_figure

    fig = line_plot(np.arange(3), {"per layer": [0.2, 0.5, 0.4]}, xlabel="layer", ylabel="cosine")
    finish_figure(fig)
    ax = fig.axes[0]
    assert type(ax.xaxis.get_major_locator()) is MaxNLocator
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert type(ax.yaxis.get_major_locator()) is not MaxNLocator  # fractional values keep theirs


def test_finish_figure_writes_short_log_axes_as_plain_numbers():
    from tokenswarm.plots._common import finish_figure

    fig = line_plot(np.array([4.0, 8.0, 16.0]), {"clusters": [3.0, 4.2, 6.0]}, xlabel="beta",
                    ylabel="clusters", logx=True, logy=True)
    finish_figure(fig)
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels(minor=True) if t.get_text()]
    assert labels and all("times" not in text and "^" not in text for text in labels), labels
