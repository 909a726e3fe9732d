"""information-flow: the data-processing check, gradient norms, perturbation responses, a tiny run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tokenswarm.experiments import information_flow as flow
from tokenswarm.experiments import run_experiment
from tokenswarm.meanfield.token_pde import TokenPDE, TokenPDEConfig
from tokenswarm.metrics.information import Estimate
from tokenswarm.nets.tasks import digits_dataset, digits_vit
from tokenswarm.nets.transformer import TransformerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _estimate(terms):
    terms = np.asarray(terms, dtype=float)
    return Estimate(float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(terms.size)), terms.size, "test", terms)


def test_dpi_check_uses_paired_differences():
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 1.0, 400)  # large per-sample spread, shared by the layers
    decreasing = [_estimate(base - 0.1 * k) for k in range(4)]
    assert flow.dpi_holds(decreasing)[0]
    # a small but systematic increase is invisible to unpaired s.e. (~0.07) yet detected when paired
    increasing = [_estimate(base), _estimate(base + 0.05 + 0.01 * rng.standard_normal(400))]
    holds, excess = flow.dpi_holds(increasing)
    assert not holds and excess[0] > 0
    # noise around a constant: no significant increase
    flat = [_estimate(base + 0.01 * rng.standard_normal(400)) for _ in range(3)]
    assert flow.dpi_holds(flat)[0]
    # plug-in estimates (no terms, NaN s.e.): any increase fails
    plug = [Estimate(2.0, float("nan"), 10, "bin"), Estimate(2.0 + 1e-9, float("nan"), 10, "bin")]
    assert not flow.dpi_holds(plug)[0]


def _tiny_models():
    config = TransformerConfig(dim=8, depth=2, heads=2, mlp_ratio=2.0)
    model = digits_vit(config, seed=0).double().eval()
    pde = TokenPDE(TokenPDEConfig(dim=8, layers=2, heads=2, head_dim=4, hidden=16, norm="affine"),
                   generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    images, labels = digits_dataset("test")
    return model, pde, images[:6].double(), labels[:6]


def test_gradient_norms_match_finite_differences():
    model, pde, images, labels = _tiny_models()
    norms = flow.gradient_norms(model, pde, images, labels)
    assert norms["vit"].shape == (3, 6) and norms["pde"].shape == (3, 6)
    u0 = model.embed(images).detach()
    direction = torch.randn(u0.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for name in ("vit", "pde"):
        def loss(u, name=name):
            state = model.transformer(u, return_hidden=True).hidden[-1] if name == "vit" else pde(u).final
            return F.cross_entropy(flow._classify(model, state), labels, reduction="none")

        start = u0.clone().requires_grad_(True)
        grads = torch.autograd.grad(loss(start).sum(), start)[0]
        assert np.allclose(grads.flatten(1).norm(dim=1).numpy(), norms[name][0], rtol=1e-10)
        h = 1e-6
        numeric = (loss(u0 + h * direction) - loss(u0 - h * direction)) / (2 * h)
        assert torch.allclose(numeric, (grads * direction).sum((1, 2)), rtol=1e-5, atol=1e-8)


def test_perturbation_response_is_exact_at_the_input_and_linear_at_small_eps():
    model, pde, images, _ = _tiny_models()
    epsilons = [1e-6, 1e-5, 1e-1]
    out = flow.perturbation_response(model, pde, images, epsilons, torch.Generator().manual_seed(3))
    for name in ("vit", "pde"):
        states = out[name]["states"]  # (eps, layers + 1, N)
        assert states.shape == (3, 3, 6)
        assert np.allclose(states[:, 0], np.asarray(epsilons)[:, None], rtol=1e-9)  # |Δu^0|/|u^0| = eps
        ratio = out[name]["logits"][1] / out[name]["logits"][0]
        assert np.allclose(ratio, 10.0, rtol=1e-3)  # linear response
        assert out[name]["flipped"][0] == 0.0


def test_tiny_run(tmp_path):
    overrides = {"vit_dim": 8, "vit_depth": 2, "vit_heads": 2, "vit_epochs": 1, "fit_images": 30, "eval_images": 30,
                 "fit_steps": 2, "batch_size": 15, "epsilons": [1e-3, 1e-2]}
    result, outputs = run_experiment("information-flow", overrides, quick=True, seed=0, out_dir=tmp_path)
    m = result.metrics
    assert len(result.claims) == 8
    for model in ("vit", "pde"):
        for estimator in flow.ESTIMATORS:
            values = m["mi"][model][estimator]["value"]
            assert len(values) == 3 and all(np.isfinite(values))
        # every estimate of I(X; T) lies in [0, log N] up to sampling error
        assert all(-0.05 <= v <= math.log(30) + 1e-9 for v in m["mi"][model]["noise_x_upper"]["value"])
        lower, upper = m["mi"][model]["noise_x_lower"]["value"], m["mi"][model]["noise_x_upper"]["value"]
        assert all(a <= b + 1e-12 for a, b in zip(lower, upper))
        assert len(m["gradient_norm"][model]) == 3
    # layer 0 is the same tokens for both models
    assert m["mi"]["vit"]["knn_y"]["value"][0] == m["mi"]["pde"]["knn_y"]["value"][0]
    assert any(path.endswith("information_flow.png") for path in outputs)
