"""Tests of the attention and MLP fields against explicit python-loop references (docs/theory/attention_ode.md §2.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tokenswarm.fields.attention as attention_module
from tokenswarm.fields import MLP, Attention, LieTrotter, SumField, attention_output, attention_weights
from tokenswarm.fields.base import Field
from tokenswarm.sphere import sample_uniform


@pytest.fixture(autouse=True)
def _exercise_fused_kernels(monkeypatch):
    """Test problems are small; without this the fused backend would take its dense shortcut."""
    monkeypatch.setattr(attention_module, "SMALL_KEYS", 0)


def test_fused_small_problem_shortcut_equals_kernel(monkeypatch):
    x = torch.nn.functional.normalize(torch.randn(3, 10, 4, dtype=torch.float64), dim=-1)
    kernel = Attention(2.0, normalization="usa").output(0.0, x)
    monkeypatch.setattr(attention_module, "SMALL_KEYS", 32)
    shortcut = Attention(2.0, normalization="usa").output(0.0, x)
    torch.testing.assert_close(shortcut, kernel, rtol=1e-13, atol=1e-13)


DOUBLE = torch.float64
BACKENDS = ("dense", "chunked", "fused")


def sphere(*shape: int, seed: int = 0, dtype: torch.dtype = DOUBLE) -> torch.Tensor:
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE)
    return (z / z.norm(dim=-1, keepdim=True)).to(dtype)


def gaussian(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE)


# --------------------------------------------------------------------------- reference


def reference_output(x, beta, normalization="sa", Q=None, K=None, V=None, causal=False):
    """Eq. (2.7) by explicit loops for one system ``x`` of shape (n, d).

    Q, K: None or arrays (H, k, d); V: None, a number, or (H, d, d). Heads are the union of
    the head axes of Q, K, V (broadcast). S_ij = beta <Q_h x_i, K_h x_j>; SA weights are a
    softmax over the allowed j of each head, USA weights exp(S_ij)/n (n = all tokens).
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    eye = np.eye(d)[None]
    Q = eye if Q is None else np.asarray(Q, dtype=np.float64)
    K = eye if K is None else np.asarray(K, dtype=np.float64)
    scalar = 1.0
    if V is None or isinstance(V, (int, float)):
        scalar = 1.0 if V is None else float(V)
        V = eye
    V = np.asarray(V, dtype=np.float64)
    heads = max(len(Q), len(K), len(V))
    y = np.zeros((n, d))
    for h in range(heads):
        q, k, v = Q[h % len(Q)], K[h % len(K)], V[h % len(V)]
        for i in range(n):
            allowed = range(i + 1) if causal else range(n)
            logits = {j: beta * float(np.dot(q @ x[i], k @ x[j])) for j in allowed}
            if normalization == "sa":
                top = max(logits.values())
                weights = {j: math.exp(s - top) for j, s in logits.items()}
                total = math.fsum(weights.values())
                weights = {j: w / total for j, w in weights.items()}
            else:
                weights = {j: math.exp(s) / n for j, s in logits.items()}
            for j, w in weights.items():
                y[i] += w * (v @ x[j])
    return torch.as_tensor(scalar * y)


def reference_batched(x, beta, normalization="sa", Q=None, K=None, V=None, causal=False):
    """Loop the single-system reference over the state's batch; weights (*batch, H, ., .)
    are indexed by the same batch index (broadcast where the weight has size 1)."""
    if x.ndim == 2:
        return reference_output(x, beta, normalization, Q, K, V, causal)

    def pick(m, b):
        if m is None or isinstance(m, (int, float)) or m.ndim <= 3:
            return m
        return m[b if m.shape[0] > 1 else 0]

    return torch.stack(
        [
            reference_batched(x[b], beta, normalization, pick(Q, b), pick(K, b), pick(V, b), causal)
            for b in range(x.shape[0])
        ]
    )


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.to(DOUBLE), b.to(DOUBLE)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def as_head_stack(m):
    """(k, d) -> (1, k, d) for the reference."""
    if m is None or isinstance(m, (int, float)):
        return m
    return m if m.ndim >= 3 else m[None]


# Configurations (name -> function of d returning Q, K, V) ----------------------------------

