"""Residual connections and normalisation as stabilisers (2408.09523 v2 abstract; docs/theory/master_pde.md §1).

The abstract of 2408.09523 v2 says that, compared with a PDE simulator lacking them, a Transformer
without residual connections suffers "catastrophic representational drift" and one without layer
normalisation "unstable, explosive training dynamics". Its models, data and numbers are unknown
(docs/theory/master_pde.md §1), so this experiment is **our protocol** on ordinary Transformers
(:mod:`tokenswarm.nets.transformer`), built to be able to fail.

Models: the digits ViT of :mod:`tokenswarm.nets.tasks` (16 patches of 2×2 pixels, learned patch
embedding and positions, mean pooling, linear head) with a ``depth = 12`` stack of width
``dim = 64``, 4 heads, MLP ratio 2, GELU, PyTorch's standard initialisation, in three variants
that differ in one switch each and share every initial weight for a given seed:

* ``standard``: pre-LN, ``x <- x + F(LN x)`` per sublayer, final LayerNorm;
* ``no_residual``: pre-LN without the residual add, ``x <- F(LN x)``, final LayerNorm;
* ``no_norm``: no normalisation anywhere, ``x <- x + F(x)``, no final norm.

Measurements (docs/theory/master_pde.md §5 "measurable claims"), for ``u^l`` the tokens after block ``l`` (the
residual stream, before any final norm) and ``u^0`` the embedded input tokens, all tokens of the
first ``evaluation_examples`` test inputs:

* drift ``drift_l = 1 - mean_i cos(u_i^l, u_i^0)`` (:func:`token_drift`);
* linear CKA ``CKA(u^l, u^0) = ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)``, ``X = u^0``, ``Y = u^l`` as
  (tokens × features) matrices with centred columns (:func:`linear_cka`);

at random initialisation and after training at ``drift_learning_rate``. Training: Adam at a
constant learning rate (the same for every variant), no clipping, no weight decay, batch 64,
``steps`` updates, the same minibatch order for every variant of a seed; per step the loss, the
global gradient norm ``‖∇‖`` (before the update), the RMS entry of the last residual stream and
the first step with a non-finite loss or gradient (training stops there). Every learning rate of
``learning_rates`` is run for every variant and seed (the sweep is data); the claims use the
stated ones.

Claims (each compares the ablated variant with ``standard`` on paired seeds):

* (a) "without residual connections representations drift catastrophically", read as: the
  final-layer drift of ``no_residual`` exceeds that of ``standard`` by more than
  ``drift_margin = 0.5`` (mean over seeds; standard errors in the detail), once at random
  initialisation and once after training;
* (b) "without layer normalisation training is explosive", read as: at
  ``claim_learning_rate = 1e-2`` the gradient-norm growth ``G = max_t ‖∇_t‖ / ‖∇_0‖`` (over
  the finite steps; ``G = ∞`` for a run that reached a non-finite loss or gradient) of
  ``no_norm`` exceeds that of ``standard`` by more than ``growth_margin = 1`` decade in a
  strict majority of paired seeds.

Defaults were fixed after a pilot (a separate script: depth 12, dim 64, 4 heads, seeds 0-1, 150 steps): at lr 1e-3 the
``no_norm`` model trains as well as ``standard`` (it reached a *lower* training loss) with
gradient-norm growth 2-8× against 1.5-5×, so at that rate claim (b) would fail; at 1e-2 one
``no_norm`` run diverged (non-finite at step 74) and the other grew its gradient norm 200×,
against 5× and 58× for ``standard`` (which also trained poorly at that rate). The claim is
therefore stated at 1e-2, and the sweep ``1e-3, 3e-3, 1e-2`` is reported so that the reader sees
where it holds. The outcome depends on the width: with ``dim = 32`` (2 heads, otherwise the
defaults, experiment seed 0) no ``no_norm`` run diverged at 1e-2 and its growth exceeded the
standard model's by only 0.37-0.98 decades, so claim (b) failed (0 of 3 seeds).

Outcome at the defaults (experiment seed 0, 3 seeds; details in ``docs/stabilizers.md``): (a) at
initialisation passes (paired difference 0.76 ± 0.04); (a) after training **fails** (0.17 ± 0.02:
the trained standard model also moves its top layer far from its input, drift 0.82, while the
no-residual model stays at chance accuracy; the per-block drift, reported as data, still separates
them, ≤ 0.07 against ≈ 1); (b) passes (all 3 ``no_norm`` runs non-finite within 51-64 steps, no
standard run). ``--quick`` (depth 4, 60 steps, lr 1e-2 only) shows the same pattern; its (b)
passes with 2 of 3 seeds only.

Metrics (``<v>`` one of ``standard, no_residual, no_norm``): ``drift_<v>``, ``cka_<v>`` (lists
over layers ``0..depth``, random init, mean over seeds), ``drift_se_<v>``, ``cka_se_<v>``,
``step_drift_<v>`` (+ ``_se``: ``1 - mean cos(u^l, u^{l-1})`` per block ``l = 1..depth``, no
claim), ``drift_trained_<v>``, ``cka_trained_<v>``, ``step_drift_trained_<v>`` (+ ``_se``), ``test_accuracy_<v>`` (trained at
``drift_learning_rate``); at ``claim_learning_rate``: ``grad_norm_growth_<v>`` (median over
seeds of ``G``), ``grad_norm_growths_<v>`` (per seed), ``log10_grad_norm_growth_<v>`` and
``log10_grad_norm_growth_se_<v>`` (mean and s.e. over the finite runs), ``diverged_runs_<v>``,
``first_nonfinite_steps_<v>`` (per seed, ``null`` if none), ``activation_growth_<v>`` (median of
max_t RMS_t / RMS_0), ``final_loss_<v>`` (median over seeds of the mean of the last 10 losses);
for the sweep ``sweep_diverged_<v>``, ``sweep_median_log10_growth_<v>``, ``sweep_final_loss_<v>``
(lists over ``learning_rates``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, verdict
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.nets.tasks import (
    TransformerClassifier,
    digits_dataset,
    digits_vit,
    evaluate,
    fit,
    sequence_task,
    text_model,
)
from tokenswarm.nets.transformer import TransformerConfig
from tokenswarm.plots._common import new_figure, settle, style
from tokenswarm.runtime.threads import torch_threads

__all__ = ["Params", "VARIANTS", "token_drift", "linear_cka", "layer_similarity", "step_drift", "run"]

REFERENCE = "2408.09523 v2 abstract (protocol ours, docs/theory/master_pde.md §1-§5)"
REF_WHERE = "abstract (protocol ours, docs/theory/master_pde.md §1-§5)"
#: variant -> TransformerConfig changes from the standard pre-LN model
VARIANTS: dict[str, dict] = {"standard": {}, "no_residual": {"residual": False}, "no_norm": {"norm": "none"}}
VARIANT_LABEL = {"standard": "standard (pre-LN)", "no_residual": "no residual", "no_norm": "no normalisation"}


# ----------------------------------------------------------------------------------------
# Similarity measures (docs/theory/master_pde.md §5)
# ----------------------------------------------------------------------------------------
def token_drift(reference: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``1 - mean_i cos(tokens_i, reference_i)`` over every token, for ``(*batch, n, d)`` inputs.

    Returns a 0-dim float64 tensor: 0 when every token points where it started, 1 for orthogonal,
    2 for reversed. A zero token counts as orthogonal to everything (cosine 0).
    """
    if reference.shape != tokens.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(tokens.shape)}")
    a, b = tokens.double(), reference.double()
    norms = torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    cosine = (a * b).sum(-1) / torch.where(norms > 0, norms, torch.ones_like(norms))
    return 1.0 - cosine.mean()


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA ``‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)`` of ``x (m, d1)``, ``y (m, d2)`` (rows = samples).

    Columns are centred first (Kornblith et al. 2019). In ``[0, 1]``; invariant to orthogonal
    maps and isotropic scalings of either side, 1 for ``y = x``. NaN if either side is constant
    (zero after centring: no similarity is defined). Computed in float64.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (samples, features) with equal samples; got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    # Feature-space form (cheap for samples >> features); ‖YᵀX‖² = tr(XXᵀYYᵀ) likewise.
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    denominator = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return cross / denominator if denominator > 0 else torch.tensor(math.nan, dtype=torch.float64)


