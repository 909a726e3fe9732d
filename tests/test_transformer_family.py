"""The discrete Transformer family (nets/transformer.py): blocks as Euler steps, torch's layer, variants."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from tokenswarm.fields import MLP, Attention, Field, LieTrotter
from tokenswarm.nets.transformer import (
    Transformer,
    TransformerConfig,
    block_fields,
    lie_trotter_euler_step,
    to_torch_encoder_layer,
)
from tokenswarm.sphere import layer_norm_map

TOL = 1e-6  # float32 throughout


def _model(seed=0, **options) -> Transformer:
    config = TransformerConfig(**{"dim": 16, "depth": 2, "heads": 2, **options})
    return Transformer(config, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _perturb(model: Transformer, seed: int) -> None:
    """Move every parameter away from its initial value (norm gains/biases 1/0, biases 0 are too special)."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in model.parameters():
        parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))


def _tokens(shape, seed=1):
    return 2.0 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) + 0.5


class _Normalised(Field):
    """The field ``x -> inner(LN(x))`` with ``LN`` the affine-free LayerNorm map of the core engine."""

    def __init__(self, inner: Field, eps: float):
        self.inner, self.eps = inner, eps

    def output(self, t, x):
        return self.inner.output(t, layer_norm_map(x, eps=self.eps))


@pytest.mark.parametrize("heads, causal, activation", [(1, False, "gelu"), (2, False, "relu"), (4, True, "gelu")])
def test_pre_ln_block_is_one_euler_step_of_the_core_fields(heads, causal, activation):
    """(a) x + A(LN x), then + M(LN x): Attention (per-head Q, K, V = W_O,h W_V,h, beta = 1/sqrt(k)) and MLP.

    Built here by hand from the block's weights (bias-free block; the LayerNorm gains are random and
    folded into the matrices), independently of nets.transformer.block_fields.
    """
    model = _model(heads=heads, causal=causal, activation=activation, bias=False, depth=1)
    _perturb(model, seed=5)
    block = model.blocks[0]
    d, k = 16, 16 // heads
    g1, g2 = block.attention_norm.weight.detach(), block.mlp_norm.weight.detach()
    att = block.attention
    Q = (att.query.weight.detach() * g1).reshape(heads, k, d)
    K = (att.key.weight.detach() * g1).reshape(heads, k, d)
    V = torch.stack([att.out.weight.detach()[:, h * k:(h + 1) * k] @ att.value.weight.detach()[h * k:(h + 1) * k] * g1
                     for h in range(heads)])
    attention = _Normalised(Attention(1 / math.sqrt(k), Q=Q, K=K, V=V, causal=causal), block.attention_norm.eps)
    mlp = _Normalised(MLP(block.mlp.outer.weight.detach(), block.mlp.inner.weight.detach() * g2, activation=activation),
                      block.mlp_norm.eps)
    x = _tokens((3, 7, d))
    step_1 = x + 1.0 * attention.output(0.0, x)
    expected = step_1 + 1.0 * mlp.output(0.0, step_1)
    with torch.no_grad():
        got, _ = block(x)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() < TOL * max(1.0, expected.abs().max().item())
    # the attention step alone is not the whole block (the comparison is not vacuous)
    assert (got - step_1).abs().max() > 1e-2
    # ... and the packaged fields (lifting biases) give the same step
    fields = block_fields(block)
    assert isinstance(fields, LieTrotter) and not fields.renormalize
    assert (lie_trotter_euler_step(fields, 0.0, x, 1.0) - got).abs().max() < TOL * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("norm, residual_scale, causal", [("layer", 1.0, False), ("rms", 0.25, True), ("none", 0.5, False)])
def test_block_fields_with_biases_and_norm_offsets(norm, residual_scale, causal):
    """Biases, LayerNorm offsets and gains folded by lifting; residual_scale is the Euler step."""
    model = _model(norm=norm, residual_scale=residual_scale, causal=causal, bias=True, depth=3)
    _perturb(model, seed=11)
    x = _tokens((2, 5, 16), seed=3)
    with torch.no_grad():
        hidden = model(x, return_hidden=True).hidden
    for block, before, after in zip(model.blocks, hidden[:-1], hidden[1:], strict=True):
        stepped = lie_trotter_euler_step(block_fields(block), 0.0, before, residual_scale)
        assert (stepped - after).abs().max() < TOL * max(1.0, after.abs().max().item())


