"""The master PDE on the token axis: operators, stability bound, stabilisers, fitting."""

from __future__ import annotations

import math

import pytest
import torch

from tokenswarm.fields import attention_weights
from tokenswarm.meanfield.token_pde import (
    MAX_STABLE_TAU,
    StabilityError,
    TokenPDE,
    TokenPDEConfig,
    diffusion_step,
    diffusion_substeps,
    dirichlet_energy,
    fit_token_pde,
    laplacian_matrix,
    layer_norm_projection,
    neumann_laplacian,
    one_step_errors,
)

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------
# Neumann Laplacian
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 7, 32])
def test_laplacian_symmetric_nsd_spectrum_and_mass(n):
    L = laplacian_matrix(n)
    assert torch.equal(L, L.T)
    eig = torch.linalg.eigvalsh(L)
    assert eig.max() <= 1e-12 and eig.min() >= -4 - 1e-12
    # the known spectrum -4 sin^2(pi k / (2n)), k = 0..n-1
    k = torch.arange(n, dtype=F64)
    expected = torch.sort(-4 * torch.sin(math.pi * k / (2 * n)) ** 2).values
    assert torch.allclose(torch.sort(eig).values, expected, atol=1e-12)
    # the column sums vanish: the token sum is conserved exactly (integers: no round-off)
    u = torch.randint(-50, 50, (5, n, 3), generator=_gen(n)).to(F64)
    assert torch.equal(neumann_laplacian(u).sum(-2), torch.zeros(5, 3, dtype=F64))
    # operator form agrees with the matrix
    assert torch.allclose(neumann_laplacian(u), torch.einsum("st,btd->bsd", L, u))


def test_laplacian_mask_cuts_links_and_conserves_mass():
    u = torch.randn(2, 6, 3, generator=_gen(), dtype=F64)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    lap = neumann_laplacian(u, mask)
    # the first sequence behaves like an n = 4 sequence; its padded tokens get nothing
    assert torch.allclose(lap[0, :4], neumann_laplacian(u[:1, :4])[0])
    assert torch.equal(lap[0, 4:], torch.zeros(2, 3, dtype=F64))
    assert torch.allclose(lap[1], neumann_laplacian(u[1:])[0])
    assert torch.allclose(lap.sum(-2), torch.zeros(2, 3, dtype=F64), atol=1e-13)


def test_dirichlet_energy_is_minus_half_quadratic_form():
    u = torch.randn(3, 9, 4, generator=_gen(1), dtype=F64)
    quad = -0.5 * (u * neumann_laplacian(u)).sum((-2, -1))
    assert torch.allclose(dirichlet_energy(u), quad)


@pytest.mark.parametrize("tau", [0.1, 0.25, 0.4, 0.5])
def test_explicit_diffusion_nonexpansive_and_energy_decreasing_up_to_half(tau):
    n = 16
    u = torch.randn(50, n, 3, generator=_gen(2), dtype=F64)
    # the worst case: the highest (checkerboard) mode, eigenvalue -4 sin^2(pi (n-1)/(2n))
    check = torch.tensor([(-1.0) ** s for s in range(n)], dtype=F64)[None, :, None].expand(1, n, 3)
    u = torch.cat([u, check], 0)
    # the step matrix M = I + tau L is a contraction in the 2-norm
    M = torch.eye(n, dtype=F64) + tau * laplacian_matrix(n)
    assert torch.linalg.matrix_norm(M, ord=2) <= 1 + 1e-12
    energy = dirichlet_energy(u)
    for _ in range(40):
        new = diffusion_step(u, tau)
        assert torch.all(new.norm(dim=(-2, -1)) <= u.norm(dim=(-2, -1)) + 1e-12)
        new_energy = dirichlet_energy(new)
        assert torch.all(new_energy <= energy + 1e-12)
        u, energy = new, new_energy