def layer_similarity(hidden: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """(drift, CKA) of each ``hidden[l]`` against ``hidden[0]``; tokens of all examples pooled."""
    reference = hidden[0]
    drift = [float(token_drift(reference, h)) for h in hidden]
    cka = [float(linear_cka(reference.flatten(0, -2), h.flatten(0, -2))) for h in hidden]
    return np.array(drift), np.array(cka)


def step_drift(hidden: list[torch.Tensor]) -> np.ndarray:
    """``1 - mean_i cos(u_i^l, u_i^{l-1})`` for ``l = 1..L``: how far one block moves the tokens."""
    return np.array([float(token_drift(before, after)) for before, after in zip(hidden[:-1], hidden[1:])])


# ----------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------
@dataclass
class Params:
    task: Literal["digits", "repeat"] = field(default="digits", metadata={"help": "digits ViT or the generated 'repeat' sequences (nets.tasks)"})
    dim: int = field(default=64, metadata={"min": 2, "help": "token dimension"})
    depth: int = field(default=12, metadata={"min": 1, "help": "number of blocks"})
    heads: int = field(default=4, metadata={"min": 1, "help": "attention heads (must divide dim)"})
    mlp_ratio: float = field(default=2.0, metadata={"min": 0, "help": "MLP width / dim"})
    seeds: int = field(default=3, metadata={"min": 2, "help": "paired seeds (weights, minibatch order)"})
    steps: int = field(default=150, metadata={"min": 1, "help": "Adam updates per training run"})
    batch_size: int = field(default=64, metadata={"min": 1, "help": "minibatch size"})
    learning_rates: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 1e-2], metadata={"min_exclusive": 0, "help": "constant Adam rates, each run for every variant and seed"})
    drift_learning_rate: float = field(default=1e-3, metadata={"min_exclusive": 0, "help": "rate of the trained models whose drift is measured (one of learning_rates)"})
    claim_learning_rate: float = field(default=1e-2, metadata={"min_exclusive": 0, "help": "rate of the explosion claim (one of learning_rates)"})
    drift_margin: float = field(default=0.5, metadata={"min": 0, "help": "claim (a): no_residual final drift - standard final drift must exceed this"})
    growth_margin: float = field(default=1.0, metadata={"min": 0, "help": "claim (b): decades by which no_norm's gradient-norm growth must exceed standard's"})
    evaluation_examples: int = field(default=256, metadata={"min": 2, "help": "test examples whose tokens enter drift and CKA"})
    train_size: int = field(default=4000, metadata={"min": 2, "help": "repeat task: training sequences"})
    num_threads: int = field(default=1, metadata={"min": 0, "help": "torch threads while running (0: leave as is); small models run faster on 1"})

    def __post_init__(self):
        TransformerConfig(dim=self.dim, depth=self.depth, heads=self.heads, mlp_ratio=self.mlp_ratio)
        if self.dim % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide dim ({self.dim})")
        if len(set(self.learning_rates)) != len(self.learning_rates) or not self.learning_rates:
            raise ValueError("learning_rates must be non-empty and must not repeat")
        for name in ("drift_learning_rate", "claim_learning_rate"):
            if not any(math.isclose(getattr(self, name), lr, rel_tol=1e-12) for lr in self.learning_rates):
                raise ValueError(f"{name}={getattr(self, name)} must be one of learning_rates {self.learning_rates}")


