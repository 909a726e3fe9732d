"""Information flow through depth: a trained digits ViT and its fitted master PDE.

(2408.09523 v1; docs/theory/master_pde.md §6.)

2408.09523 v1 combines its PDE with the information bottleneck; its estimators and numbers are
not available, so this is **our protocol**. Per layer ``l = 0..L`` (``T_0`` = the embedded
tokens, ``T_L`` = the last block's output before the final norm), with ``T_l`` the flattened
``n × d`` state of one image:

* ``I(X; T_l)`` and ``I(T_l; Y)`` (nats) on the ``eval_images`` held-out test images, ``X`` the
  image (uniform over the evaluated set), ``Y`` its label, by several estimators
  (:mod:`tokenswarm.metrics.information`; biases measured in ``tests/test_information.py``):

  - ``noise_x_upper`` / ``noise_x_lower``: Kolchinsky–Tracey KL / Bhattacharyya bounds on
    ``I(X; T_l + σ_l ξ)``, ``σ_l = noise_std · sqrt(E|T_l - E T_l|²)`` (the noise is relative to
    each layer's spread, so a layer's scale does not decide its information);
  - ``noise_y``: ``I(T_l + σ_l ξ; Y)`` with the KL kernel;
  - ``knn_y``: Ross's k-NN estimator of ``I(T_l; Y)`` (no noise, ``k = 3``);
  - ``probe_y``: ``H(Y) - CE`` of a logistic probe trained on the PDE-fitting training images,
    evaluated on the held-out ones (a lower bound on ``I(T_l; Y)``);
  - ``binned_x`` / ``binned_y``: plug-in entropies after 30 equal-width bins per coordinate
    (saturates at ``log N`` when every image has its own cell: the caveat of docs/theory/master_pde.md §6.3).

* The data-processing check: ``X -> T_l -> T_{l+1}`` is a Markov chain for the deterministic
  network *and* for the PDE trajectory, so the exact ``I(X; T_l)`` and ``I(T_l; Y)`` are
  non-increasing in ``l``. An estimate "passes" when no step is a significant increase:
  ``est_{l+1} - est_l <= 2 s.e.`` of the paired per-sample differences (all estimators but
  binning are means of per-sample terms on the same images; binning: tolerance 0). The estimates are different
  quantities from the exact ones (noise added per layer is not propagated; the probe bound
  tightens as classes become linearly separable), so a failure says which estimator breaks
  the inequality, not that the inequality fails.
* Gradient norms ``|∂ℓ/∂u^l|_F`` per example (cross-entropy of the classifier on the final state,
  mean ± s.e. over the held-out images) for the ViT and for the PDE trajectory (the PDE's final
  state goes through the ViT's final LayerNorm and head).
* Perturbation sensitivity: ``u^0 + ε |u^0|_F ξ/|ξ|_F`` (``ξ`` Gaussian, one draw per image) for
  ``ε`` in ``epsilons``; per layer the relative response ``|Δu^l|_F / |u^l|_F`` and of the logits,
  and the fraction of changed predictions; ``gain = response / ε`` at the smallest ``ε``.

The PDE is the ``learned`` form of the ``pde-vs-transformer`` experiment (same structure and
fitting, AdamW with weight decay 0.05), fitted on ``fit_images`` training images. Everything
runs in float32, with ``threads`` torch threads (default 1; see ``pde-vs-transformer``).

Claims (per model: ``vit`` and ``pde``): the data-processing check of ``I(X; T_l)`` by the
noise KL bound, of ``I(T_l; Y)`` by k-NN and by the noise estimator; and "linear response at small
ε" (log-log slope of the output response between the two smallest ``ε`` in [0.8, 1.2]).
Metrics are lists over layers ``0..L`` (``mi[model][estimator] = {"value", "se"}``), plus
``dpi[model][estimator]`` (bool), ``gradient_norm[model]``, ``perturbation[model]``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from scipy import stats

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, verdict
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.meanfield.transformer_fit import digits_vit_modality, fit_modality_pde
from tokenswarm.metrics.information import (
    Estimate,
    binned_mi,
    entropy_of_labels,
    gaussian_noise_mi,
    knn_label_mi,
    probe_mi,
)
from tokenswarm.nets.transformer import TransformerConfig
from tokenswarm.plots._common import new_figure, settle, style
from tokenswarm.runtime.threads import torch_threads

__all__ = ["Params", "run", "dpi_holds", "layer_representations", "gradient_norms", "perturbation_response"]

REFERENCE = "2408.09523 v1 (information bottleneck, gradient flow, perturbations); protocol ours, docs/theory/master_pde.md §6"
ESTIMATORS = ("noise_x_upper", "noise_x_lower", "noise_y", "knn_y", "probe_y", "binned_x", "binned_y")
CLAIMED = (("noise_x_upper", "I(X; T_l), noise KL bound"), ("knn_y", "I(T_l; Y), k-NN"),
           ("noise_y", "I(T_l; Y), noise KL"))


@dataclass
class Params:
    vit_dim: int = field(default=64, metadata={"min": 2, "help": "ViT width"})
    vit_depth: int = field(default=4, metadata={"min": 2, "help": "ViT blocks"})
    vit_heads: int = field(default=4, metadata={"min": 1, "help": "ViT heads"})
    vit_mlp_ratio: float = field(default=2.0, metadata={"min": 0, "help": "ViT MLP width / dim"})
    vit_epochs: int = field(default=20, metadata={"min": 1, "help": "ViT training epochs"})
    fit_images: int = field(default=600, metadata={"min": 10, "help": "training images: PDE fit and probe training"})
    eval_images: int = field(default=540, metadata={"min": 10, "help": "held-out test images (at most 540)"})
    fit_steps: int = field(default=600, metadata={"min": 1, "help": "PDE Adam steps"})
    fit_lr: float = field(default=3e-3, metadata={"min_exclusive": 0, "help": "PDE Adam learning rate"})
    weight_decay: float = field(default=0.05, metadata={"min": 0, "help": "PDE AdamW decoupled weight decay (as pde-vs-transformer)"})
    batch_size: int = field(default=64, metadata={"min": 1, "help": "PDE fit examples per step"})
    diffusion: bool = field(default=True, metadata={"help": "PDE diffusion term"})
    noise_std: float = field(default=0.5, metadata={"min_exclusive": 0, "help": "sigma_l / RMS spread of T_l"})
    knn_k: int = field(default=3, metadata={"min": 1, "help": "k of the k-NN estimator"})
    bins: int = field(default=30, metadata={"min": 2, "help": "bins per coordinate"})
    epsilons: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0], metadata={"min_exclusive": 0, "help": "relative perturbation sizes"})
    threads: int = field(default=1, metadata={"min": 0, "help": "torch intra-op threads during the run (0: leave as is); see module docs"})

    def __post_init__(self):
        TransformerConfig(dim=self.vit_dim, depth=self.vit_depth, heads=self.vit_heads, mlp_ratio=self.vit_mlp_ratio)


def dpi_holds(estimates: Sequence[Estimate], *, sigmas: float = 2.0) -> tuple[bool, list[float]]:
    """Non-increasing within ``sigmas`` standard errors: returns (holds, excess per step).

    ``excess_l = (est_{l+1} - est_l) - sigmas · se_l`` with ``se_l`` the standard error of the
    *paired* per-sample differences of the two layers' terms when both estimates carry them
    (same samples), else ``sqrt(se_l² + se_{l+1}²)`` (a NaN s.e. counts as 0: plug-in
    estimators must then not increase at all). The check holds when every excess is <= 0,
    i.e. no step shows a significant increase.
    """
    excess = []
    for a, b in zip(estimates[:-1], estimates[1:]):
        if a.terms is not None and b.terms is not None and a.terms.shape == b.terms.shape and a.terms.size > 1:
            difference = b.terms - a.terms
            se = float(difference.std(ddof=1) / math.sqrt(difference.size))
        else:
            se = math.sqrt(sum(0.0 if not np.isfinite(x) else x**2 for x in (a.se, b.se)))
        excess.append(b.value - a.value - sigmas * se)
    return all(e <= 0 for e in excess), excess


def layer_representations(model, pde, images: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """``{"vit": [T_0..T_L], "pde": [...]}``, each ``(N, n d)`` float32 (no gradients)."""
    with torch.no_grad():
        hidden = model.forward_tokens(images, return_hidden=True, return_attention=False).hidden
        trajectory = pde(hidden[0]).states
    return {"vit": [h.flatten(1) for h in hidden], "pde": [s.flatten(1) for s in trajectory]}


def _classify(model, state: torch.Tensor) -> torch.Tensor:
    return model.classify(model.transformer.final_norm(state))


def gradient_norms(model, pde, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-example ``|∂ℓ_i/∂u_i^l|_F``, ``(L + 1, N)``, for the ViT and the PDE trajectory."""
    out = {}
    u0 = model.embed(images).detach()
    for name in ("vit", "pde"):
        start = u0.clone().requires_grad_(True)
        if name == "vit":
            states = model.transformer(start, return_hidden=True).hidden
        else:
            states = pde(start).states
        for state in states[1:]:
            state.retain_grad()
        loss = F.cross_entropy(_classify(model, states[-1]), labels, reduction="sum")
        model.zero_grad(set_to_none=True)
        pde.zero_grad(set_to_none=True)
        loss.backward()
        grads = [start.grad] + [s.grad for s in states[1:]]
        out[name] = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).detach().cpu().numpy()
    model.zero_grad(set_to_none=True)
    pde.zero_grad(set_to_none=True)
    return out