@pytest.mark.parametrize("tau", [0.55, 0.75, 1.0])
def test_explicit_diffusion_blows_up_above_half(tau):
    # bypass the guard on purpose: u + tau L u with tau > 1/2 amplifies the top mode by
    # |1 - 4 tau sin^2(pi (n-1)/(2n))| > 1 for n large enough
    n = 32
    u = torch.randn(4, n, 2, generator=_gen(3), dtype=F64)
    top = 4 * math.sin(math.pi * (n - 1) / (2 * n)) ** 2
    factor = abs(1 - tau * top)
    assert factor > 1
    start = u.norm()
    for _ in range(300):
        u = u + tau * neumann_laplacian(u)
    growth = float(u.norm() / start)
    assert growth > 1e3  # measured: (factor)^300 times the top-mode content
    assert math.log(growth) / 300 == pytest.approx(math.log(factor), rel=0.05)


def test_stability_guard_errors_or_substeps():
    u = torch.randn(2, 10, 3, generator=_gen(4), dtype=F64)
    with pytest.raises(StabilityError, match="tau"):
        diffusion_step(u, 0.7, stability="error")
    assert diffusion_substeps(0.5) == 1 and diffusion_substeps(0.51) == 2 and diffusion_substeps(2.0) == 4
    sub = diffusion_step(u, 1.4, stability="substep")
    ref = u
    for _ in range(3):
        ref = ref + (1.4 / 3) * neumann_laplacian(ref)
    assert torch.allclose(sub, ref)
    # the model's guard
    config = TokenPDEConfig(dim=3, layers=2, qk="identity", value="identity", reaction="none",
                            norm="none", stability="error", init_diffusion=0.8)
    pde = TokenPDE(config, dtype=F64)
    with pytest.raises(StabilityError, match="substeps"):
        pde(u)
    pde2 = TokenPDE(TokenPDEConfig(**{**config.__dict__, "substeps": 2}), dtype=F64)
    assert torch.isfinite(pde2(u).final).all()


# ---------------------------------------------------------------------------------------
# Attention and normalisation
# ---------------------------------------------------------------------------------------
def test_row_stochastic_attention_with_identity_value_cannot_grow_hull():
    torch.manual_seed(0)
    u = torch.randn(20, 12, 5, generator=_gen(5), dtype=F64) * 3
    q = torch.randn(20, 2, 12, 4, generator=_gen(6), dtype=F64)
    k = torch.randn(20, 2, 12, 4, generator=_gen(7), dtype=F64)
    A = attention_weights(q @ k.mT * 2.0)
    assert torch.allclose(A.sum(-1), torch.ones(20, 2, 12, dtype=F64))
    out = A @ u.unsqueeze(1)  # (20, 2, 12, 5): V = I
    diam = torch.cdist(u, u).amax((-2, -1))
    diam_out = torch.cdist(out, out).amax((-2, -1))
    assert torch.all(diam_out <= diam[:, None] + 1e-12)
    # support functions: max_i <w, y_i> <= max_i <w, x_i> for many directions w
    w = torch.randn(200, 5, generator=_gen(8), dtype=F64)
    assert torch.all((out @ w.T).amax(-2) <= (u @ w.T).amax(-2)[:, None] + 1e-12)
    # the model's identity-value attention operator is the same convex combination
    pde = TokenPDE(TokenPDEConfig(dim=5, heads=3, qk="identity", value="identity", reaction="none",
                                  norm="none", init_beta=4.0), dtype=F64)
    update, _ = pde._attend(u, u, 0, None)
    assert torch.all(torch.cdist(update, update).amax((-2, -1)) <= diam + 1e-12)


def test_layer_norm_projection_mean_zero_norm_sqrt_d():
    z = torch.randn(7, 9, 6, generator=_gen(9), dtype=F64) * 5 + 2
    p = layer_norm_projection(z)
    assert torch.allclose(p.mean(-1), torch.zeros(7, 9, dtype=F64), atol=1e-13)
    assert torch.allclose(p.norm(dim=-1), torch.full((7, 9), math.sqrt(6), dtype=F64))
    # idempotent and equal to torch's layer_norm without affine (eps = 0)
    assert torch.allclose(layer_norm_projection(p), p)
    assert torch.allclose(p, torch.nn.functional.layer_norm(z, (6,), eps=0.0), atol=1e-12)