@pytest.mark.parametrize("bias, causal, activation, training", [
    (True, False, "relu", False), (True, True, "gelu", True), (False, False, "gelu", False), (False, True, "relu", True),
])
def test_pre_ln_block_equals_torch_encoder_layer(bias, causal, activation, training):
    """(b) nn.TransformerEncoderLayer(norm_first=True, batch_first=True, dropout=0), weights copied by hand."""
    model = _model(bias=bias, causal=causal, activation=activation, heads=4, depth=1)
    _perturb(model, seed=7)
    block = model.blocks[0]
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=64, dropout=0.0, activation=activation,
                                       batch_first=True, norm_first=True, bias=bias)
    att = block.attention
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([att.query.weight, att.key.weight, att.value.weight]))
        layer.self_attn.out_proj.weight.copy_(att.out.weight)
        layer.linear1.weight.copy_(block.mlp.inner.weight)
        layer.linear2.weight.copy_(block.mlp.outer.weight)
        layer.norm1.weight.copy_(block.attention_norm.weight)
        layer.norm2.weight.copy_(block.mlp_norm.weight)
        if bias:
            layer.self_attn.in_proj_bias.copy_(torch.cat([att.query.bias, att.key.bias, att.value.bias]))
            layer.self_attn.out_proj.bias.copy_(att.out.bias)
            layer.linear1.bias.copy_(block.mlp.inner.bias)
            layer.linear2.bias.copy_(block.mlp.outer.bias)
            layer.norm1.bias.copy_(block.attention_norm.bias)
            layer.norm2.bias.copy_(block.mlp_norm.bias)
    layer.train(training)
    model.train(training)
    x = _tokens((3, 9, 16), seed=4)
    mask = nn.Transformer.generate_square_subsequent_mask(9) if causal else None
    with torch.no_grad():
        expected = layer(x, src_mask=mask, is_causal=causal)
        got, _ = block(x)
        packaged = to_torch_encoder_layer(block).train(training)(x, src_mask=mask, is_causal=causal)
    scale = max(1.0, expected.abs().max().item())
    assert (got - expected).abs().max() < TOL * scale
    assert (packaged - expected).abs().max() < TOL * scale


def test_post_ln_block_equals_torch_encoder_layer():
    model = _model(placement="post", heads=4, depth=1, activation="relu")
    _perturb(model, seed=8)
    layer = to_torch_encoder_layer(model.blocks[0]).eval()
    assert not layer.norm_first
    x = _tokens((2, 6, 16), seed=6)
    with torch.no_grad():
        assert (model.blocks[0](x)[0] - layer(x)).abs().max() < TOL * 4


def test_shapes_hidden_attention_and_batch_axes():
    model = _model(depth=3, heads=4)
    x = _tokens((2, 3, 7, 16))  # two leading batch axes
    out = model(x, return_hidden=True, return_attention=True)
    assert out.output.shape == x.shape
    assert len(out.hidden) == 4 and all(h.shape == x.shape for h in out.hidden)
    assert out.hidden[0] is x
    assert len(out.attention) == 3 and all(a.shape == (2, 3, 4, 7, 7) for a in out.attention)
    plain = model(x)
    assert plain.hidden is None and plain.attention is None
    assert torch.equal(plain.output, out.output)
    # final LayerNorm applied to the last hidden state
    assert torch.allclose(out.output, model.final_norm(out.hidden[-1]))
    # the batch axes are independent systems
    assert torch.allclose(model(x[1, 2]).output, out.output[1, 2], atol=1e-6)


VARIANTS = list(itertools.product(["layer", "rms", "none"], ["pre", "post", "peri"], [True, False], [False, True]))


@pytest.mark.parametrize("norm, placement, residual, causal", VARIANTS)
def test_every_variant_runs_and_attention_rows_are_probabilities(norm, placement, residual, causal):
    model = _model(norm=norm, placement=placement, residual=residual, causal=causal, residual_scale=0.7, depth=2)
    x = _tokens((2, 6, 16))
    out = model(x, return_hidden=True, return_attention=True)
    assert out.output.shape == x.shape and torch.isfinite(out.output).all()
    for probabilities in out.attention:
        assert (probabilities >= 0).all()
        assert torch.allclose(probabilities.sum(-1), torch.ones(()), atol=1e-6)
        if causal:
            assert (probabilities.triu(1) == 0).all()
    out.output.square().mean().backward()  # trainable
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_causal_masking_future_tokens_do_not_matter():
    model = _model(causal=True, depth=3)
    x = _tokens((2, 8, 16))
    changed = x.clone()
    changed[:, 5:] = _tokens((2, 3, 16), seed=9)  # (a constant shift would be centred away by LayerNorm)
    with torch.no_grad():
        a, b = model(x).output, model(changed).output
        non_causal = _model(causal=False, depth=3)
        c, e = non_causal(x).output, non_causal(changed).output
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-2
    assert (c[:, :5] - e[:, :5]).abs().max() > 1e-2  # without the mask the past does change


