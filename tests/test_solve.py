"""Tests of the integrators: convergence orders against the equiangular ODE (6.9)/(6.10),
explicit layers written by hand, splitting, recording, span reduction and failure modes."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from tokenswarm.fields import MLP, Attention, LieTrotter
from tokenswarm.fields.attention import usa_step
from tokenswarm.fields.base import Field
from tokenswarm.solve import (
    METHODS,
    Authors,
    NonFiniteStateError,
    Trajectory,
    integrate,
)
from tokenswarm.sphere import sample_equiangular, span_basis

DOUBLE = torch.float64


def sphere(*shape: int, seed: int = 0, dtype: torch.dtype = DOUBLE) -> torch.Tensor:
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE)
    return (z / z.norm(dim=-1, keepdim=True)).to(dtype)


def gaussian(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE)


def unit_rows(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=-1, keepdim=True)


def tangent(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return y - (x * y).sum(-1, keepdim=True) * x


def sa_output(x: torch.Tensor, beta: float) -> torch.Tensor:
    """SA, Q = K = V = I, written directly: softmax_j(β<x_i,x_j>) x_j."""
    return torch.softmax(beta * x @ x.mT, dim=-1) @ x


def usa_output(x: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.exp(beta * x @ x.mT) @ x / x.shape[-2]


# --------------------------------------------------------------------------- equiangular reference

N_EQ, BETA_EQ, RHO0, T_EQ = 4, 1.0, 0.1, 2.0


def rho_reference(normalization: str, n=N_EQ, beta=BETA_EQ, rho0=RHO0, T=T_EQ) -> float:
    """ρ(T) from (6.9) (SA) or (6.10) (USA) by DOP853, rtol 1e-13."""

    def rhs(_t, y):
        r = y[0]
        growth = math.exp(beta * r) * (1 - r) * ((n - 1) * r + 1)
        if normalization == "sa":
            return [2 * growth / (math.exp(beta) + (n - 1) * math.exp(beta * r))]
        return [2 * growth / n]

    sol = solve_ivp(rhs, (0.0, T), [rho0], method="DOP853", rtol=1e-13, atol=1e-15)
    assert sol.success
    return float(sol.y[0, -1])


def mean_off_diagonal(x: torch.Tensor) -> float:
    n = x.shape[-2]
    g = x @ x.mT
    return float(g[..., ~torch.eye(n, dtype=torch.bool)].mean())


def slope(steps, errors) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


@pytest.fixture(scope="module")
def sa_reference():
    return rho_reference("sa")


@pytest.mark.parametrize(
    "method, order, steps",
    [
        ("euler", 1, [0.1, 0.05, 0.025, 0.0125]),
        ("heun", 2, [0.2, 0.1, 0.05, 0.025]),
        ("rk4", 4, [0.2, 0.1, 0.05, 0.025]),
        ("authors", 1, [0.1, 0.05, 0.025, 0.0125]),
    ],
)
def test_convergence_order_on_equiangular_sa(sa_reference, method, order, steps):
    x0 = sample_equiangular(N_EQ, N_EQ, RHO0)
    field = Attention(BETA_EQ, backend="dense")
    errors = []
    for h in steps:
        final = integrate(field, x0, [0.0, T_EQ], method=method, step=h, span_reduction=False).final
        g = final @ final.mT
        # stays equiangular (symmetry of the scheme)
        off = g[~torch.eye(N_EQ, dtype=torch.bool)]
        assert float(off.max() - off.min()) < 1e-12
        errors.append(abs(mean_off_diagonal(final) - sa_reference))
    assert abs(slope(steps, errors) - order) < 0.25, errors
    assert errors[-1] < errors[0]


def test_usa_equiangular_matches_6_10():
    ref = rho_reference("usa", beta=2.0)
    x0 = sample_equiangular(N_EQ, 6, RHO0)
    final = integrate(
        Attention(2.0, normalization="usa"), x0, [0.0, T_EQ], method="rk4", step=0.01, span_reduction=False
    ).final
    assert abs(mean_off_diagonal(final) - ref) < 1e-8


def test_dopri5_matches_reference(sa_reference):
    x0 = sample_equiangular(N_EQ, N_EQ, RHO0)
    traj = integrate(Attention(BETA_EQ), x0, [0.0, 0.5, T_EQ], method="dopri5", rtol=1e-10, atol=1e-12)
    assert abs(mean_off_diagonal(traj.final) - sa_reference) < 1e-8
    assert traj.states.shape == (3, N_EQ, N_EQ)
    assert traj.steps > 0 and traj.evaluations >= 7 * traj.steps
    assert abs(mean_off_diagonal(traj.states[1]) - rho_reference("sa", T=0.5)) < 1e-8


def test_self_convergence_general_field():
    """Random start, general Q, K, V and an MLP: successive-halving error ratios ≈ 2^p."""
    n, d = 5, 3
    x0 = sphere(n, d, seed=1)
    field = Attention(2.0, Q=gaussian(d, d, seed=2), K=gaussian(d, d, seed=3), V=gaussian(d, d, seed=4)) + MLP(
        gaussian(d, 4, seed=5), gaussian(4, d, seed=6), gaussian(4, seed=7), activation="tanh"
    )
    for method, order, h in (("euler", 1, 0.02), ("heun", 2, 0.05), ("rk4", 4, 0.1)):
        sols = [integrate(field, x0, [0.0, 1.0], method=method, step=h / 2**k).final for k in range(3)]
        ratio = float((sols[0] - sols[1]).norm() / (sols[1] - sols[2]).norm())
        assert abs(math.log2(ratio) - order) < 0.25, (method, ratio)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4", "authors", "dopri5"])
def test_unit_norm_after_every_step(method):
    x0 = sphere(2, 6, 4, seed=8)
    h = 0.05
    times = [k * h for k in range(21)]  # one step per output time (dopri5: adaptive, outputs)
    field = Attention(3.0, Q=gaussian(4, 4, seed=9), V=gaussian(4, 4, seed=10))
    traj = integrate(
        field, x0, times, method=method, step=h, observe=lambda x: (x.norm(dim=-1) - 1).abs().max()
    )
    assert traj.states.shape == (21,)
    assert float(traj.states.max()) <= 1e-14
    if method != "dopri5":
        assert traj.steps == 20


# --------------------------------------------------------------------------- explicit layers


def test_euler_step_is_one_explicit_layer():
    x = sphere(5, 3, seed=11)
    h, beta = 0.3, 2.0
    traj = integrate(Attention(beta), x, [0.0, h], method="euler", step=h)
    assert traj.steps == 1
    expected = unit_rows(x + h * tangent(x, sa_output(x, beta)))
    torch.testing.assert_close(traj.final, expected, rtol=0, atol=1e-15)
    # two layers
    traj2 = integrate(Attention(beta), x, [0.0, 2 * h], method="euler", step=h)
    x1 = expected
    torch.testing.assert_close(traj2.final, unit_rows(x1 + h * tangent(x1, sa_output(x1, beta))), rtol=0, atol=1e-15)


def test_heun_and_rk4_single_steps_by_hand():
    x = sphere(4, 3, seed=12)
    h, beta = 0.2, 1.5
    f = lambda z: tangent(z, sa_output(z, beta))  # noqa: E731
    k1 = f(x)
    k2 = f(x + h * k1)
    heun = unit_rows(x + h / 2 * (k1 + k2))
    torch.testing.assert_close(integrate(Attention(beta), x, [0, h], method="heun", step=h).final, heun, rtol=0, atol=1e-15)
    k1 = f(x)
    k2 = f(x + h / 2 * k1)
    k3 = f(x + h / 2 * k2)
    k4 = f(x + h * k3)
    rk4 = unit_rows(x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
    torch.testing.assert_close(integrate(Attention(beta), x, [0, h], method="rk4", step=h).final, rk4, rtol=0, atol=1e-15)


def test_authors_sa_step_uses_unprojected_output():
    x = sphere(5, 3, seed=13)
    eta, beta = 0.1, 2.0
    traj = integrate(Attention(beta), x, [0.0, eta], method="authors", step=eta)
    expected = unit_rows(x + eta * sa_output(x, beta))
    torch.testing.assert_close(traj.final, expected, rtol=0, atol=1e-15)
    # genuinely different from the projected (Euler) layer
    euler = unit_rows(x + eta * tangent(x, sa_output(x, beta)))
    assert (traj.final - euler).abs().max() > 1e-4


@pytest.mark.parametrize("beta", [0.1, 2.0, 4.0])
def test_authors_usa_effective_step(beta):
    x = sphere(5, 3, seed=14)
    step = 0.1
    eta = step / max(math.sqrt(beta) * math.exp(beta - 0.5), 1.0)
    assert usa_step(step, beta) == pytest.approx(eta, rel=1e-15)
    assert Attention(beta, normalization="usa").authors_step(step) == usa_step(step, beta)
    if beta == 0.1:
        assert eta == step  # the max(., 1) branch
    traj = integrate(Attention(beta, normalization="usa"), x, [0.0, step], Authors(step=step))
    assert traj.info["step"] == pytest.approx(eta, rel=1e-15)
    # the output time is reached by ceil(step/eta) sub-steps of size step/count
    count = math.ceil(step / eta - 1e-9)
    h = step / count
    expected = x
    for _ in range(count):
        expected = unit_rows(expected + h * usa_output(expected, beta))
    torch.testing.assert_close(traj.final, expected, rtol=0, atol=1e-14)
    assert traj.steps == count
    # raw step: one layer of size step
    raw = integrate(Attention(beta, normalization="usa"), x, [0.0, step], Authors(step=step, usa_step=False))
    legacy = integrate(
        Attention(beta, normalization="usa"), x, [0.0, step], method="authors", step=step, authors_usa_step=False
    )
    assert torch.equal(raw.final, legacy.final)
    torch.testing.assert_close(raw.final, unit_rows(x + step * usa_output(x, beta)), rtol=0, atol=1e-15)
    # SA is never rescaled
    assert Authors(step=step).step_for(Attention(beta)) == step


def test_authors_usa_step_with_tensor_beta_raises():
    with pytest.raises(ValueError, match="beta"):
        integrate(Attention(torch.tensor([1.0, 2.0]), normalization="usa"), sphere(2, 3, 3), [0, 1], method="authors", step=0.1)


def test_lie_trotter_euler_is_sequential_layers():
    x = sphere(2, 5, 3, seed=15)
    h = 0.2
    att = Attention(2.0, Q=gaussian(3, 3, seed=16))
    mlp = MLP(gaussian(3, 4, seed=17), gaussian(4, 3, seed=18), gaussian(4, seed=19), activation="relu")
    out_att = lambda z: att.output(0.0, z)  # noqa: E731  (time-independent)
    out_mlp = lambda z: torch.relu(z @ mlp.A.T + mlp.b) @ mlp.W.T  # noqa: E731

    y = unit_rows(x + h * tangent(x, out_att(x)))
    expected = unit_rows(y + h * tangent(y, out_mlp(y)))
    got = integrate(LieTrotter([att, mlp]), x, [0.0, h], method="euler", step=h).final
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)

    # without renormalisation between sub-steps (projection extended off the sphere)
    y = x + h * tangent(x, out_att(x))
    expected_raw = unit_rows(y + h * tangent(y, out_mlp(y)))
    got_raw = integrate(LieTrotter([att, mlp], renormalize=False), x, [0.0, h], method="euler", step=h).final
    torch.testing.assert_close(got_raw, expected_raw, rtol=0, atol=1e-15)

    # the joint field is a different layer
    joint = integrate(att + mlp, x, [0.0, h], method="euler", step=h).final
    torch.testing.assert_close(joint, unit_rows(x + h * tangent(x, out_att(x) + out_mlp(x))), rtol=0, atol=1e-15)
    assert (joint - got).abs().max() > 1e-4

    # splitting error is first order: Lie–Trotter + RK4 -> the joint flow as h -> 0
    ref = integrate(att + mlp, x, [0.0, 1.0], method="rk4", step=0.01).final
    errs = [float((integrate(LieTrotter([att, mlp]), x, [0.0, 1.0], method="rk4", step=s).final - ref).norm()) for s in (0.1, 0.05, 0.025)]
    assert abs(slope([0.1, 0.05, 0.025], errs) - 1) < 0.25


# --------------------------------------------------------------------------- recording, grids


def test_observe_records_metric_with_leading_time_axis():
    x0 = sphere(3, 4, 5, seed=20)
    times = [0.0, 0.1, 0.3, 0.6, 1.0]
    field = Attention(1.0)
    full = integrate(field, x0, times, method="rk4", step=0.05)
    assert full.states.shape == (5, 3, 4, 5)
    assert isinstance(full, Trajectory)
    # span reduction (d > n) maps the start through U Uᵀ: equal up to round-off
    torch.testing.assert_close(full.states[0], x0, rtol=0, atol=1e-15)
    metric = lambda x: (x[..., 0, :] * x[..., 1, :]).sum(-1)  # noqa: E731
    traj = integrate(field, x0, times, method="rk4", step=0.05, observe=metric)
    assert traj.states.shape == (5, 3)
    torch.testing.assert_close(traj.states, metric(full.states), rtol=0, atol=1e-15)
    torch.testing.assert_close(traj.times, torch.tensor(times, dtype=DOUBLE))
    # structured observations are stacked leaf by leaf
    both = integrate(field, x0, times, method="rk4", step=0.05, observe=lambda x: {"a": metric(x), "b": (x[..., 0, 0], x.sum())})
    assert both.states["a"].shape == (5, 3)
    assert both.states["b"][0].shape == (5, 3) and both.states["b"][1].shape == (5,)


def test_output_times_off_the_step_grid_use_substeps():
    x0 = sphere(4, 3, seed=21)
    times = [0.0, 0.25, 0.6, 1.0]
    step, beta = 0.1, 1.5
    traj = integrate(Attention(beta), x0, times, method="euler", step=step)
    # ceil(0.25/0.1)=3, ceil(0.35/0.1)=4, ceil(0.4/0.1)=4 equal sub-steps
    assert traj.steps == 3 + 4 + 4
    x = x0
    expected = [x0]
    for t0, t1 in zip(times[:-1], times[1:]):
        count = math.ceil((t1 - t0) / step - 1e-9)
        h = (t1 - t0) / count
        for _ in range(count):
            x = unit_rows(x + h * tangent(x, sa_output(x, beta)))
        expected.append(x)
    torch.testing.assert_close(traj.states, torch.stack(expected), rtol=0, atol=1e-14)
    # repeated output times are allowed and record the same state
    rep = integrate(Attention(beta), x0, [0.0, 0.2, 0.2, 0.4], method="rk4", step=0.1)
    torch.testing.assert_close(rep.states[1], rep.states[2], rtol=0, atol=0)


def test_rk4_off_grid_times_match_dopri5():
    x0 = sphere(5, 3, seed=22)
    times = [0.0, 0.33, 0.71, 1.0]
    field = Attention(2.0, normalization="usa")
    a = integrate(field, x0, times, method="rk4", step=0.01)
    b = integrate(field, x0, times, method="dopri5", rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(a.states, b.states, rtol=0, atol=1e-7)


# --------------------------------------------------------------------------- failures


class NaNAfter(Field):
    def __init__(self, t_bad: float):
        self.t_bad = t_bad

    def output(self, t, x):
        y = x.mean(-2, keepdim=True).expand_as(x)
        return y * math.nan if t >= self.t_bad - 1e-12 else y


@pytest.mark.parametrize(
    "method, when, step_no",
    # Euler/authors first evaluate at t = 0.3 in step 4 (0.3 -> 0.4); RK4's last stage of
    # step 3 (0.2 -> 0.3) already evaluates at t = 0.3.
    [("euler", "0.4", 4), ("authors", "0.4", 4), ("rk4", "0.3", 3)],
)
def test_nan_field_raises_with_time(method, when, step_no):
    x0 = sphere(4, 3, seed=23)
    with pytest.raises(NonFiniteStateError, match=rf"t = {re.escape(when)} ") as info:
        integrate(NaNAfter(0.3), x0, [0.0, 1.0], method=method, step=0.1)
    assert isinstance(info.value, FloatingPointError)
    assert f"step {step_no})" in str(info.value)


def test_nan_field_raises_under_dopri5():
    with pytest.raises(NonFiniteStateError, match="t = "):
        integrate(NaNAfter(0.0), sphere(4, 3, seed=24), [0.0, 1.0], method="dopri5")


@pytest.mark.parametrize("method", ["euler", "heun", "rk4", "authors"])
@pytest.mark.parametrize("step", [None, 0, 0.0, -0.1])
def test_bad_step_raises(method, step):
    with pytest.raises(ValueError, match="step"):
        integrate(Attention(1.0), sphere(3, 3), [0.0, 1.0], method=method, step=step)


def test_bad_times_raise():
    with pytest.raises(ValueError, match="times"):
        integrate(Attention(1.0), sphere(3, 3), [0.0, 1.0, 0.5], step=0.1)
    with pytest.raises(ValueError, match="times"):
        integrate(Attention(1.0), sphere(3, 3), [], step=0.1)


def test_max_steps_enforced():
    with pytest.raises(RuntimeError, match="max_steps"):
        integrate(Attention(1.0), sphere(3, 3), [0.0, 1.0], method="euler", step=0.01, max_steps=10)


# --------------------------------------------------------------------------- batches and dtype


@pytest.mark.parametrize("method", ["euler", "rk4", "authors"])
def test_batch_equals_individual_runs(method):
    n, d, B = 5, 3, 4
    x0 = sphere(B, n, d, seed=25)
    Q = gaussian(B, 1, d, d, seed=26, scale=0.8)
    betas = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=DOUBLE)
    times = [0.0, 0.5, 1.0]
    batch = integrate(Attention(betas, Q=Q, V=-1.0), x0, times, method=method, step=0.1)
    assert batch.states.shape == (3, B, n, d)
    for b in range(B):
        alone = integrate(Attention(float(betas[b]), Q=Q[b, 0], V=-1.0), x0[b], times, method=method, step=0.1)
        torch.testing.assert_close(batch.states[:, b], alone.states, rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4", "authors", "dopri5"])
def test_float32_dtype_preserved(method):
    x0 = sphere(2, 4, 3, seed=27, dtype=torch.float32)
    traj = integrate(Attention(1.0, normalization="usa"), x0, [0.0, 0.5, 1.0], method=method, step=0.1, rtol=1e-5, atol=1e-6)
    assert traj.states.dtype == torch.float32
    assert (traj.final.norm(dim=-1) - 1).abs().max() < 1e-6
    ref = integrate(Attention(1.0, normalization="usa"), x0.double(), [0.0, 0.5, 1.0], method=method, step=0.1, rtol=1e-5, atol=1e-6)
    assert (traj.final.double() - ref.final).abs().max() < 1e-4


# --------------------------------------------------------------------------- span reduction


SPAN_N, SPAN_D = 6, 40


def _span_fields():
    d = SPAN_D
    Q, K = gaussian(d, d, seed=28, scale=d**-0.5), gaussian(d, d, seed=29, scale=d**-0.5)
    return {
        "identity": Attention(2.0),
        "repulsive": Attention(2.0, V=-1),
        "usa": Attention(1.0, normalization="usa"),
        "qk": Attention(2.0, Q=Q, K=K),
        "qk_repulsive": Attention(2.0, Q=Q, K=K, V=-1.0),
        "heads_causal": Attention(2.0, Q=gaussian(2, 5, d, seed=30), K=gaussian(2, 5, d, seed=31), causal=True),
        "k_only": Attention(2.0, K=K),
    }


@pytest.mark.parametrize("name", list(_span_fields()))
def test_span_reduction_is_exact(name):
    field = _span_fields()[name]
    x0 = sphere(2, SPAN_N, SPAN_D, seed=32)
    times = [0.0, 0.5, 1.0]
    auto = integrate(field, x0, times, method="rk4", step=0.05, span_reduction="auto")
    off = integrate(field, x0, times, method="rk4", step=0.05, span_reduction=False)
    forced = integrate(field, x0, times, method="rk4", step=0.05, span_reduction=True)
    assert auto.reduced_dimension == SPAN_N and forced.reduced_dimension == SPAN_N
    assert off.reduced_dimension is None
    assert auto.states.shape == off.states.shape == (3, 2, SPAN_N, SPAN_D)
    torch.testing.assert_close(auto.states, off.states, rtol=0, atol=1e-10)
    torch.testing.assert_close(forced.states, off.states, rtol=0, atol=1e-10)
    assert (off.final - x0).abs().max() > 1e-3  # the dynamics did something


def test_span_reduction_invariant_observe_sees_reduced_coordinates():
    field = Attention(2.0)
    x0 = sphere(SPAN_N, SPAN_D, seed=33)
    gram = lambda x: x @ x.mT  # noqa: E731
    red = integrate(field, x0, [0.0, 1.0], step=0.05, observe=gram, invariant_observe=True)
    full = integrate(field, x0, [0.0, 1.0], step=0.05, observe=gram, span_reduction=False)
    torch.testing.assert_close(red.states, full.states, rtol=0, atol=1e-10)
    seen = integrate(field, x0, [0.0, 1.0], step=0.05, observe=lambda x: x.shape[-1], invariant_observe=True)
    assert seen.states == [SPAN_N, SPAN_N]


def test_span_reduction_dopri5_and_basis():
    x0 = sphere(SPAN_N, SPAN_D, seed=34)
    U = span_basis(x0)
    assert U.shape == (SPAN_D, SPAN_N)
    torch.testing.assert_close(U.mT @ U, torch.eye(SPAN_N, dtype=DOUBLE), rtol=0, atol=1e-14)
    torch.testing.assert_close(x0 @ U @ U.mT, x0, rtol=0, atol=1e-14)
    field = Attention(1.0, V=-1)
    a = integrate(field, x0, [0.0, 1.0], method="dopri5", rtol=1e-11, atol=1e-13)
    b = integrate(field, x0, [0.0, 1.0], method="dopri5", rtol=1e-11, atol=1e-13, span_reduction=False)
    assert a.reduced_dimension == SPAN_N
    torch.testing.assert_close(a.final, b.final, rtol=0, atol=1e-9)


def test_span_reduction_skipped_for_general_value():
    d = SPAN_D
    field = Attention(1.0, V=gaussian(d, d, seed=35, scale=d**-0.5))
    x0 = sphere(SPAN_N, d, seed=36)
    auto = integrate(field, x0, [0.0, 0.5], method="rk4", step=0.05)
    assert auto.reduced_dimension is None
    off = integrate(field, x0, [0.0, 0.5], method="rk4", step=0.05, span_reduction=False)
    torch.testing.assert_close(auto.states, off.states, rtol=0, atol=0)
    # the tokens really leave their initial span: the reduction would be wrong here
    residual = off.final - off.final @ span_basis(x0) @ span_basis(x0).mT
    assert residual.abs().max() > 1e-3
    with pytest.raises(ValueError, match="span"):
        integrate(field, x0, [0.0, 0.5], method="rk4", step=0.05, span_reduction=True)
    # an MLP term also blocks it
    mlp = MLP(gaussian(d, 3, seed=37), gaussian(3, d, seed=38))
    assert integrate(Attention(1.0) + mlp, x0, [0.0, 0.1], step=0.05).reduced_dimension is None


def test_methods_registry():
    assert set(METHODS) == {"euler", "heun", "rk4", "authors", "dopri5"}
    assert [METHODS[m].order for m in ("euler", "heun", "rk4", "authors", "dopri5")] == [1, 2, 4, 1, 5]
    traj = integrate(Attention(1.0), sphere(3, 3), [0.0, 1.0], method="heun", step=0.1)
    assert traj.method == "heun" and traj.steps == 10 and traj.evaluations == 20 and traj.rejected == 0