def test_post_norm_pde_outputs_lie_on_the_projection_image():
    config = TokenPDEConfig(dim=8, layers=3, heads=2, norm="projection", placement="post", norm_eps=0.0,
                            hidden=16)
    pde = TokenPDE(config, generator=_gen(10), dtype=F64)
    u = torch.randn(4, 6, 8, generator=_gen(11), dtype=F64)
    traj = pde(u)
    for state in traj.states[1:]:
        assert torch.allclose(state.mean(-1), torch.zeros(4, 6, dtype=F64), atol=1e-12)
        assert torch.allclose(state.norm(dim=-1), torch.full((4, 6), math.sqrt(8), dtype=F64))
    assert len(traj.attention) == 3 and traj.attention[0].shape == (4, 2, 6, 6)


def test_residual_block_is_one_lie_trotter_euler_step():
    # a pre-LN Transformer layer, written out by hand, equals one PDE layer with dt = 1 and D -> 0
    config = TokenPDEConfig(dim=6, layers=1, heads=2, diffusion=False, hidden=12, norm_eps=1e-5)
    pde = TokenPDE(config, generator=_gen(12), dtype=F64)
    u = torch.randn(3, 5, 6, generator=_gen(13), dtype=F64)
    ln = lambda x: torch.nn.functional.layer_norm(x, (6,), eps=1e-5)  # noqa: E731
    z = ln(u)
    q = torch.einsum("hkd,bnd->bhnk", pde.w_query[0], z) + pde.b_query[0][:, None]
    k = torch.einsum("hkd,bnd->bhnk", pde.w_key[0], z)
    v = torch.einsum("hkd,bnd->bhnk", pde.w_value[0], z)
    A = torch.softmax(q @ k.mT / math.sqrt(3), -1)
    mid = u + pde.alpha[0] * ((A @ v).transpose(1, 2).flatten(-2) @ pde.w_out[0].T + pde.b_out[0])
    out = mid + torch.nn.functional.gelu(ln(mid) @ pde.w1[0].T + pde.b1[0]) @ pde.w2[0].T + pde.b2[0]
    assert torch.allclose(pde(u).final, out, atol=1e-12)