# ----------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------
def _data(p: Params, ctx: RunContext):
    if p.task == "digits":
        return digits_dataset("train"), digits_dataset("test")
    generator = torch.Generator().manual_seed(ctx.stream_seed(1))  # data on the CPU, then moved
    train = sequence_task(p.train_size, generator=generator)
    test = sequence_task(max(p.evaluation_examples, 2), generator=generator)
    return train, test


def _model(p: Params, variant: str, weight_seed: int, device) -> TransformerClassifier:
    config = TransformerConfig(dim=p.dim, depth=p.depth, heads=p.heads, mlp_ratio=p.mlp_ratio, **VARIANTS[variant])
    build = digits_vit if p.task == "digits" else text_model
    return build(config, seed=weight_seed).to(device)


@torch.no_grad()
def _similarity(model: TransformerClassifier, inputs: torch.Tensor):
    """(drift to the input, CKA to the input, drift per block) of one model."""
    model.eval()
    hidden = model.forward_tokens(inputs, return_hidden=True, return_attention=False).hidden
    return (*layer_similarity(hidden), step_drift(hidden))


def _index(values: list[float], value: float) -> int:
    return next(k for k, v in enumerate(values) if math.isclose(v, value, rel_tol=1e-12))


def _mean_se(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error (ddof 1) over ``axis``, ignoring NaN entries."""
    count = np.sum(np.isfinite(values), axis=axis)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (every run diverged): NaN
        mean = np.nanmean(values, axis=axis)
        se = np.nanstd(values, axis=axis, ddof=1) / np.sqrt(count)
    return mean, np.where(count > 1, se, np.nan)


def _ablation_ignored(variant: str, names: tuple[str, ...]):
    """Negative control: ``variant`` built as the standard model (its ablation switch ignored), so
    its runs in the variables ``names`` are the standard model's, seed by seed."""
    def control(data: xr.Dataset) -> xr.Dataset:
        variants = [str(v) for v in data.variant.values]
        source, target = variants.index("standard"), variants.index(variant)
        changes = {}
        for name in names:
            axis = data[name].dims.index("variant")
            values = data[name].values.copy()
            np.moveaxis(values, axis, 0)[target] = np.moveaxis(values, axis, 0)[source]
            changes[name] = data[name].copy(data=values)
        return data.assign(changes)
    return control


CLAIMS = ClaimSet()


@CLAIMS.rule("no residual: catastrophic drift ({stage})",
             Ref("2408.09523v2", REF_WHERE + ": 'without residual connections ... catastrophic representational drift'"),
             control=_ablation_ignored("no_residual", ("drift",)))  # no_residual keeps its residual adds
def _drift_claims(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    return [_drift_claim(p, data, stage, run.quick) for stage in ("init", "trained")]


@CLAIMS.rule("no LayerNorm: explosive training",
             Ref("2408.09523v2", REF_WHERE + ": 'without layer normalisation ... unstable, explosive training dynamics'"),
             control=_ablation_ignored("no_norm", ("grad_norm", "first_nonfinite_step")))  # no_norm keeps its LayerNorms
def _explosion(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    first_nonfinite = data.first_nonfinite_step.values
    growth = _growth_table(data.grad_norm.values, first_nonfinite)  # (variants, lrs, seeds)
    claim_lr = _index([float(lr) for lr in data.learning_rate.values], p.claim_learning_rate)
    return _explosion_claim(p, growth[:, claim_lr], first_nonfinite[:, claim_lr], run.quick)


def _drift_claim(p: Params, data: xr.Dataset, stage: str, quick: bool) -> Verdict:
    final = data.drift.sel(stage=stage).values[:, :, -1]  # (variant, seed)
    standard, no_residual = final[0], final[1]
    difference = no_residual - standard
    mean = float(np.nanmean(difference))
    runs = int(np.isfinite(difference).sum())
    se = float(np.nanstd(difference, ddof=1) / math.sqrt(runs)) if runs > 1 else math.nan
    s_mean, s_se = _mean_se(standard)
    r_mean, r_se = _mean_se(no_residual)
    where = "at random initialisation" if stage == "init" else f"after {p.steps} steps at lr {p.drift_learning_rate:g}"
    return verdict(
        mean, f"> {p.drift_margin:g} (final-layer drift, no_residual - standard)",
        runs == p.seeds and mean > p.drift_margin,
        detail=(f"{where}; depth {p.depth}, dim {p.dim}; final-layer drift 1 - mean cos(u^L, u^0): no_residual "
                f"{r_mean:.3f} ± {r_se:.3f}, standard {s_mean:.3f} ± {s_se:.3f} (mean ± s.e. over {p.seeds} "
                f"seeds); paired difference {mean:.3f} ± {se:.3f} over {runs} runs"
                + (" (quick sizes: indicative only)" if quick else "")),
        labels={"stage": stage},
    )


def _explosion_claim(p: Params, growth: np.ndarray, first_nonfinite: np.ndarray, quick: bool) -> Verdict:
    standard, no_norm = np.log10(growth[0]), np.log10(growth[2])
    with np.errstate(invalid="ignore"):
        difference = no_norm - standard  # inf if only no_norm diverged, nan if both did
    explosive = int(np.sum(difference > p.growth_margin))
    needed = p.seeds // 2 + 1
    return verdict(
        explosive, f">= {needed} of {p.seeds} paired seeds with log10 G(no_norm) - log10 G(standard) > {p.growth_margin:g}",
        explosive >= needed,
        detail=(f"Adam lr {p.claim_learning_rate:g} for both, {p.steps} steps, depth {p.depth}, dim {p.dim}; "
                f"G = max_t |grad_t| / |grad_0| (inf: non-finite step); log10 G no_norm {_fmt(no_norm)}, standard "
                f"{_fmt(standard)}; diverged runs no_norm {int((first_nonfinite[2] >= 0).sum())}/{p.seeds}, "
                f"standard {int((first_nonfinite[0] >= 0).sum())}/{p.seeds}"
                + (" (quick sizes: indicative only)" if quick else "")),
    )


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join("inf" if np.isinf(x) else f"{x:.2f}" for x in values) + "]"


@register(
    "stabilizers",
    title="Residual connections and LayerNorm as stabilisers: drift per layer, explosive training",
    summary="drift and CKA per layer without residuals / without LayerNorm, random-init and trained; gradient growth and divergences over seeds",
    reference=REFERENCE,
    params=Params,
    quick={"depth": 4, "steps": 60, "learning_rates": [1e-2], "drift_learning_rate": 1e-2, "evaluation_examples": 64},
    claims=CLAIMS,
    variants=[{"depth": "6"}, {"dim": "32"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    with torch_threads(p.num_threads or None):
        return _run(p, ctx)


def _run(p: Params, ctx: RunContext) -> Result:
    device = ctx.device  # float32 training whatever --dtype says; similarities in float64
    (train_inputs, train_labels), (test_inputs, test_labels) = _data(p, ctx)
    train_set = (train_inputs.to(device), train_labels.to(device))
    test_set = (test_inputs.to(device), test_labels.to(device))
    evaluation = test_set[0][:p.evaluation_examples]
    variants, lrs, layers = list(VARIANTS), list(p.learning_rates), p.depth + 1
    shape_similarity = (len(variants), p.seeds, layers)
    drift = {stage: np.full(shape_similarity, np.nan) for stage in ("init", "trained")}
    cka = {stage: np.full(shape_similarity, np.nan) for stage in ("init", "trained")}
    steps_drift = {stage: np.full((len(variants), p.seeds, p.depth), np.nan) for stage in ("init", "trained")}
    accuracy = np.full((len(variants), p.seeds), np.nan)
    curves = {name: np.full((len(variants), len(lrs), p.seeds, p.steps), np.nan)
              for name in ("loss", "grad_norm", "activation_rms")}
    first_nonfinite = np.full((len(variants), len(lrs), p.seeds), -1, dtype=np.int64)
    drift_lr = _index(lrs, p.drift_learning_rate)
    for s in range(p.seeds):
        weight_seed, order_seed = ctx.stream_seed(10 * s + 2), ctx.stream_seed(10 * s + 3)
        for v, variant in enumerate(variants):
            drift["init"][v, s], cka["init"][v, s], steps_drift["init"][v, s] = _similarity(
                _model(p, variant, weight_seed, device), evaluation)
            for k, lr in enumerate(lrs):
                model = _model(p, variant, weight_seed, device)
                order = torch.Generator().manual_seed(order_seed)  # same minibatches for every variant and rate
                epochs = math.ceil(p.steps * p.batch_size / len(train_set[1])) + 1
                log = fit(model, train_set, epochs=epochs, batch_size=p.batch_size, learning_rate=lr,
                          generator=order, max_steps=p.steps, schedule="constant")
                for name in curves:
                    values = np.asarray(getattr(log, name), dtype=float)[: p.steps]
                    curves[name][v, k, s, : values.size] = values
                if log.first_nonfinite_step is not None:
                    first_nonfinite[v, k, s] = log.first_nonfinite_step
                elif k == drift_lr:
                    drift["trained"][v, s], cka["trained"][v, s], steps_drift["trained"][v, s] = _similarity(
                        model, evaluation)
                    accuracy[v, s] = evaluate(model, *test_set)[1]

    metrics: dict = {}
    for v, variant in enumerate(variants):
        for stage, suffix in (("init", ""), ("trained", "_trained")):
            for name, values in (("drift", drift[stage]), ("cka", cka[stage]), ("step_drift", steps_drift[stage])):
                mean, se = _mean_se(values[v])
                metrics[f"{name}{suffix}_{variant}"] = mean.tolist()
                metrics[f"{name}{suffix}_se_{variant}"] = se.tolist()
        metrics[f"test_accuracy_{variant}"] = float(np.nanmean(accuracy[v])) if np.isfinite(accuracy[v]).any() else math.nan
        metrics[f"test_accuracies_{variant}"] = accuracy[v].tolist()

    growth = _growth_table(curves["grad_norm"], first_nonfinite)  # (variants, lrs, seeds)
    activation_growth = _growth_table(curves["activation_rms"], first_nonfinite)
    with warnings.catch_warnings():  # diverged runs: all-NaN tails, replaced by inf below
        warnings.simplefilter("ignore", RuntimeWarning)
        final_loss = np.where(first_nonfinite >= 0, np.inf, np.nanmean(curves["loss"][..., -10:], axis=-1))
    claim_lr = _index(lrs, p.claim_learning_rate)
    for v, variant in enumerate(variants):
        g = growth[v, claim_lr]
        finite = np.log10(g[np.isfinite(g)])
        metrics[f"grad_norm_growth_{variant}"] = float(np.median(g))
        metrics[f"grad_norm_growths_{variant}"] = g.tolist()
        metrics[f"log10_grad_norm_growth_{variant}"] = float(finite.mean()) if finite.size else math.nan
        metrics[f"log10_grad_norm_growth_se_{variant}"] = (float(finite.std(ddof=1) / math.sqrt(finite.size))
                                                           if finite.size > 1 else math.nan)
        metrics[f"diverged_runs_{variant}"] = int((first_nonfinite[v, claim_lr] >= 0).sum())
        metrics[f"first_nonfinite_steps_{variant}"] = [int(x) if x >= 0 else None for x in first_nonfinite[v, claim_lr]]
        metrics[f"activation_growth_{variant}"] = float(np.median(activation_growth[v, claim_lr]))
        metrics[f"final_loss_{variant}"] = float(np.median(final_loss[v, claim_lr]))
        metrics[f"sweep_diverged_{variant}"] = (first_nonfinite[v] >= 0).sum(-1).tolist()
        metrics[f"sweep_median_log10_growth_{variant}"] = np.log10(np.median(growth[v], axis=-1)).tolist()
        metrics[f"sweep_final_loss_{variant}"] = np.median(final_loss[v], axis=-1).tolist()
    metrics["seeds"] = p.seeds
    metrics["evaluation_examples"] = int(evaluation.shape[0])

    figures = {
        "drift_per_layer": drift_figure(drift, cka, steps_drift, variants, p),
        "training_curves": training_figure(curves, first_nonfinite, variants, lrs, p),
    }
    data = xr.Dataset(
        {
            "drift": (("stage", "variant", "seed", "layer"), np.stack([drift["init"], drift["trained"]])),
            "cka": (("stage", "variant", "seed", "layer"), np.stack([cka["init"], cka["trained"]])),
            "step_drift": (("stage", "variant", "seed", "block"), np.stack([steps_drift["init"], steps_drift["trained"]])),
            "loss": (("variant", "learning_rate", "seed", "step"), curves["loss"]),
            "grad_norm": (("variant", "learning_rate", "seed", "step"), curves["grad_norm"]),
            "activation_rms": (("variant", "learning_rate", "seed", "step"), curves["activation_rms"]),
            "first_nonfinite_step": (("variant", "learning_rate", "seed"), first_nonfinite),
            "test_accuracy": (("variant", "seed"), accuracy),
        },
        coords={"stage": ["init", "trained"], "variant": variants, "seed": np.arange(p.seeds),
                "layer": np.arange(layers), "block": np.arange(1, layers), "learning_rate": lrs, "step": np.arange(p.steps)},
        attrs={"first_nonfinite_step": "-1: none", "trained": f"after {p.steps} Adam steps at lr {p.drift_learning_rate}",
               "dtype": "float32 training, float64 similarities"},
    )
    return Result(params={"training_dtype": "float32"}, metrics=metrics, data=data, figures=figures)


def _growth_table(series: np.ndarray, first_nonfinite: np.ndarray) -> np.ndarray:
    """``max_t s_t / s_0`` per run over finite steps; ``inf`` for runs that hit a non-finite step."""
    out = np.empty(series.shape[:-1])
    for index in np.ndindex(*out.shape):
        if first_nonfinite[index] >= 0:
            out[index] = math.inf
            continue
        run = series[index]
        run = run[np.isfinite(run)]
        out[index] = run.max() / run[0] if run.size else math.nan
    return out


# ----------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------
def drift_figure(drift: dict, cka: dict, steps_drift: dict, variants: list[str], p: Params):
    """Drift to the input, drift per block and CKA per layer, random init and trained; mean ± s.e."""
    with style():
        fig = new_figure((10.0, 8.8))
        axes = fig.subplots(3, 2, sharex=True)
        layers = np.arange(p.depth + 1)
        rows = (("drift  1 - mean cos(u^l, u^0)", drift, layers),
                ("block drift  1 - mean cos(u^l, u^(l-1))", steps_drift, layers[1:]),
                ("linear CKA(u^l, u^0)", cka, layers))
        for column, stage in enumerate(("init", "trained")):
            for row, (name, table, x) in enumerate(rows):
                ax = axes[row, column]
                for v, variant in enumerate(variants):
                    mean, se = _mean_se(table[stage][v])
                    ax.plot(x, mean, marker="o", markersize=3, color=f"C{v}", label=VARIANT_LABEL[variant])
                    ax.fill_between(x, mean - np.nan_to_num(se), mean + np.nan_to_num(se), color=f"C{v}",
                                    alpha=0.2, linewidth=0)
                ax.set_ylabel(name)
                ax.grid(True)
                if row == 0:
                    title = ("random initialisation" if stage == "init"
                             else f"trained ({p.steps} steps, lr {p.drift_learning_rate:g})")
                    ax.set_title(f"{title}; {p.seeds} seeds, band ± s.e.")
            axes[-1, column].set_xlabel("layer l")
        axes[0, 0].legend()
    return settle(fig)


def training_figure(curves: dict, first_nonfinite: np.ndarray, variants: list[str], lrs: list[float], p: Params):
    """Per learning rate (rows): loss, gradient norm, activation RMS against step; one line per run."""
    with style():
        fig = new_figure((11.5, 2.9 * len(lrs) + 0.4))
        axes = np.atleast_2d(fig.subplots(len(lrs), 3, sharex=True, squeeze=False))
        steps = np.arange(p.steps)
        names = (("loss", "training loss"), ("grad_norm", "gradient norm"), ("activation_rms", "RMS of last stream"))
        for k, lr in enumerate(lrs):
            for column, (name, label) in enumerate(names):
                ax = axes[k, column]
                for v, variant in enumerate(variants):
                    for s in range(p.seeds):
                        ax.plot(steps, curves[name][v, k, s], color=f"C{v}", linewidth=0.9, alpha=0.8,
                                label=VARIANT_LABEL[variant] if s == 0 else None)
                        if first_nonfinite[v, k, s] >= 0:
                            ax.axvline(first_nonfinite[v, k, s], color=f"C{v}", linestyle=":", linewidth=1)
                ax.set_yscale("log")
                ax.set_ylabel(label)
                ax.grid(True)
                ax.set_title(f"lr {lr:g}" + (" (claim)" if math.isclose(lr, p.claim_learning_rate) else ""))
                if k == len(lrs) - 1:
                    ax.set_xlabel("step")
        axes[0, 0].legend()
    return settle(fig)
