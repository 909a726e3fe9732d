"""The circle mean-field solvers: invariants to round-off, convergence orders, linear rates,
agreement with particles, and the exact Fourier attention field on S^1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenswarm.experiments.noisy_kuramoto import self_consistent_order
from tokenswarm.fields import Attention
from tokenswarm.fields.circle import CircleAttention, fourier_modes_needed
from tokenswarm.meanfield.circle import (
    CircleGrid,
    CircleModel,
    count_clusters,
    fourier_coefficient,
    perturbed_uniform,
    quantile_points,
    remap,
    sample_density,
    solve_circle,
    uniform_density,
    von_mises_mixture,
    w1_circle,
    w1_densities,
)
from tokenswarm.meanfield.particles import (
    common_noise_angles,
    flow_angles,
    noisy_angles,
)
from tokenswarm.noise import BrownianPath, FieldNoise

pytestmark = pytest.mark.usefixtures("one_thread")


def _bumps(grid):
    return von_mises_mixture(grid, [0.5, 2.6, 4.4], [4.0, 6.0, 3.0], [0.4, 0.35, 0.25])


# ------------------------------------------------------------------ Fourier attention on S^1
@pytest.mark.parametrize("beta", [0.0, 0.7, 9.0, 40.0])
@pytest.mark.parametrize("normalization", ["sa", "usa"])
@pytest.mark.parametrize("value", [1.0, -1.0])
def test_circle_attention_equals_the_dense_attention_field(beta, normalization, value):
    g = torch.Generator().manual_seed(1)
    theta = 2 * math.pi * torch.rand(2, 37, generator=g, dtype=torch.float64)
    x = torch.stack([theta.cos(), theta.sin()], -1)
    fourier = CircleAttention(beta, normalization=normalization, value=value)
    dense = Attention(beta, normalization=normalization, V=value * torch.eye(2, dtype=torch.float64), backend="dense")
    reference = dense.output(0.0, x)
    scale = reference.abs().max()
    assert (fourier.output(0.0, x) - reference).abs().max() <= 1e-13 * scale
    velocity = dense.velocity(0.0, x)
    tangential = velocity[..., 1] * theta.cos() - velocity[..., 0] * theta.sin()
    assert (fourier.angular(theta) - tangential).abs().max() <= 1e-13 * scale


def test_fourier_cutoff_is_where_the_bessel_coefficients_vanish():
    from scipy.special import ive
    for beta in [0.5, 4.0, 64.0]:
        K = fourier_modes_needed(beta)
        assert ive(K, beta) <= 1e-18 * ive(0, beta) < ive(K - 1, beta)
    assert fourier_modes_needed(0.0) == 1
    with pytest.raises(ValueError):
        fourier_modes_needed(-1.0)


# -------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("model,value,kappa", [("sa", "identity", 0.0), ("usa", "identity", 0.0),
                                               ("sa", "minus_identity", 0.0), ("usa", "identity", 3.0)])
def test_mass_is_conserved_and_density_stays_nonnegative(model, value, kappa):
    grid = CircleGrid(256)
    rho0 = perturbed_uniform(grid, {3: 0.5, 5: 0.3})
    beta = 6.0 if model == "sa" else 3.0          # USA speeds grow like e^beta: keep the run short
    traj = solve_circle(CircleModel(beta=beta, model=model, value=value, kappa=kappa), grid, rho0, 4.0,
                        save_times=np.linspace(0, 4, 9))
    assert float(traj.mass_error.max()) < 1e-12
    assert float(traj.min_density.min()) >= 0.0
    assert float(traj.density.min()) >= 0.0


@pytest.mark.parametrize("limiter", ["mc", "minmod", "van_leer", "none"])
def test_positivity_with_empty_cells_and_a_collapsing_cluster(limiter):
    grid = CircleGrid(128)
    rho0 = torch.zeros(128, dtype=torch.float64)
    rho0[10:30] = 1.0
    rho0[70:75] = 3.0                        # exact zeros elsewhere, two plateaus with jumps
    rho0 = rho0 / grid.mass(rho0)
    traj = solve_circle(CircleModel(beta=20.0, model="sa"), grid, rho0, 3.0, limiter=limiter,
                        save_times=[0.0, 1.5, 3.0])
    assert float(traj.min_density) >= 0.0
    assert float(traj.mass_error) < 1e-12
    assert float(traj.density[-1].max()) > 3 * float(rho0.max())       # it did concentrate


@pytest.mark.parametrize("model", ["sa", "usa"])
def test_energy_is_monotone_at_every_step(model):
    grid = CircleGrid(256)
    rho0 = _bumps(grid)
    up = solve_circle(CircleModel(beta=3.0, model=model), grid, rho0, 3.0, save_times=[0.0, 3.0])
    down = solve_circle(CircleModel(beta=3.0, model=model, value="minus_identity"), grid, rho0, 3.0,
                        save_times=[0.0, 3.0])
    assert bool(up.energy_monotone(increasing=True)) and up.steps > 20
    assert bool(down.energy_monotone(increasing=False))
    assert float(up.energy[-1] - up.energy[0]) > 1e-3          # not trivially flat
    assert float(down.energy[0] - down.energy[-1]) > 1e-4
    # the repulsive flow approaches the uniform density, the energy's minimiser (Prop. 3.4)
    from tokenswarm.theory import uniform_energy
    assert float(down.energy[-1]) > uniform_energy(3.0, 2) - 1e-12


def test_free_energy_decreases_for_repulsive_usa_with_noise_and_increases_attractive():
    grid = CircleGrid(128)
    rho0 = _bumps(grid)
    traj = solve_circle(CircleModel(beta=2.0, model="usa", kappa=4.0), grid, rho0, 3.0,
                        save_times=np.linspace(0, 3, 31))
    assert (traj.free_energy[1:] - traj.free_energy[:-1] >= -1e-12).all()


def test_energy_of_the_uniform_density_matches_the_bessel_closed_form():
    from tokenswarm.meanfield.circle import _Operator
    from tokenswarm.theory import uniform_energy
    grid = CircleGrid(512)
    rho = uniform_density(grid)
    for beta in [0.5, 3.0, 10.0]:
        op = _Operator(CircleModel(beta=beta), grid, "mc")
        # E_beta[sigma] with sigma the uniform probability; rho is the same measure
        assert float(op.energy(rho, op.potential(rho))) == pytest.approx(uniform_energy(beta, 2), rel=1e-12)


# ------------------------------------------------------------------ accuracy and rates
def test_second_order_convergence_in_the_cell_size():
    def solve(cells):
        grid = CircleGrid(cells)
        traj = solve_circle(CircleModel(beta=1.0, model="sa"), grid, _bumps(grid), 1.0, save_times=[0.0, 1.0])
        return traj.density[-1]

    reference = solve(4096)
    sizes = [128, 256, 512]
    errors = [float((solve(n) - reference.reshape(n, -1).mean(-1)).abs().sum() * 2 * math.pi / n) for n in sizes]
    order = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert 1.8 < order < 2.4, (errors, order)


@pytest.mark.parametrize("model,value,beta,k", [("sa", "identity", 4.0, 2), ("usa", "identity", 9.0, 4),
                                                ("sa", "minus_identity", 4.0, 3), ("usa", "identity", 0.0, 1)])
def test_linear_growth_rate_matches_the_bessel_prediction(model, value, beta, k):
    grid = CircleGrid(512)
    m = CircleModel(beta=beta, model=model, value=value)
    rate = float(m.growth_rate(k))
    T = 3.0 / abs(rate)
    times = np.linspace(0, T, 21)
    traj = solve_circle(m, grid, perturbed_uniform(grid, {k: 1e-5}), T, save_times=times)
    a = np.array([abs(complex(fourier_coefficient(grid, r, k))) for r in traj.density])
    measured = np.polyfit(times[10:], np.log(a[10:]), 1)[0]
    assert measured == pytest.approx(rate, rel=5e-3)


def test_diffusion_is_the_exact_semigroup_of_the_discrete_laplacian():
    # beta = 0: modes k >= 2 feel no interaction at first order, only diffusion 1/kappa
    grid = CircleGrid(256)
    kappa, k, T = 0.5, 3, 0.2
    traj = solve_circle(CircleModel(beta=0.0, kappa=kappa), grid, perturbed_uniform(grid, {k: 1e-3}), T,
                        save_times=[0.0, T])
    ratio = abs(complex(fourier_coefficient(grid, traj.density[-1], k))) / abs(
        complex(fourier_coefficient(grid, traj.density[0], k)))
    discrete = math.exp(-(1 / kappa) * (4 / grid.h**2) * math.sin(k * grid.h / 2) ** 2 * T)
    assert ratio == pytest.approx(discrete, rel=1e-9)
    # and the continuous e^{-k^2 t/kappa} up to the symbol's O((kh)^2) error
    assert ratio == pytest.approx(math.exp(-(k**2) * T / kappa), rel=(k * grid.h) ** 2 * (k**2 * T / kappa) / 6)


# ------------------------------------------------------------------ particles vs density
def test_quantile_particles_follow_the_pde():
    grid = CircleGrid(2048)
    rho0 = _bumps(grid)
    m = CircleModel(beta=2.0, model="sa")
    times = [0.0, 1.0, 2.0]
    pde = solve_circle(m, grid, rho0, 2.0, save_times=times)
    theta = flow_angles(m, quantile_points(grid, rho0, 4000), times, step=0.05)
    w1 = [float(w1_circle(theta[i], pde.density[i], grid)) for i in range(3)]
    assert w1[0] < 2e-3 and w1[-1] < 3e-3, w1
    # and a different model is clearly distinguishable
    other = flow_angles(CircleModel(beta=2.0, model="usa"), quantile_points(grid, rho0, 4000), times, step=0.05)
    assert float(w1_circle(other[-1], pde.density[-1], grid)) > 10 * w1[-1]


def test_noisy_particles_follow_the_fokker_planck_equation():
    grid = CircleGrid(256)
    rho0 = _bumps(grid)
    m = CircleModel(beta=1.0, model="usa", kappa=2.0)
    pde = solve_circle(m, grid, rho0, 1.0, save_times=[0.0, 1.0])
    g = torch.Generator().manual_seed(3)
    theta = noisy_angles(m, sample_density(grid, rho0, 20000, batch=(2,), generator=g), [0.0, 1.0], step=0.01,
                         generator=g)
    w1 = w1_circle(theta[-1], pde.density[-1], grid)
    assert (w1 < 0.03).all(), w1        # sampling level for n = 2e4 is ~0.01
    deterministic = solve_circle(CircleModel(beta=1.0, model="usa"), grid, rho0, 1.0, save_times=[0.0, 1.0])
    assert (w1_circle(theta[-1], deterministic.density[-1], grid) > 2 * w1).all()


def test_common_noise_spde_follows_particles_driven_by_the_same_noise():
    grid = CircleGrid(512)
    rho0 = _bumps(grid)
    m = CircleModel(beta=1.0, model="sa")
    g = torch.Generator().manual_seed(0)
    noise = FieldNoise.draw((), 2, 16, activation="tanh", sigma_u=0.5, generator=g)
    shape = noise.shape(1, 2)
    path = BrownianPath((), shape, 1.0, 100, generator=g).increments()
    other = BrownianPath((), shape, 1.0, 100, generator=g).increments()
    spde = solve_circle(m, grid, rho0, 1.0, save_times=[0.0, 1.0], noise=noise.apply, increments=path)
    baseline = solve_circle(m, grid, rho0, 1.0, save_times=[0.0, 1.0], noise=noise.apply, increments=other)
    assert float(spde.mass_error) < 1e-12 and float(spde.min_density) >= 0
    assert spde.times.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="multiples"):       # 0.555 is not on the noise grid
        solve_circle(m, grid, rho0, 1.0, save_times=[0.0, 0.555, 1.0], noise=noise.apply, increments=path)
    theta = common_noise_angles(m, quantile_points(grid, rho0, 4000), noise, path, 1.0, save_every=100)
    same = float(w1_circle(theta[-1], spde.density[-1], grid))
    independent = float(w1_circle(theta[-1], baseline.density[-1], grid))
    assert same < 0.01 and same < 0.1 * independent, (same, independent)


# ------------------------------------------------------------------------ measurements
def test_w1_of_equispaced_atoms_against_uniform_is_pi_over_2n():
    grid = CircleGrid(64)
    for n in [1, 7, 100]:
        theta = (torch.arange(n, dtype=torch.float64) + 0.5) * 2 * math.pi / n + 0.123
        assert float(w1_circle(theta, uniform_density(grid), grid)) == pytest.approx(math.pi / (2 * n), rel=1e-12)


def test_w1_against_pot_for_a_point_mass_and_shifted_densities():
    ot = pytest.importorskip("ot")
    grid = CircleGrid(512)
    rho = _bumps(grid)
    g = torch.Generator().manual_seed(0)
    theta = sample_density(grid, rho, 300, generator=g)
    # reference: POT's exact circle W1 between the atoms and a fine sample of the density
    fine = quantile_points(grid, rho, 200000)
    expected = ot.wasserstein_circle(theta.numpy() / (2 * math.pi), fine.numpy() / (2 * math.pi), p=1)[0] * 2 * math.pi
    assert float(w1_circle(theta, rho, grid)) == pytest.approx(float(expected), rel=2e-3)
    # two densities on one grid: exact for their cell-centre atoms, as POT computes them
    other = von_mises_mixture(grid, [3.0], [2.0])
    centers = grid.centers.numpy() / (2 * math.pi)
    expected = ot.wasserstein_circle(centers, centers, (rho * grid.h).numpy(), (other * grid.h).numpy(), p=1)[0]
    assert float(w1_densities(rho, other, grid)) == pytest.approx(float(expected) * 2 * math.pi, rel=1e-9)
    assert float(w1_densities(rho, rho, grid)) == 0.0


def test_remap_conserves_mass_and_positivity_and_identity_is_exact():
    grid = CircleGrid(200)
    rho = _bumps(grid)
    assert torch.allclose(remap(grid, rho, grid.faces), rho, rtol=0, atol=1e-13)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        a = 0.3 * torch.randn(3, generator=g, dtype=torch.float64)
        f = grid.faces
        moved = f + a[0] + 0.2 * a[1] * torch.sin(f) + 0.2 * a[2] * torch.cos(2 * f)
        new = remap(grid, rho, moved)
        assert abs(float(grid.mass(new)) - 1.0) < 1e-13 and float(new.min()) >= 0
    with pytest.raises(FloatingPointError):
        remap(grid, rho, f + 2.0 * torch.sin(f))           # folds the circle


def test_sampling_reproduces_the_density():
    grid = CircleGrid(256)
    rho = _bumps(grid)
    theta = sample_density(grid, rho, 200000, generator=torch.Generator().manual_seed(0))
    exact = fourier_coefficient(grid, rho, 1)
    estimate = torch.polar(torch.ones_like(theta), -theta).mean()
    assert abs(complex(estimate - exact)) < 4 * math.sqrt(1 / 200000)
    q = quantile_points(grid, rho, 1000)
    assert (q.diff() > 0).all() and float(w1_circle(q, rho, grid)) < 2e-3


def test_cluster_count_and_fourier_coefficients():
    grid = CircleGrid(512)
    rho = von_mises_mixture(grid, [0.0, 2.0, 4.0], [200.0, 200.0, 200.0])
    assert int(count_clusters(rho, grid)) == 3
    assert int(count_clusters(uniform_density(grid), grid)) == 0
    assert abs(complex(fourier_coefficient(grid, perturbed_uniform(grid, {2: 0.4}), 2))) == pytest.approx(
        0.2 * (math.sin(2 * grid.h / 2) / (2 * grid.h / 2)) ** 2, rel=1e-9)   # cell averaging, then cells


def test_self_consistent_order_parameter():
    from scipy.special import iv
    assert self_consistent_order(1.5) == 0.0 and self_consistent_order(2.0) == 0.0
    for kappa in [2.2, 3.0, 8.0]:
        r = self_consistent_order(kappa)
        assert r > 0 and r == pytest.approx(iv(1, kappa * r) / iv(0, kappa * r), abs=1e-12)


def test_bad_inputs_raise_clear_errors():
    grid = CircleGrid(64)
    rho = uniform_density(grid)
    with pytest.raises(ValueError, match="cfl"):
        solve_circle(CircleModel(), grid, rho, 1.0, cfl=0.8)
    with pytest.raises(ValueError, match="non-negative"):
        solve_circle(CircleModel(), grid, -rho, 1.0)
    with pytest.raises(ValueError, match="cells"):
        solve_circle(CircleModel(), CircleGrid(32), rho, 1.0)
    with pytest.raises(ValueError, match="beta"):
        CircleModel(beta=1000.0)
    with pytest.raises(ValueError, match="kappa"):
        CircleModel(kappa=-1.0)
    with pytest.raises(ValueError, match="model"):
        CircleModel(model="softmax")
    with pytest.raises(ValueError, match="negative"):
        perturbed_uniform(grid, {1: 0.8, 2: 0.5})
    with pytest.raises(ValueError):
        CircleGrid(4)


def test_bench_meanfield_target_runs_through_the_cli():
    import json as _json

    from typer.testing import CliRunner

    from tokenswarm import cli
    from tokenswarm.runtime.perf import bench_meanfield

    measured = bench_meanfield(cells=64, beta=4.0, t_max=2.0)
    assert measured.steps > 0 and measured.mass_error < 1e-12 and measured.min_density >= 0
    assert 0 < measured.fft_share_of_step < 1
    result = CliRunner().invoke(cli.app, ["bench", "meanfield", "-p", "cells=64", "-p", "t_max=1", "--json"])
    assert result.exit_code == 0, result.output
    summary = _json.loads(result.stdout)
    assert summary["benchmark"] == "meanfield" and summary["params"]["cells"] == 64
    assert summary["metrics"]["steps"] > 0