def perturbation_response(model, pde, images: torch.Tensor, epsilons, generator: torch.Generator) -> dict:
    """Relative responses ``(eps, L + 1, N)`` of the states, ``(eps, N)`` of the logits, changed predictions."""
    with torch.no_grad():
        u0 = model.embed(images)
        xi = torch.randn(u0.shape, generator=generator).to(u0)
        xi = xi * (u0.flatten(1).norm(dim=1) / xi.flatten(1).norm(dim=1))[:, None, None]
        out = {}
        for name in ("vit", "pde"):
            def run(start):
                states = model.transformer(start, return_hidden=True).hidden if name == "vit" else pde(start).states
                return states, _classify(model, states[-1])

            base_states, base_logits = run(u0)
            states_response, logits_response, flips = [], [], []
            for eps in epsilons:
                states, logits = run(u0 + eps * xi)
                states_response.append(torch.stack([
                    (s - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1) for s, b in zip(states, base_states)]))
                logits_response.append((logits - base_logits).norm(dim=1) / base_logits.norm(dim=1))
                flips.append((logits.argmax(1) != base_logits.argmax(1)).double().mean())
            out[name] = {"states": torch.stack(states_response).cpu().numpy(),
                         "logits": torch.stack(logits_response).cpu().numpy(),
                         "flipped": torch.stack(flips).cpu().numpy()}
    return out