def _config(name: str, d: int):
    if name == "identity":
        return None, None, None
    if name == "qk_narrow":  # k < d
        return gaussian(3, d, seed=1, scale=0.6), gaussian(3, d, seed=2, scale=0.6), None
    if name == "qk_wide":  # k > d
        return gaussian(d + 3, d, seed=3, scale=0.4), gaussian(d + 3, d, seed=4, scale=0.4), None
    if name == "qkv":
        return gaussian(d, d, seed=5, scale=0.5), gaussian(d, d, seed=6, scale=0.5), gaussian(d, d, seed=7)
    if name == "v_only":
        return None, None, gaussian(d, d, seed=8)
    if name == "heads3":  # H = 3, k = 2 per head, own V per head
        return (
            gaussian(3, 2, d, seed=9, scale=0.8),
            gaussian(3, 2, d, seed=10, scale=0.8),
            gaussian(3, d, d, seed=11, scale=0.5),
        )
    if name == "repulsive":
        return None, None, -1.0
    raise KeyError(name)


CONFIGS = ("identity", "qk_narrow", "qk_wide", "qkv", "v_only", "heads3", "repulsive")


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("normalization", ["sa", "usa"])
@pytest.mark.parametrize("causal", [False, True])
def test_backends_match_loop_reference_float64(config, normalization, causal):
    n, d, beta = 6, 5, 1.7
    x = sphere(2, n, d, seed=100)
    Q, K, V = _config(config, d)
    ref = reference_batched(x, beta, normalization, as_head_stack(Q), as_head_stack(K), as_head_stack(V), causal)
    outs = {}
    for backend in BACKENDS:
        field = Attention(beta, normalization=normalization, Q=Q, K=K, V=V, causal=causal, backend=backend)
        outs[backend] = field.output(0.0, x)
        assert outs[backend].shape == x.shape and outs[backend].dtype == DOUBLE
        assert rel_err(outs[backend], ref) < 1e-12, backend
    for backend in BACKENDS[1:]:
        assert rel_err(outs[backend], outs["dense"]) < 1e-12


@pytest.mark.parametrize("config", ["identity", "qk_wide", "heads3"])
@pytest.mark.parametrize("normalization", ["sa", "usa"])
@pytest.mark.parametrize("causal", [False, True])
def test_backends_agree_float32(config, normalization, causal):
    n, d, beta = 7, 5, 2.0
    x64 = sphere(3, n, d, seed=101)
    x32 = x64.float()
    Q, K, V = _config(config, d)
    f32 = lambda m: m.float() if isinstance(m, torch.Tensor) else m  # noqa: E731
    ref = reference_batched(x64, beta, normalization, as_head_stack(Q), as_head_stack(K), as_head_stack(V), causal)
    for backend in BACKENDS:
        out = Attention(
            beta, normalization=normalization, Q=f32(Q), K=f32(K), V=f32(V), causal=causal, backend=backend
        ).output(0.0, x32)
        assert out.dtype == torch.float32
        assert rel_err(out, ref) < 1e-5, backend


def test_multi_head_partition_functions_are_per_head():
    """Sum of per-head SA outputs differs from one head with B = Σ_h Q_hᵀK_h (shared normaliser)."""
    n, d, beta = 5, 4, 2.0
    x = sphere(n, d, seed=102)
    Q, K = gaussian(3, d, d, seed=12), gaussian(3, d, d, seed=13)
    multi = Attention(beta, Q=Q, K=K, backend="dense").output(0.0, x)
    # explicit: Σ_h softmax_j(β x_iᵀ Q_hᵀ K_h x_j) x_j
    explicit = sum(torch.softmax(beta * (x @ Q[h].T) @ (x @ K[h].T).T, dim=-1) @ x for h in range(3))
    torch.testing.assert_close(multi, explicit, rtol=0, atol=1e-13)
    B = sum(Q[h].T @ K[h] for h in range(3))
    merged = torch.softmax(beta * x @ B @ x.T, dim=-1) @ x
    assert (multi - merged).abs().max() > 0.1


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_weights_broadcast_against_state_batch(backend):
    n, d, H, k, beta = 5, 4, 2, 3, 1.3
    x = sphere(3, 2, n, d, seed=103)  # state batch (3, 2)
    Q = gaussian(2, H, k, d, seed=14, scale=0.7)  # one draw per system of the last batch axis
    K = gaussian(2, H, k, d, seed=15, scale=0.7)
    V = gaussian(2, H, d, d, seed=16, scale=0.5)
    for normalization in ("sa", "usa"):
        out = Attention(beta, normalization=normalization, Q=Q, K=K, V=V, backend=backend).output(0.0, x)
        assert out.shape == (3, 2, n, d)
        for a in range(3):
            for b in range(2):
                ref = reference_output(x[a, b], beta, normalization, Q[b], K[b], V[b])
                assert rel_err(out[a, b], ref) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensor_beta_per_system(backend):
    n, d = 6, 3
    x = sphere(4, n, d, seed=104)
    betas = torch.tensor([0.0, 0.5, 3.0, 9.0], dtype=DOUBLE)
    for normalization in ("sa", "usa"):
        out = Attention(betas, normalization=normalization, backend=backend).output(0.0, x)
        for b in range(4):
            ref = reference_output(x[b], float(betas[b]), normalization)
            assert rel_err(out[b], ref) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalization", ["sa", "usa"])
