"""Drift and linear CKA against closed forms, and a tiny run of the stabilizers experiment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenswarm.experiments import load_for, run_experiment
from tokenswarm.experiments.stabilizers import (
    _growth_table,
    layer_similarity,
    linear_cka,
    token_drift,
)


def _random(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal(d, seed):
    q, r = torch.linalg.qr(_random((d, d), seed))
    return q * torch.sign(torch.diagonal(r))


def test_cka_of_a_representation_with_itself_is_one_and_invariances_hold():
    x = _random((200, 12), 0)
    y = torch.tanh(x @ _random((12, 7), 1))
    assert float(linear_cka(x, x)) == pytest.approx(1.0, abs=1e-12)
    value = float(linear_cka(x, y))
    assert 0 < value < 1
    q = _orthogonal(12, 2)
    assert float(linear_cka(x @ q * 3.7, y)) == pytest.approx(value, abs=1e-12)  # orthogonal map, isotropic scale
    assert float(linear_cka(x + 5.0, y - 2.0)) == pytest.approx(value, abs=1e-12)  # column centring
    assert float(linear_cka(y, x)) == pytest.approx(value, abs=1e-12)  # symmetric
    # not invariant to anisotropic scaling (the checks above are not vacuous)
    stretched = x * torch.linspace(0.1, 10, 12, dtype=torch.float64)
    assert abs(float(linear_cka(stretched, y)) - value) > 1e-3


def test_cka_closed_form_for_a_subset_of_orthogonal_features():
    """X with centred orthogonal columns of norms s_k, Y = first k columns: CKA = sqrt(Σ_{i<=k} s⁴ / Σ s⁴)."""
    m, d, k = 64, 6, 2
    basis, _ = torch.linalg.qr(_random((m, d + 1), 3))
    # orthonormal columns orthogonal to the constant vector: project the ones direction out first
    ones = torch.ones(m, 1, dtype=torch.float64) / math.sqrt(m)
    columns = basis - ones @ (ones.T @ basis)
    columns, _ = torch.linalg.qr(columns)
    scales = torch.tensor([3.0, 0.5, 2.0, 1.0, 1.5, 0.7], dtype=torch.float64)
    x = columns[:, :d] * scales
    expected = math.sqrt(float((scales[:k] ** 4).sum() / (scales ** 4).sum()))
    assert float(linear_cka(x, x[:, :k])) == pytest.approx(expected, abs=1e-12)


def test_cka_undefined_for_constant_and_checks_shapes():
    x = _random((10, 3), 4)
    assert math.isnan(float(linear_cka(x, torch.ones(10, 2, dtype=torch.float64))))
    with pytest.raises(ValueError, match="samples"):
        linear_cka(x, x[:5])


def test_drift_closed_forms():
    x = _random((4, 9, 5), 5)
    assert float(token_drift(x, x)) == pytest.approx(0.0, abs=1e-12)
    assert float(token_drift(x, 2.5 * x)) == pytest.approx(0.0, abs=1e-12)  # positive rescaling: no drift
    assert float(token_drift(x, -x)) == pytest.approx(2.0, abs=1e-12)
    # rotate every token by theta in the plane of coordinates 0, 1: tokens in that plane drift 1 - cos theta
    theta = 0.7
    plane = torch.zeros(4, 9, 5, dtype=torch.float64)
    plane[..., :2] = x[..., :2]
    rotation = torch.eye(5, dtype=torch.float64)
    rotation[:2, :2] = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
                                         dtype=torch.float64)
    assert float(token_drift(plane, plane @ rotation.T)) == pytest.approx(1 - math.cos(theta), abs=1e-12)
    # orthogonal tokens: drift 1
    e0, e1 = torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)
    e0[..., 0], e1[..., 1] = 1.0, 1.0
    assert float(token_drift(e0, e1)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        token_drift(x, x[:, :3])


def test_layer_similarity_lists():
    x = _random((3, 4, 6), 6)
    drift, cka = layer_similarity([x, x @ _orthogonal(6, 7), torch.relu(x)])
    assert drift.shape == cka.shape == (3,)
    assert drift[0] == pytest.approx(0) and cka[0] == pytest.approx(1) and cka[1] == pytest.approx(1)
    assert drift[1] > 0.1  # rotated tokens drift but keep CKA 1


def test_growth_table_counts_divergence_as_infinite():
    series = np.array([[[2.0, 4.0, 3.0], [1.0, 1.0, np.nan]]])
    first = np.array([[-1, 2]])
    table = _growth_table(series, first)
    assert table[0, 0] == pytest.approx(2.0) and math.isinf(table[0, 1])


def test_tiny_run(tmp_path):
    load_for("stabilizers")
    overrides = {"dim": 8, "depth": 3, "heads": 2, "seeds": 2, "steps": 4, "learning_rates": [1e-3, 5e-3],
                 "drift_learning_rate": 1e-3, "claim_learning_rate": 5e-3, "evaluation_examples": 16}
    result, outputs = run_experiment("stabilizers", overrides, quick=True, seed=0, out_dir=tmp_path)
    metrics = result.metrics
    for variant in ("standard", "no_residual", "no_norm"):
        for name in ("drift", "cka", "drift_trained", "cka_trained"):
            values = metrics[f"{name}_{variant}"]
            assert len(values) == 4
            assert values[0] == pytest.approx(0.0 if name.startswith("drift") else 1.0, abs=1e-9)
        assert len(metrics[f"step_drift_{variant}"]) == 3 and len(metrics[f"step_drift_trained_{variant}"]) == 3
        # the first block's drift is the layer-1 drift to the input
        assert metrics[f"step_drift_{variant}"][0] == pytest.approx(metrics[f"drift_{variant}"][1], abs=1e-12)
        assert all(0 <= c <= 1 + 1e-12 for c in metrics[f"cka_{variant}"])
        assert metrics[f"diverged_runs_{variant}"] in (0, 1, 2)
        assert len(metrics[f"grad_norm_growths_{variant}"]) == 2
        assert all(g >= 1 for g in metrics[f"grad_norm_growths_{variant}"])  # max over steps / first step
        assert len(metrics[f"sweep_diverged_{variant}"]) == 2
    assert len(result.claims) == 3
    assert result.data["loss"].shape == (3, 2, 2, 4)
    assert any(path.endswith("drift_per_layer.png") for path in outputs)
    assert any(path.endswith("training_curves.png") for path in outputs)


def test_params_validation():
    load_for("stabilizers")
    with pytest.raises(ValueError, match="claim_learning_rate"):
        run_experiment("stabilizers", {"learning_rates": [1e-3], "drift_learning_rate": 1e-3}, quick=False,
                       out_dir="/nonexistent-unused", save=False)