def _estimates(layers_fit: list[torch.Tensor], layers_eval: list[torch.Tensor], y_fit, y_eval, p: Params,
               ) -> dict[str, list[Estimate]]:
    out: dict[str, list[Estimate]] = {name: [] for name in ESTIMATORS}
    for t_fit, t_eval in zip(layers_fit, layers_eval):
        t = t_eval.double().cpu().numpy()
        spread = math.sqrt(((t - t.mean(0)) ** 2).sum(1).mean())
        sigma = p.noise_std * spread if spread > 0 else p.noise_std
        noise = gaussian_noise_mi(t, sigma, y_eval)
        knn = knn_label_mi(t, y_eval, k=p.knn_k)
        probe = probe_mi(t_fit.double().cpu().numpy(), y_fit, t, y_eval)
        binned = binned_mi(t, y_eval, bins=p.bins)
        for name, estimate in (("noise_x_upper", noise["x_upper"]), ("noise_x_lower", noise["x_lower"]),
                               ("noise_y", noise["y"]), ("knn_y", knn), ("probe_y", probe),
                               ("binned_x", binned["x"]), ("binned_y", binned["y"])):
            out[name].append(estimate)
    return out


def _figure(mi: dict, gradients: dict, perturbation: dict, epsilons, log_n: float, h_y: float):
    with style():
        fig = new_figure((13.0, 3.4))
        x_axes, y_axes, grad_axes, pert_axes = fig.subplots(1, 4)
        for index, model in enumerate(("vit", "pde")):
            layers = np.arange(len(mi[model]["noise_x_upper"]["value"]))
            line = "-" if model == "vit" else "--"
            for name, colour in (("noise_x_upper", "C0"), ("noise_x_lower", "C1"), ("binned_x", "C2")):
                e = mi[model][name]
                x_axes.errorbar(layers, e["value"], yerr=np.nan_to_num(e["se"]), color=colour, linestyle=line,
                                marker="o", label=f"{model} {name}")
            for name, colour in (("noise_y", "C0"), ("knn_y", "C3"), ("probe_y", "C4"), ("binned_y", "C2")):
                e = mi[model][name]
                y_axes.errorbar(layers, e["value"], yerr=np.nan_to_num(e["se"]), color=colour, linestyle=line,
                                marker="o", label=f"{model} {name}")
            g = gradients[model]
            grad_axes.errorbar(layers, g.mean(1), yerr=g.std(1, ddof=1) / math.sqrt(g.shape[1]), color=f"C{index}",
                               marker="o", label=model)
            response = perturbation[model]["logits"].mean(1)
            pert_axes.loglog(epsilons, response, marker="o", color=f"C{index}", label=f"{model} logits")
            pert_axes.loglog(epsilons, perturbation[model]["states"][:, -1].mean(1), marker="s", linestyle=":",
                             color=f"C{index}", label=f"{model} u^L")
        x_axes.axhline(log_n, color="0.5", linestyle=":", label="log N")
        y_axes.axhline(h_y, color="0.5", linestyle=":", label="H(Y)")
        x_axes.set_title("I(X; T_l) (nats)")
        y_axes.set_title("I(T_l; Y) (nats)")
        grad_axes.set_title("|dℓ/du^l| per example")
        grad_axes.set_yscale("log")
        pert_axes.loglog(epsilons, epsilons, color="0.5", linestyle=":", label="slope 1")
        pert_axes.set_title("relative response vs ε")
        for axes in (x_axes, y_axes, grad_axes):
            axes.set_xlabel("layer l")
            axes.grid(True)
        pert_axes.set_xlabel("ε")
        pert_axes.grid(True)
        for axes in (x_axes, y_axes, grad_axes, pert_axes):
            axes.legend(fontsize=6)
    return settle(fig)


