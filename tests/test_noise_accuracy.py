"""The trainable deep Transformer and the noise-accuracy experiment (2601.21942 accuracy claim)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenswarm.experiments import load_for, run_experiment
from tokenswarm.fields import Attention
from tokenswarm.nets.trainable import TrainableTransformer
from tokenswarm.sphere import effective_beta, retract


def _model(value="random", batch_shape=(), layers=4, d=8, mlp_width=0, seed=0):
    model = TrainableTransformer(3, 5, 4, d=d, layers=layers, batch_shape=batch_shape, mlp_width=mlp_width)
    model.initialise(torch.Generator().manual_seed(seed), value=value)
    return model


@pytest.mark.parametrize("mlp_width", [0, 6])
def test_shapes_and_sphere(mlp_width):
    model = _model(batch_shape=(2, 3), mlp_width=mlp_width)
    inputs = torch.rand(2, 1, 7, 5, 3)  # broadcast over the variants axis
    tokens = model.features(inputs)
    assert tokens.shape == (2, 3, 7, 5, 8)
    assert torch.allclose(tokens.norm(dim=-1), torch.full((), math.sqrt(8.0)), atol=1e-5)
    assert model(inputs).shape == (2, 3, 7, 4)
    assert model(torch.rand(7, 5, 3)).shape == (2, 3, 7, 4)


def test_zero_value_matrices_remove_the_attention_residual():
    model = _model(value="zero", layers=6)
    inputs = torch.rand(9, 5, 3)
    embedded = model.norm(inputs @ model.embedding.mT + model.position)
    features = model.features(inputs)
    assert torch.allclose(features, embedded, atol=1e-6)
    expected = embedded.mean(-2) @ model.readout.mT + model.readout_bias
    assert torch.allclose(model(inputs), expected, atol=1e-6)
    # ... and random V does change the tokens (the check above is not vacuous)
    random_model = _model(value="random", layers=6)
    assert (random_model.features(inputs) - random_model.embed(inputs)).abs().max() > 1e-2


def test_batched_models_share_everything_but_v_and_match_single_models():
    single = _model(value="random", seed=3)
    batched = TrainableTransformer(3, 5, 4, d=8, layers=4, batch_shape=(2,))
    with torch.no_grad():
        for (_, b), (_, s) in zip(batched.named_parameters(), single.named_parameters(), strict=True):
            b[0] = s
            b[1] = s
    batched.set_value("zero", index=(1,))
    inputs = torch.rand(6, 5, 3)
    out = batched(inputs)
    assert torch.allclose(out[0], single(inputs), atol=1e-5)
    assert not torch.allclose(out[0], out[1], atol=1e-3)


@pytest.mark.parametrize("value", ["random", "identity", "scaled"])
def test_layer_is_one_attention_field_step_with_converted_beta(value):
    d, layers = 16, 9
    model = _model(value=value, layers=layers, d=d, seed=1)
    x = model.embed(torch.rand(4, 5, 3))  # radius sqrt(d)
    k = 2
    unit = x / math.sqrt(d)
    # RMSNorm radius sqrt(d), logits <Qx, Kx>/sqrt(d): unit-sphere beta = s r² = sqrt(d)
    beta = effective_beta(1 / math.sqrt(d), math.sqrt(d))
    assert beta == pytest.approx(math.sqrt(d))
    field = Attention(beta, Q=model.query[k].detach(), K=model.key[k].detach(), V=model.value[k].detach(),
                      backend="dense")
    h = 1.0 / layers
    expected = retract(unit + math.sqrt(h) * field.output(0.0, unit))
    with torch.no_grad():
        got = model.layer(x, k) / math.sqrt(d)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    # the conversion matters: beta = 1 on the unit sphere gives a different step
    wrong = retract(unit + math.sqrt(h) * Attention(1.0, Q=field.Q, K=field.K, V=field.V).output(0.0, unit))
    assert (got - wrong).abs().max() > 1e-4


def test_value_initialisations():
    d, layers = 8, 16
    random_model = _model("random", layers=layers, d=d)
    values = random_model.value.detach()
    assert values.mean().abs() < 0.02
    assert values.var().item() == pytest.approx(1 / d, rel=0.1)
    identity = _model("identity", layers=layers, d=d).value.detach()
    assert torch.allclose(identity, torch.eye(d).expand(layers, d, d) / math.sqrt(layers))
    assert torch.count_nonzero(_model("zero", layers=layers, d=d).value) == 0
    with pytest.raises(ValueError, match="value must be one of"):
        random_model.initialise(value="ones")


def test_quick_experiment_runs_with_finite_metrics(tmp_path):
    load_for("noise-accuracy")
    result, outputs = run_experiment("noise-accuracy", {}, quick=True, out_dir=tmp_path)
    metrics = result.metrics
    assert result.claims, "the experiment must state its claim"
    names = [claim.name for claim in result.claims]
    assert any("suppressed" in name for name in names)
    for task in result.params["tasks"]:
        for key in ("accuracy_random", "accuracy_suppressed", "difference_suppressed", "ci_low_suppressed",
                    "ci_high_suppressed", "initial_loss_random", "train_loss_suppressed", "seconds_per_run"):
            value = metrics[f"{task}_{key}"]
            assert math.isfinite(value), (task, key, value)
        assert 0.0 <= metrics[f"{task}_accuracy_random"] <= 1.0
        low, high = metrics[f"{task}_ci_low_suppressed"], metrics[f"{task}_ci_high_suppressed"]
        assert low <= metrics[f"{task}_difference_suppressed"] <= high
        differences = np.array(metrics[f"{task}_accuracies_random"]) - np.array(metrics[f"{task}_accuracies_suppressed"])
        assert np.allclose(differences, metrics[f"{task}_differences_suppressed"])
    assert any(path.endswith(".png") for path in outputs)