def test_scalar_value_matrix(backend, normalization):
    x = sphere(2, 7, 4, seed=105)
    plain = Attention(2.0, normalization=normalization, backend=backend).output(0.0, x)
    rep = Attention(2.0, normalization=normalization, V=-1, backend=backend).output(0.0, x)
    torch.testing.assert_close(rep, -plain, rtol=0, atol=0)
    scaled = Attention(2.0, normalization=normalization, V=2.5, backend=backend).output(0.0, x)
    torch.testing.assert_close(scaled, 2.5 * plain, rtol=1e-15, atol=0)
    assert Attention(V=-1).value_scale() == -1.0
    assert Attention().value_scale() == 1.0
    assert Attention(V=torch.eye(4, dtype=DOUBLE)).value_scale() is None


def test_time_dependent_weights():
    n, d = 5, 4
    x = sphere(n, d, seed=106)
    Qt = lambda t: gaussian(d, d, seed=17) * (1 + t)  # noqa: E731
    Vt = lambda t: torch.eye(d, dtype=DOUBLE) * math.cos(t)  # noqa: E731
    field = Attention(1.0, Q=Qt, V=Vt, backend="dense")
    for t in (0.0, 0.7):
        ref = reference_output(x, 1.0, "sa", Qt(t)[None], None, Vt(t)[None])
        assert rel_err(field.output(t, x), ref) < 1e-12
    assert Attention(V=Vt).value_scale() is None


# --------------------------------------------------------------------------- large beta


def test_large_beta_sa_finite_and_backends_equal():
    n, d, beta = 8, 5, 50.0
    x = sphere(2, n, d, seed=107)
    ref = reference_batched(x, beta, "sa")
    outs = [Attention(beta, backend=b).output(0.0, x) for b in BACKENDS]
    for out in outs:
        assert torch.isfinite(out).all()
        assert rel_err(out, ref) < 1e-12
        assert rel_err(out, outs[0]) < 1e-12


def test_large_beta_usa_finite_and_magnitude():
    n, d, beta = 8, 5, 50.0
    x = sphere(2, n, d, seed=108)
    ref = reference_batched(x, beta, "usa")
    for backend in BACKENDS:
        out = Attention(beta, normalization="usa", backend=backend).output(0.0, x)
        assert torch.isfinite(out).all()
        assert rel_err(out, ref) < 1e-12
        # |y_i| <= (1/n) Σ_j e^{β<x_i,x_j>} <= e^β, and the self term alone gives ~ e^β/n
        norms = out.norm(dim=-1)
        assert (norms <= math.exp(beta) * (1 + 1e-12)).all()
        assert (norms >= 0.5 * math.exp(beta) / n).all()


# --------------------------------------------------------------------------- chunking and fusion


@pytest.mark.parametrize("chunk", [1, 7, 50])
@pytest.mark.parametrize("normalization", ["sa", "usa"])
@pytest.mark.parametrize("causal", [False, True])
def test_chunked_with_tiny_chunks_equals_dense(monkeypatch, chunk, normalization, causal):
    monkeypatch.setattr(attention_module, "_CHUNK_ELEMENTS", chunk)
    n, d = 11, 4
    x = sphere(2, n, d, seed=109)
    Q, K, V = _config("heads3", d)
    dense = Attention(3.0, normalization=normalization, Q=Q, K=K, V=V, causal=causal, backend="dense")
    chunked = dense.with_backend("chunked")
    assert rel_err(chunked.output(0.0, x), dense.output(0.0, x)) < 1e-13