def saved_estimates(data: xr.Dataset, model: str, estimator: str) -> list[Estimate]:
    """One estimator's per-layer estimates (value, s.e., per-sample terms where saved) from the dataset."""
    values, ses = data[f"{model}_{estimator}"].values, data[f"{model}_{estimator}_se"].values
    name = f"{model}_{estimator}_terms"
    terms = list(data[name].values) if name in data else [None] * len(values)
    return [Estimate(float(v), float(s), len(values) if t is None else len(t), estimator, t)
            for v, s, t in zip(values, ses, terms)]


def perturbation_summary(data: xr.Dataset, model: str) -> dict:
    """Log-log slope of the logit response between the two smallest ε, and the state gains at the smallest ε."""
    eps = data.epsilon.values
    order = np.argsort(eps)
    logits = data[f"{model}_logit_response"].values.mean(1)[order]
    slope = float(np.log(logits[1] / logits[0]) / np.log(eps[order][1] / eps[order][0])) if len(eps) > 1 else float("nan")
    gain = (data[f"{model}_state_response"].values.mean(2)[order[0]] / eps[order[0]]).tolist()
    return {"slope": slope, "logits": logits, "epsilons": eps[order], "gain": gain}


def _leaky_last_block(data: xr.Dataset, leak: float = 0.1) -> xr.Dataset:
    """Negative control: a last block whose state depends on more than its input (it leaks ``leak``
    nats into every sample), breaking data processing: each claimed estimator's last-layer
    per-sample terms, and so its value, rise by ``leak``."""
    changes = {}
    for model in ("vit", "pde"):
        for estimator, _ in CLAIMED:
            for name in (f"{model}_{estimator}", f"{model}_{estimator}_terms"):
                if name in data:
                    values = data[name].values.copy()
                    values[-1] += leak  # layer is the first dimension
                    changes[name] = data[name].copy(data=values)
    return data.assign(changes)


def _quadratic_response(data: xr.Dataset) -> xr.Dataset:
    """Negative control: models whose first-order response vanishes (zero Jacobian at the input),
    so the logit response grows like eps^2: the measured one times eps / eps_min."""
    scale = (data.epsilon.values / data.epsilon.values.min())[:, None]
    return data.assign({name: data[name].copy(data=data[name].values * scale)
                        for name in ("vit_logit_response", "pde_logit_response")})


CLAIMS = ClaimSet()


@CLAIMS.rule("{model}: {label} non-increasing in depth (no significant rise, family-wise level 5%)",
             Ref("2408.09523v1", "data-processing inequality, X -> T_l -> T_l+1 (docs/theory/master_pde.md §6.3)"),
             control=_leaky_last_block)