def test_placements_differ_and_norms_have_their_geometry():
    x = _tokens((2, 6, 16))
    outputs = {}
    for placement in ("pre", "post", "peri"):
        model = _model(placement=placement, seed=3)
        with torch.no_grad():
            outputs[placement] = model(x, return_hidden=True).hidden[-1]
    assert (outputs["pre"] - outputs["post"]).abs().max() > 1e-2
    assert (outputs["pre"] - outputs["peri"]).abs().max() > 1e-2
    # post-LN at init (gain 1, bias 0): every block ends on the LayerNorm sphere: mean 0, norm sqrt(d)
    post = outputs["post"]
    assert torch.allclose(post.mean(-1), torch.zeros(()), atol=1e-5)
    assert torch.allclose(post.norm(dim=-1), torch.full((), 4.0), atol=1e-3)
    # post-RMS: norm sqrt(d), not centred
    with torch.no_grad():
        rms = _model(placement="post", norm="rms")(x, return_hidden=True).hidden[-1]
    assert torch.allclose(rms.norm(dim=-1), torch.full((), 4.0), atol=1e-3)
    assert rms.mean(-1).abs().max() > 1e-3


def test_no_residual_and_residual_scale_semantics():
    x = _tokens((2, 6, 16))
    base = _model(seed=2, mlp_ratio=0.0, depth=1)
    with torch.no_grad():
        branch = base.blocks[0].attention(base.blocks[0].attention_norm(x))[0]
        for residual, scale in ((True, 0.3), (False, 0.3), (False, 1.0)):
            model = _model(seed=2, mlp_ratio=0.0, depth=1, residual=residual, residual_scale=scale)
            expected = (x if residual else 0) + scale * branch
            assert torch.allclose(model(x, return_hidden=True).hidden[1], expected, atol=1e-6)


def test_initialisation_is_deterministic_and_standard():
    a, b, c = _model(seed=0), _model(seed=0), _model(seed=1)
    for (name, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters(), strict=True))
    state = torch.random.get_rng_state()
    _model(seed=0)
    assert torch.equal(state, torch.random.get_rng_state())  # a generator leaves the global RNG alone
    big = Transformer(TransformerConfig(dim=256, depth=1), generator=torch.Generator().manual_seed(0))
    att = big.blocks[0].attention
    # Xavier-uniform on the stacked (3d, d) in-projection: variance 1/(2d); out-projection U(±1/sqrt d): 1/(3d)
    assert att.query.weight.var().item() == pytest.approx(1 / 512, rel=0.03)
    assert att.out.weight.var().item() == pytest.approx(1 / 768, rel=0.03)
    assert att.query.bias.abs().max() == 0 and big.blocks[0].attention_norm.weight.eq(1).all()
    assert big.blocks[0].mlp.inner.weight.shape == (1024, 256)


def test_dropout_off_by_default_and_on_when_asked():
    x = _tokens((2, 6, 16))
    model = _model().train()
    assert torch.equal(model(x).output, model(x).output)
    noisy = _model(dropout=0.5).train()
    assert not torch.equal(noisy(x).output, noisy(x).output)
    assert torch.equal(noisy.eval()(x).output, noisy(x).output)


@pytest.mark.parametrize("options, word", [
    ({"dim": 0}, "dim"), ({"depth": 0}, "depth"), ({"heads": 3}, "heads"), ({"norm": "batch"}, "norm"),
    ({"placement": "middle"}, "placement"), ({"mlp_ratio": -1.0}, "mlp_ratio"), ({"dropout": 1.0}, "dropout"),
    ({"residual_scale": math.inf}, "residual_scale"), ({"activation": "swish"}, "activation"),
    ({"residual": 1}, "residual"), ({"eps": 0.0}, "eps"), ({"dim": 16.0}, "dim"),
])
def test_config_validation(options, word):
    with pytest.raises(ValueError, match=word):
        TransformerConfig(**{"dim": 16, "depth": 2, **options})


def test_block_fields_and_torch_export_refuse_what_they_cannot_represent():
    with pytest.raises(ValueError, match="placement"):
        block_fields(_model(placement="post").blocks[0])
    with pytest.raises(ValueError, match="residual"):
        block_fields(_model(residual=False).blocks[0])
    with pytest.raises(ValueError, match="norm='layer'"):
        to_torch_encoder_layer(_model(norm="rms").blocks[0])
    with pytest.raises(ValueError, match="x must have shape"):
        _model()(torch.zeros(2, 5, 8))