def test_usa_equals_exp_lse_times_sa():
    n, d, beta = 9, 4, 5.0
    x = sphere(3, n, d, seed=110)
    lse = torch.logsumexp(beta * x @ x.mT, dim=-1, keepdim=True)
    sa = Attention(beta, backend="dense").output(0.0, x)
    usa_dense = Attention(beta, normalization="usa", backend="dense").output(0.0, x)
    usa_fused = Attention(beta, normalization="usa", backend="fused").output(0.0, x)
    identity = torch.exp(lse - math.log(n)) * sa
    assert rel_err(usa_dense, identity) < 1e-13
    assert rel_err(usa_fused, usa_dense) < 1e-12


@pytest.mark.parametrize("normalization", ["sa", "usa"])
def test_attention_weights_masks_agree_with_dropping_the_keys(normalization):
    """A masked key is a missing key (SA); USA keeps ``1/n`` over all keys, as under the causal mask."""
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(3, 2, 6, 6, generator=generator, dtype=torch.float64) * 3
    real = torch.tensor([[1, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 0, 1]], dtype=torch.bool)
    weights = attention_weights(logits, normalization=normalization, key_mask=real[:, None, :])
    for b in range(3):
        kept = attention_weights(logits[b][..., real[b]], normalization=normalization)
        if normalization == "usa":
            kept = kept * real[b].sum() / 6
        torch.testing.assert_close(weights[b][..., real[b]], kept, rtol=1e-15, atol=0)
        assert torch.all(weights[b][..., ~real[b]] == 0)
    causal = attention_weights(logits, normalization=normalization, causal=True)
    for i in range(6):
        head = attention_weights(logits[..., i : i + 1, : i + 1], normalization=normalization)
        if normalization == "usa":
            head = head * (i + 1) / 6
        torch.testing.assert_close(causal[..., i : i + 1, : i + 1], head, rtol=1e-15, atol=0)
        assert torch.all(causal[..., i, i + 1 :] == 0)


def test_attention_output_function_rectangular_queries():
    """attention_output accepts fewer queries than keys (used for row subsets)."""
    x = sphere(10, 4, seed=111)
    full = attention_output(x, x, x, 2.0, backend="dense")
    for backend in ("dense", "chunked"):
        part = attention_output(x[3:6], x, x, 2.0, backend=backend)
        torch.testing.assert_close(part, full[3:6], rtol=0, atol=1e-14)