def _data_processing(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    y_eval = data.eval_label.values
    n_eval = len(y_eval)
    log_n, h_y = math.log(n_eval), entropy_of_labels(y_eval)
    # one-sided tests of every layer step of every verdict: Bonferroni at family-wise level 5%
    # (a fixed 2 s.e. per step failed 1-2 of 5 seeds by chance over the 12 steps at quick size)
    steps = 2 * len(CLAIMED) * max(1, len(saved_estimates(data, "vit", CLAIMED[0][0])) - 1)
    sigmas = float(stats.norm.ppf(1 - 0.05 / steps))
    verdicts = []
    for name in ("vit", "pde"):
        for estimator, label in CLAIMED:
            estimates = saved_estimates(data, name, estimator)
            holds, excess = dpi_holds(estimates, sigmas=sigmas)
            values, ses = [e.value for e in estimates], [e.se for e in estimates]
            verdicts.append(verdict(
                max(excess), f"every step: est_{{l+1}} - est_l - {sigmas:.2f} s.e.(paired difference) <= 0", holds,
                detail=(f"estimates per layer {[round(v, 4) for v in values]} ± "
                        f"{[round(s, 4) for s in ses]} (nats; N = {n_eval}, log N = {log_n:.3f}, "
                        f"H(Y) = {h_y:.3f}); the estimator is not the exact MI (module docs)"
                        + (" (quick sizes: indicative only)" if run.quick else "")),
                labels={"model": name, "label": label},
            ))
    return verdicts


@CLAIMS.rule("{model}: output responds linearly to small input perturbations",
             Ref("2408.09523v1", "perturbation sensitivity (methods ours)"), control=_quadratic_response)
def _linear_response(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    verdicts = []
    for name in ("vit", "pde"):
        s = perturbation_summary(data, name)
        verdicts.append(verdict(
            s["slope"], "log-log slope in [0.8, 1.2]", 0.8 <= s["slope"] <= 1.2,
            detail=f"relative logit response {s['logits'].round(6).tolist()} at eps {s['epsilons'].tolist()}; "
                   f"state gains |Δu^l|/|u^l|/ε at the smallest ε {np.round(s['gain'], 4).tolist()}",
            labels={"model": name},
        ))
    return verdicts


@register(
    "information-flow",
    title="Information plane, data-processing check, gradient norms and perturbation response per layer (ViT and fitted PDE)",
    summary="I(X; T_l), I(T_l; Y) per layer for the trained ViT and the fitted PDE (several estimators, biases measured), data-processing check, gradient norms, perturbation response",
    reference=REFERENCE,
    params=Params,
    quick={"vit_dim": 16, "vit_depth": 2, "vit_heads": 2, "vit_epochs": 2, "fit_images": 64, "eval_images": 80,
           "fit_steps": 15, "fit_lr": 1e-2, "batch_size": 32},
    claims=CLAIMS,
    variants=[{"noise_std": "0.25"}, {"diffusion": "false"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    with torch_threads(p.threads or None):
        return _run(p, ctx)


def _run(p: Params, ctx: RunContext) -> Result:
    from tokenswarm.nets.tasks import digits_dataset, train_digits_vit

    start = time.perf_counter()
    # The same streams as pde-vs-transformer (1: training, 2: fitting images, 3: random init,
    # 100: the PDE fit), so both experiments study the same model and fit at equal settings.
    config = TransformerConfig(dim=p.vit_dim, depth=p.vit_depth, heads=p.vit_heads, mlp_ratio=p.vit_mlp_ratio)
    trained = train_digits_vit(config, seed=ctx.stream_seed(1) % 2**31, epochs=p.vit_epochs, device=ctx.device)
    data = digits_vit_modality(
        trained, fit_count=p.fit_images, eval_count=p.eval_images,
        pick_seed=ctx.stream_seed(2), random_init_seed=ctx.stream_seed(3) % 2**31, device=ctx.device,
    )
    pde, report = fit_modality_pde(
        data, "learned", diffusion=p.diffusion, steps=p.fit_steps, lr=p.fit_lr, weight_decay=p.weight_decay,
        batch_size=p.batch_size, seed=ctx.stream_seed(100),
    )
    model = trained.model.eval()
    for parameter in list(model.parameters()) + list(pde.parameters()):
        parameter.requires_grad_(False)
    setup_seconds = time.perf_counter() - start

    train_images, train_labels = digits_dataset("train")
    pick = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(ctx.stream_seed(2)))[: p.fit_images]
    fit_images, fit_labels = train_images[pick].to(ctx.device), train_labels[pick].numpy()
    eval_images, eval_labels = trained.test_inputs[: p.eval_images], trained.test_labels[: p.eval_images]
    y_eval = eval_labels.cpu().numpy()

    fit_layers = layer_representations(model, pde, fit_images)
    eval_layers = layer_representations(model, pde, eval_images)
    estimates = {name: _estimates(fit_layers[name], eval_layers[name], fit_labels, y_eval, p) for name in ("vit", "pde")}
    dpi = {name: {est: dpi_holds(estimates[name][est]) for est in ESTIMATORS} for name in estimates}
    mi = {name: {est: {"value": [e.value for e in values], "se": [e.se for e in values]}
                 for est, values in per.items()} for name, per in estimates.items()}

    gradients = gradient_norms(model, pde, eval_images, eval_labels)
    perturbation = perturbation_response(model, pde, eval_images, p.epsilons,
                                         torch.Generator().manual_seed(ctx.stream_seed(6)))
    with torch.no_grad():
        pde_logits = _classify(model, pde(model.embed(eval_images)).final)
        pde_accuracy = float((pde_logits.argmax(1) == eval_labels).double().mean())

    n_eval = len(y_eval)
    log_n, h_y = math.log(n_eval), entropy_of_labels(y_eval)
    eps = np.asarray(p.epsilons)
    metrics: dict = {
        "mi": mi, "dpi": {m: {e: v[0] for e, v in d.items()} for m, d in dpi.items()},
        "dpi_excess": {m: {e: v[1] for e, v in d.items()} for m, d in dpi.items()},
        "log_n": log_n, "label_entropy": h_y, "eval_images": n_eval, "fit_images": int(p.fit_images),
        "vit_test_accuracy": trained.test_accuracy, "pde_test_accuracy": pde_accuracy,
        "pde_fit_relative_error": report.train_relative_error, "pde_diffusion": pde.describe()["diffusion"],
        "gradient_norm": {m: g.mean(1).tolist() for m, g in gradients.items()},
        "gradient_norm_se": {m: (g.std(1, ddof=1) / math.sqrt(g.shape[1])).tolist() for m, g in gradients.items()},
        "perturbation": {m: {"epsilons": eps.tolist(),
                             "states": v["states"].mean(2).tolist(),
                             "logits": v["logits"].mean(1).tolist(),
                             "flipped": v["flipped"].tolist()} for m, v in perturbation.items()},
        "setup_seconds": setup_seconds,
    }

    data = xr.Dataset(
        {
            **{f"{m}_{e}": (("layer",), np.asarray(mi[m][e]["value"])) for m in mi for e in ESTIMATORS},
            **{f"{m}_{e}_se": (("layer",), np.asarray(mi[m][e]["se"])) for m in mi for e in ESTIMATORS},
            **{f"{m}_gradient_norm": (("layer", "example"), gradients[m]) for m in gradients},
            **{f"{m}_state_response": (("epsilon", "layer", "example"), perturbation[m]["states"]) for m in perturbation},
            **{f"{m}_logit_response": (("epsilon", "example"), perturbation[m]["logits"]) for m in perturbation},
            **{f"{m}_{e}_terms": (("layer", f"{e}_sample"), np.stack([x.terms for x in estimates[m][e]]))
               for m in estimates for e in ESTIMATORS if estimates[m][e][0].terms is not None},
            "eval_label": (("example",), y_eval),
        },
        coords={"layer": np.arange(len(eval_layers["vit"])), "epsilon": eps, "example": np.arange(n_eval)},
        attrs={"units": "nats", "noise_std": p.noise_std},
    )
    for m in mi:
        for e in ESTIMATORS:
            data[f"{m}_{e}"].attrs.update(long_name=f"{m}: mutual information estimate {e}", units="nat")
            data[f"{m}_{e}_se"].attrs.update(long_name=f"{m}: standard error of {e}", units="nat")
    metrics["perturbation_gain"] = {name: perturbation_summary(data, name)["gain"] for name in ("vit", "pde")}
    figure = _figure(mi, gradients, perturbation, eps.tolist(), log_n, h_y)
    return Result(params={"dtype_used": "float32"}, metrics=metrics, data=data, figures={"information_flow": figure})
