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


def test_noisy_identity_is_identity_plus_the_value_noise():
    d, layers = 8, 16
    identity = _model("identity", layers=layers, d=d).value.detach()
    noisy = _model("noisy_identity", layers=layers, d=d).value.detach()
    noise = noisy - identity
    assert noise.mean().abs() < 0.02
    assert noise.var().item() == pytest.approx(1 / d, rel=0.1)
    # sigma_v2 = 0: the deterministic model, bit for bit
    model = _model("identity", layers=layers, d=d)
    model.set_value("noisy_identity", sigma_v2=0.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(model.value.detach(), identity)


def _build(sigma_v2=None, seeds=3):
    from tokenswarm.experiments.noise_accuracy import Params, build_models

    p = Params(d=8, layers=4, sigma_v2=sigma_v2, seeds=seeds)
    return p, build_models(p, (seeds, 20, 16, 4), 10, [11, 12, 13][:seeds], [21, 22, 23][:seeds], "cpu")


def test_arms_share_every_weight_and_differ_only_by_the_noise_draw():
    p, model = _build()
    for name, parameter in model.named_parameters():
        if name != "value":
            assert torch.equal(parameter[:, 0], parameter[:, 1]), name
    values = model.value.detach()
    eye = torch.eye(p.d) / math.sqrt(p.layers)  # h^(1-a) I with a = 1/2
    assert torch.equal(values[:, 1], eye.expand_as(values[:, 1]))  # noise off: the deterministic model
    noise = values[:, 0] - values[:, 1]
    assert noise.var().item() == pytest.approx(1 / p.d, rel=0.2)
    assert not torch.allclose(noise[0], noise[1])  # seeds draw different noise
    _, silent = _build(sigma_v2=0.0)
    assert torch.equal(silent.value[:, 0], silent.value[:, 1])


def test_noise_scale_zero_gives_identical_arms_bit_for_bit(tmp_path):
    """With sigma_v2 = 0 the only difference between the arms is gone: same data, order, init."""
    load_for("noise-accuracy")
    overrides = {"sigma_v2": 0.0, "seeds": 2, "epochs": 2, "digits_train": 40, "bootstrap": 0}
    result, _ = run_experiment("noise-accuracy", overrides, quick=True, out_dir=tmp_path)
    metrics = result.metrics
    assert metrics["digits_accuracies_noise"] == metrics["digits_accuracies_deterministic"]
    assert metrics["digits_differences"] == [0.0, 0.0]
    assert metrics["digits_train_loss_noise"] == metrics["digits_train_loss_deterministic"]
    # ... while the default noise does change the trained models (the check above is not vacuous)
    noisy, _ = run_experiment("noise-accuracy", {**overrides, "sigma_v2": None}, quick=True,
                              out_dir=tmp_path / "noisy")
    assert noisy.metrics["digits_train_loss_noise"] != noisy.metrics["digits_train_loss_deterministic"]


def test_paired_interval_sign_test_and_bootstrap_on_known_differences():
    from tokenswarm.experiments.noise_accuracy import (
        bootstrap_interval,
        effect_verdict,
        paired_interval,
        sign_test,
    )

    differences = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    mean, low, high, p_value = paired_interval(differences)
    # mean 3, s.e. sqrt(2.5 / 5), t_{0.975, 4} = 2.7764451 (tables)
    half = 2.7764451 * math.sqrt(0.5)
    assert mean == pytest.approx(3.0)
    assert (low, high) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-6)
    # two-sided p of t = 3 / sqrt(0.5) = 4.2426 with 4 degrees of freedom: 0.01324 (tables)
    assert p_value == pytest.approx(0.01324, abs=2e-5)
    boot_low, boot_high = bootstrap_interval(differences, 4000, seed=0)
    assert 1.0 <= boot_low < 3.0 < boot_high <= 5.0
    assert boot_high - boot_low < high - low  # percentile bootstrap: narrower than the t-interval at k = 5
    _, low, high, _ = paired_interval(np.array([-1.0, 1.0, -2.0, 2.0]))
    assert low < 0 < high
    assert effect_verdict(low, high, 4).startswith("inconclusive: 95% CI [")
    assert "contains 0 with 4 seeds" in effect_verdict(low, high, 4)
    assert effect_verdict(0.01, 0.02, 20).startswith("established")
    assert effect_verdict(-0.02, -0.01, 20).startswith("contradicted")
    assert sign_test(np.array([1.0, 2.0, -1.0, 0.0])) == (2, 1, pytest.approx(1.0))
    assert sign_test(np.ones(10))[2] == pytest.approx(2 / 2**10)
    assert sign_test(np.zeros(3)) == (0, 0, 1.0)
    assert bootstrap_interval(np.full(6, 0.25), 100, seed=0) == pytest.approx((0.25, 0.25))


def test_quick_experiment_states_the_effect_and_saturation_claims(tmp_path):
    load_for("noise-accuracy")
    result, outputs = run_experiment("noise-accuracy", {}, quick=True, out_dir=tmp_path)
    metrics = result.metrics
    assert result.params["tasks"] == ["digits"]
    assert len(result.claims) == 2
    effect, saturation = result.claims
    assert "noise on gives higher test accuracy than noise off" in effect.name
    assert "not saturated" in saturation.name
    task = "digits"
    seeds = metrics[f"{task}_seeds"]
    assert seeds == result.params["seeds"] == len(metrics[f"{task}_differences"])
    for key in ("accuracy_noise", "accuracy_deterministic", "accuracy_se_noise", "accuracy_se_deterministic",
                "difference", "difference_se", "ci_low", "ci_high", "p_value", "sign_p_value",
                "bootstrap_low", "bootstrap_high", "seconds_per_run"):
        value = metrics[f"{task}_{key}"]
        assert math.isfinite(value), (key, value)
    differences = np.array(metrics[f"{task}_accuracies_noise"]) - np.array(metrics[f"{task}_accuracies_deterministic"])
    assert np.allclose(differences, metrics[f"{task}_differences"])
    low, high = metrics[f"{task}_ci_low"], metrics[f"{task}_ci_high"]
    assert low <= metrics[f"{task}_difference"] <= high
    # the claim passes exactly when the interval lies above 0, and says so otherwise
    assert effect.passed == (low > 0)
    if low <= 0 <= high:
        assert f"inconclusive: 95% CI [{low:+.4f}, {high:+.4f}] contains 0 with {seeds} seeds" in effect.detail
    assert "a check that the comparison runs, not the full result" in effect.detail  # quick sizes are never decisive
    highest = max(metrics[f"{task}_accuracy_noise"], metrics[f"{task}_accuracy_deterministic"])
    assert saturation.passed == (highest < result.params["saturation"])
    assert any(path.endswith(".png") for path in outputs)


def test_bootstrap_stream_seed_is_the_run_contexts():
    """The claim rules re-derive the bootstrap's seed from the run's seed alone: it must be RunContext's."""
    import pathlib

    from tokenswarm.experiments.noise_accuracy import stream_seed
    from tokenswarm.experiments.registry import RunContext

    for seed in (0, 7, 2**62 + 3):
        context = RunContext(seed=seed, device=torch.device("cpu"), dtype=torch.float32,
                             out_dir=pathlib.Path("."), quick=True)
        for offset in (0, 1009, 2009):
            assert stream_seed(seed, offset) == context.stream_seed(offset)