def test_fused_large_n_float32_matches_chunked_rows():
    n, d, beta = 16384, 16, 1.0
    x = sample_uniform(n, d, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    out = Attention(beta, backend="fused").output(0.0, x)
    assert out.shape == (n, d) and out.dtype == torch.float32 and torch.isfinite(out).all()
    rows = torch.tensor([0, 1, 4097, 9999, n - 1])
    ref = attention_output(x[rows], x, x, beta, backend="chunked")
    assert rel_err(out[rows], ref) < 1e-5


# --------------------------------------------------------------------------- velocity, beta = 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("config", ["identity", "qkv", "heads3"])
@pytest.mark.parametrize("normalization", ["sa", "usa"])
def test_velocity_is_tangent_and_is_projected_output(backend, config, normalization):
    x = sphere(2, 6, 5, seed=112)
    Q, K, V = _config(config, 5)
    field = Attention(1.0, normalization=normalization, Q=Q, K=K, V=V, backend=backend)
    y, v = field.output(0.0, x), field.velocity(0.0, x)
    assert (v * x).sum(-1).abs().max() < 1e-14
    explicit = y - (x * y).sum(-1, keepdim=True) * x
    torch.testing.assert_close(v, explicit, rtol=0, atol=1e-15)
    torch.testing.assert_close(field(0.0, x), v, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalization", ["sa", "usa"])
def test_beta_zero_is_token_mean(backend, normalization):
    n, d = 7, 3
    x = sphere(2, n, d, seed=113)
    out = Attention(0.0, normalization=normalization, backend=backend).output(0.0, x)
    torch.testing.assert_close(out, x.mean(-2, keepdim=True).expand_as(x), rtol=0, atol=1e-15)
    # causal: SA averages the prefix, USA sums the prefix over the full n
    causal = Attention(0.0, normalization=normalization, causal=True, backend=backend).output(0.0, x)
    prefix_sum = x.cumsum(-2)
    counts = torch.arange(1, n + 1, dtype=DOUBLE)[:, None]
    expected = prefix_sum / counts if normalization == "sa" else prefix_sum / n
    torch.testing.assert_close(causal, expected, rtol=0, atol=1e-15)


def test_causal_first_token_does_not_move_under_sa():
    x = sphere(6, 4, seed=114)
    for backend in BACKENDS:
        v = Attention(4.0, causal=True, backend=backend).velocity(0.0, x)
        assert v[0].abs().max() < 1e-15  # attends only to itself: y_0 = x_0
        assert v[1:].abs().max() > 1e-3


# --------------------------------------------------------------------------- validation


def test_invalid_arguments_name_the_parameter():
    for beta in (-1.0, math.nan, math.inf, "1"):
        with pytest.raises(ValueError, match="beta"):
            Attention(beta)
    with pytest.raises(ValueError, match="beta"):
        Attention(torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="normalization"):
        Attention(1.0, normalization="softmax")
    with pytest.raises(ValueError, match="backend"):
        Attention(1.0, backend="flash")
    with pytest.raises(ValueError, match="Q"):
        Attention(1.0, Q=torch.ones(3, dtype=DOUBLE)).output(0.0, sphere(4, 3))


# --------------------------------------------------------------------------- hypothesis


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    d=st.integers(1, 5),
    beta=st.floats(0.0, 12.0),
    normalization=st.sampled_from(["sa", "usa"]),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
@example(n=4, d=3, beta=0.0, normalization="sa", causal=True, seed=0)  # fused kernels: 0 * -inf
@example(n=1, d=1, beta=12.0, normalization="usa", causal=True, seed=1)
@example(n=6, d=1, beta=5.174152289421531e-14, normalization="sa", causal=False, seed=1517)  # tokens cancel
def test_hypothesis_backends_agree_and_velocity_tangent(n, d, beta, normalization, causal, seed):
    x = sphere(2, n, d, seed=seed)
    ref = reference_batched(x, beta, normalization, causal=causal)
    # bound on |output_i|: 1 for SA (convex combination), (1/n) sum_j e^{beta <x_i, x_j>} for USA
    summands = torch.ones(x.shape[:-1], dtype=x.dtype) if normalization == "sa" else \
        torch.exp(beta * x @ x.mT).mean(-1)
    for backend in BACKENDS:
        field = Attention(beta, normalization=normalization, causal=causal, backend=backend)
        out = field.output(0.0, x)
        # relative to the size of the summands, not of the output: tokens can cancel
        # (d = 1, beta ~ 0: outputs of 1e-14 made of terms of size 1)
        assert ((out - ref).abs().amax(-1) <= 1e-12 * summands).all()
        v = field.velocity(0.0, x)
        scale = max(1.0, float(out.abs().max()))
        assert (v * x).sum(-1).abs().max() <= 1e-14 * scale


# --------------------------------------------------------------------------- MLP and composition


ACTIVATION_FORMULAS = {
    "relu": lambda z: max(z, 0.0),
    "tanh": math.tanh,
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)),
    "silu": lambda z: z / (1 + math.exp(-z)),
    "gelu": lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
    "identity": lambda z: z,
}


@pytest.mark.parametrize("activation", sorted(ACTIVATION_FORMULAS))
def test_mlp_output_equals_explicit_formula(activation):
    n, d, m = 4, 3, 5
    x = sphere(n, d, seed=115)
    W, A, b = gaussian(d, m, seed=18), gaussian(m, d, seed=19), gaussian(m, seed=20)
    out = MLP(W, A, b, activation=activation).output(0.0, x)
    sigma = ACTIVATION_FORMULAS[activation]
    for i in range(n):
        for a in range(d):
            expected = math.fsum(
                W[a, r].item() * sigma(math.fsum(A[r, c].item() * x[i, c].item() for c in range(d)) + b[r].item())
                for r in range(m)
            )
            assert out[i, a].item() == pytest.approx(expected, rel=1e-12, abs=1e-14)
    no_bias = MLP(W, A, activation=activation).output(0.0, x)
    torch.testing.assert_close(no_bias, torch.stack([W @ torch.tensor([sigma(z) for z in (A @ xi).tolist()], dtype=DOUBLE) for xi in x]), rtol=1e-12, atol=1e-14)