def test_masked_tokens_do_not_influence_real_ones():
    config = TokenPDEConfig(dim=4, layers=2, heads=2, hidden=8, init_diffusion=0.3)
    pde = TokenPDE(config, generator=_gen(14), dtype=F64)
    u = torch.randn(1, 7, 4, generator=_gen(15), dtype=F64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    junk = u.clone()
    junk[0, 5:] = 100.0
    a, b = pde(u, mask), pde(junk, mask)
    assert torch.allclose(a.final, b.final)
    assert torch.allclose(a.final[:, :5], pde(u[:, :5]).final)
    assert torch.equal(a.final[0, 5:], torch.zeros(2, 4, dtype=F64))


# ---------------------------------------------------------------------------------------
# Fitting: recover known coefficients from data generated by the PDE itself
# ---------------------------------------------------------------------------------------
def _synthetic(config, truth, batch, seed):
    u0 = torch.randn(batch, 10, config.dim, generator=_gen(seed), dtype=F64)
    with torch.no_grad():
        return truth(u0).states


def test_fit_recovers_diffusion_alpha_beta_and_linear_reaction():
    config = TokenPDEConfig(dim=3, layers=4, heads=1, qk="identity", value="identity", reaction="linear",
                            norm="none", depth_dependent=False, init_diffusion=0.05)
    truth = TokenPDE(config, dtype=F64)
    with torch.no_grad():
        truth.raw_diffusion.fill_(math.log(math.expm1(0.3)))  # D = 0.3
        truth.alpha.fill_(0.7)
        truth.beta.fill_(1.5)
        truth.w_reaction.copy_(torch.tensor([[-0.3, 0.1, 0.0], [0.05, -0.2, 0.1], [0.0, -0.1, -0.25]]))
        truth.b_reaction.copy_(torch.tensor([0.1, -0.05, 0.02]))
    states = _synthetic(config, truth, 24, 16)
    model = TokenPDE(config, generator=_gen(17), dtype=F64)
    report = fit_token_pde(model, states, steps=60, lr=1.0, optimizer="lbfgs", tolerance=1e-22)
    assert report.losses[-1] < 1e-12
    assert float(model.diffusion_coefficient[0].detach()) == pytest.approx(0.3, abs=1e-4)
    assert float(model.alpha[0].detach()) == pytest.approx(0.7, abs=1e-4)
    assert float(model.beta[0, 0].detach()) == pytest.approx(1.5, abs=1e-3)
    assert torch.allclose(model.w_reaction, truth.w_reaction, atol=1e-4)
    # held-out inputs: one-layer error is tiny
    held = _synthetic(config, truth, 8, 99)
    errors = one_step_errors(model, held)
    assert max(errors["relative"]) < 1e-8


def test_fit_learned_attention_agrees_on_held_out_inputs():
    # learned W_Q, W_K (query bias included) are not identifiable one by one, but the maps are
    config = TokenPDEConfig(dim=4, layers=2, heads=1, head_dim=4, value="identity", reaction="none",
                            diffusion=False, norm="none", depth_dependent=False)
    truth = TokenPDE(config, generator=_gen(20), dtype=F64)
    with torch.no_grad():
        truth.w_query.mul_(3.0)
        truth.alpha.fill_(0.5)
    states = _synthetic(config, truth, 32, 21)
    model = TokenPDE(config, generator=_gen(22), dtype=F64)
    report = fit_token_pde(model, states, steps=80, lr=1.0, optimizer="lbfgs", tolerance=1e-20)
    held = _synthetic(config, truth, 16, 23)
    cos = torch.nn.functional.cosine_similarity(
        model.attention_maps(held[0], 0).flatten(1), truth.attention_maps(held[0], 0).flatten(1), dim=-1)
    assert report.train_relative_error[0] < 1e-6
    assert cos.min() > 0.999
    assert float(model.alpha[0].detach()) == pytest.approx(0.5, abs=1e-3)


def test_fit_rollout_mode_and_adam_reduce_error():
    config = TokenPDEConfig(dim=4, layers=3, heads=2, hidden=8, norm="projection", depth_dependent=True)
    truth = TokenPDE(config, generator=_gen(30), dtype=F64)
    with torch.no_grad():
        truth.w2.mul_(5.0)
    states = _synthetic(config, truth, 16, 31)
    model = TokenPDE(config, generator=_gen(32), dtype=F64)
    before = one_step_errors(model, states, rollout=True)["relative"]
    report = fit_token_pde(model, states, steps=150, lr=2e-2, mode="rollout")
    after = one_step_errors(model, states, rollout=True)["relative"]
    assert report.mode == "rollout" and report.losses[-1] < report.losses[0]
    assert all(a < 0.5 * b for a, b in zip(after, before))


def test_config_validation_names_the_parameter():
    with pytest.raises(ValueError, match="placement"):
        TokenPDEConfig(dim=3, placement="middle")
    with pytest.raises(ValueError, match="dim"):
        TokenPDEConfig(dim=0)
    assert MAX_STABLE_TAU == 0.5


def test_weight_decay_spares_scalar_coefficients():
    # data from a pure-diffusion PDE: the fitted D sits at the optimum; a decay applied to raw D
    # (lr * decay = 0.1 per step) would drag it towards softplus(0) = 0.69 within 50 steps
    config = TokenPDEConfig(dim=2, layers=2, attention=False, reaction="none", norm="none", init_diffusion=0.2,
                            depth_dependent=False)
    truth = TokenPDE(config, dtype=F64)
    states = _synthetic(config, truth, 8, 40)
    model = TokenPDE(config, dtype=F64)
    fit_token_pde(model, states, steps=50, lr=1e-2, weight_decay=10.0)
    assert float(model.diffusion_coefficient[0].detach()) == pytest.approx(0.2, abs=1e-3)