def test_mlp_batched_and_time_dependent_weights():
    n, d, m = 3, 4, 6
    x = sphere(2, n, d, seed=116)
    W, A, b = gaussian(2, d, m, seed=21), gaussian(2, m, d, seed=22), gaussian(2, m, seed=23)
    out = MLP(W, A, b, activation="tanh").output(0.0, x)
    for s in range(2):
        torch.testing.assert_close(out[s], torch.tanh(x[s] @ A[s].T + b[s]) @ W[s].T, rtol=0, atol=1e-14)
    timed = MLP(lambda t: W[0] * t, A[0], b[0], activation="tanh")
    torch.testing.assert_close(timed.output(2.0, x[0]), 2.0 * (torch.tanh(x[0] @ A[0].T + b[0]) @ W[0].T))
    with pytest.raises(ValueError, match="activation"):
        MLP(W, A, activation="swish")


def test_mlp_velocity_tangent():
    x = sphere(5, 4, seed=117)
    field = MLP(gaussian(4, 7, seed=24), gaussian(7, 4, seed=25), gaussian(7, seed=26))
    assert (field.velocity(0.0, x) * x).sum(-1).abs().max() < 1e-14


def test_sum_field_and_lie_trotter_as_plain_fields():
    x = sphere(2, 5, 4, seed=118)
    att = Attention(2.0, backend="dense")
    mlp = MLP(gaussian(4, 6, seed=27), gaussian(6, 4, seed=28), activation="silu")
    total = att.output(0.0, x) + mlp.output(0.0, x)
    for joint in (SumField([att, mlp]), att + mlp, LieTrotter([att, mlp])):
        torch.testing.assert_close(joint.output(0.0, x), total, rtol=0, atol=1e-15)
        expected_v = total - (x * total).sum(-1, keepdim=True) * x
        torch.testing.assert_close(joint.velocity(0.0, x), expected_v, rtol=0, atol=1e-15)
    # restrict: MLP cannot be restricted, so neither can a composite containing it
    basis = torch.linalg.qr(x.mT).Q
    assert SumField([att, mlp]).restrict(basis) is None
    assert LieTrotter([att, mlp]).restrict(basis) is None
    restricted = LieTrotter([att, Attention(1.0, V=-1)], renormalize=False).restrict(basis)
    assert isinstance(restricted, LieTrotter) and restricted.renormalize is False


def test_base_field_is_abstract():
    with pytest.raises(NotImplementedError):
        Field().output(0.0, sphere(2, 2))
    assert Field().restrict(torch.eye(2, dtype=DOUBLE)) is None


def test_restrict_in_coordinates_matches_full_field():
    """velocity(U c) = U velocity_reduced(c) for V = λ I, including general Q, K."""
    n, d = 4, 9
    x = sphere(2, n, d, seed=119)
    basis = torch.linalg.qr(x.mT).Q  # (2, d, n)
    c = x @ basis
    for kwargs in (
        {},
        {"V": -1.0, "normalization": "usa"},
        {"Q": gaussian(d, d, seed=29, scale=d**-0.5), "K": gaussian(d, d, seed=30, scale=d**-0.5)},
        {"Q": gaussian(3, 2, d, seed=31), "K": gaussian(3, 2, d, seed=32), "V": 0.5},
        {"K": gaussian(d, d, seed=33, scale=d**-0.5)},
    ):
        field = Attention(1.5, backend="dense", **kwargs)
        reduced = field.restrict(basis)
        assert reduced is not None
        torch.testing.assert_close(reduced.velocity(0.0, c) @ basis.mT, field.velocity(0.0, x), rtol=0, atol=1e-13)
    assert Attention(V=gaussian(d, d, seed=34)).restrict(basis) is None
    assert Attention(V=lambda t: -1.0).restrict(basis) is None
