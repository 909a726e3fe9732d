"""Solver objects (one file per scheme): each one's order measured, the deprecated
``method=``/``step=`` keywords bit-identical to the objects, and ``solve/`` independent of
attention (it learns the authors' USA step rule from the field)."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import numpy as np
import pytest
import torch

import tokenswarm.solve
from tokenswarm.fields import Attention
from tokenswarm.noise import BrownianPath, ScalarNoise, ValueNoise
from tokenswarm.solve import (
    RK4,
    SDE_SOLVERS,
    SOLVERS,
    Authors,
    DormandPrince,
    Euler,
    EulerMaruyama,
    Heun,
    StratonovichHeun,
    integrate,
    solver_from_name,
)
from tokenswarm.solve.sde import integrate_sde
from tokenswarm.sphere import sample_equiangular, sample_uniform
from tokenswarm.theory import equiangular_solution

N, BETA, RHO0, T = 4, 1.0, 0.1, 2.0
SOLVE_DIR = pathlib.Path(tokenswarm.solve.__file__).parent


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mean_off_diagonal(x: torch.Tensor) -> float:
    g = x @ x.mT
    return float(g[~torch.eye(x.shape[-2], dtype=torch.bool)].mean())


def slope(steps, errors) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


@pytest.fixture(scope="module")
def rho_exact() -> float:
    return float(equiangular_solution(T, RHO0, N, BETA, "sa", rtol=1e-13, atol=1e-15))


@pytest.mark.parametrize(
    "cls, steps",
    [
        (Euler, [0.1, 0.05, 0.025, 0.0125]),
        (Heun, [0.2, 0.1, 0.05, 0.025]),
        (RK4, [0.2, 0.1, 0.05, 0.025]),
        (Authors, [0.1, 0.05, 0.025, 0.0125]),
    ],
)
def test_fixed_step_order_on_the_equiangular_ode(rho_exact, cls, steps):
    """Global error of rho(T) against the closed-form ODE (6.9): slope = the solver's order."""
    x0 = sample_equiangular(N, N, RHO0)
    errors = []
    for h in steps:
        final = integrate(Attention(BETA), x0, [0.0, T], cls(step=h), span_reduction=False).final
        errors.append(abs(mean_off_diagonal(final) - rho_exact))
    measured = slope(steps, errors)
    assert abs(measured - cls.order) < 0.25, (cls.name, measured, errors)


def test_dormand_prince_reaches_its_tolerance(rho_exact):
    x0 = sample_equiangular(N, N, RHO0)
    errors, work = [], []
    for rtol in (1e-5, 1e-7, 1e-9, 1e-11):
        traj = integrate(Attention(BETA), x0, [0.0, T], DormandPrince(rtol=rtol, atol=rtol * 1e-2))
        errors.append(abs(mean_off_diagonal(traj.final) - rho_exact))
        work.append(traj.steps)
        assert errors[-1] < 100 * rtol, (rtol, errors[-1])
    assert errors[-1] < errors[0] / 1e4 and work == sorted(work)
    assert DormandPrince.order == 5


def _strong_errors(solver, noise, steps, *, runs=100, n=3, d=3, fine=1024, seed=2):
    """RMS distance at t = 1 to the same scheme on the finest grid, on one Brownian path."""
    x0 = sample_uniform(n, d, runs, generator=generator(1))
    path = BrownianPath((runs,), noise.shape(n, d), 1.0, fine, generator=generator(seed))
    reference = integrate_sde(Attention(1.0), noise, x0, 1.0, fine, solver=solver, increments=path.increments()).final
    errors = []
    for L in steps:
        x = integrate_sde(Attention(1.0), noise, x0, 1.0, L, solver=solver, increments=path.increments(L)).final
        errors.append(float(((x - reference) ** 2).sum(-1).mean().sqrt()))
    return errors


@pytest.mark.parametrize("noise", [ScalarNoise(beta=1.0, eps=0.3), ValueNoise(beta=1.0, sigma2=0.5)], ids=["scalar", "value"])
def test_euler_maruyama_strong_order_one_half(noise):
    steps = [16, 32, 64, 128]
    measured = slope(steps, _strong_errors(EulerMaruyama(), noise, steps))
    assert abs(-measured - 0.5) < 0.2, measured
    assert EulerMaruyama.order == 0.5


def test_stratonovich_heun_strong_order_one_for_commutative_noise():
    """One scalar Brownian motion per system (commutative noise): Heun has strong order 1,
    where Euler–Maruyama on the same path has 1/2 (previous test)."""
    steps = [16, 32, 64, 128]
    heun = _strong_errors(StratonovichHeun(), ScalarNoise(beta=1.0, eps=0.3), steps)
    euler = _strong_errors(EulerMaruyama(), ScalarNoise(beta=1.0, eps=0.3), steps)
    assert abs(-slope(steps, heun) - 1.0) < 0.3, heun
    assert heun[-1] < euler[-1] / 10
    assert StratonovichHeun.order == 1.0


# ----------------------------------------------------------------- the old keywords are shortcuts


@pytest.mark.parametrize("name", list(SOLVERS))
def test_method_keywords_are_bit_identical_to_solver_objects(name):
    x0 = sample_uniform(5, 3, 2, generator=generator(3))
    for field in (Attention(1.5), Attention(2.0, normalization="usa")):
        old = integrate(field, x0, [0.0, 0.3, 1.0], method=name, step=0.1, rtol=1e-6, atol=1e-8)
        new = integrate(field, x0, [0.0, 0.3, 1.0], solver_from_name(name, 0.1, rtol=1e-6, atol=1e-8))
        assert torch.equal(old.states, new.states)
        assert (old.method, old.steps, old.evaluations, old.info) == (new.method, new.steps, new.evaluations, new.info)
    assert torch.equal(integrate(Attention(1.0), x0, [0.0, 1.0], step=0.1).final,
                       integrate(Attention(1.0), x0, [0.0, 1.0], RK4(step=0.1)).final)  # the old default is rk4


def test_sde_method_keywords_are_bit_identical_to_solver_objects():
    x0 = sample_uniform(4, 3, 3, generator=generator(4))
    noise = ValueNoise(beta=1.0, sigma2=0.4)
    path = BrownianPath((3,), noise.shape(4, 3), 1.0, 20, generator=generator(5))
    cases = [({}, EulerMaruyama()), ({"method": "euler", "split": True}, EulerMaruyama(split=True)),
             ({"method": "heun"}, StratonovichHeun())]
    for keywords, solver in cases:
        old = integrate_sde(Attention(1.0), noise, x0, 1.0, 20, increments=path.increments(), save_every=5, **keywords)
        new = integrate_sde(Attention(1.0), noise, x0, 1.0, 20, solver=solver, increments=path.increments(), save_every=5)
        assert torch.equal(old.states, new.states) and old.method == new.method and old.evaluations == new.evaluations
    assert set(SDE_SOLVERS) == {"euler", "heun"}


def test_solver_settings_live_in_the_object():
    x0 = sample_uniform(3, 3, generator=generator(6))
    with pytest.raises(ValueError, match="inside the solver"):
        integrate(Attention(1.0), x0, [0.0, 1.0], RK4(step=0.1), step=0.05)
    with pytest.raises(ValueError, match="inside the solver"):
        integrate_sde(None, ValueNoise(), x0, 1.0, 10, solver=EulerMaruyama(), split=True)
    with pytest.raises(TypeError):
        integrate(Attention(1.0), x0, [0.0, 1.0], "rk4")
    with pytest.raises(ValueError, match="step > 0"):
        integrate(Attention(1.0), x0, [0.0, 1.0], RK4())
    with pytest.raises(ValueError, match="one of"):
        solver_from_name("milstein", 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RK4(step=0.1).step = 0.2  # type: ignore[misc]
    assert [SOLVERS[name].order for name in ("euler", "heun", "rk4", "authors", "dopri5")] == [1, 2, 4, 1, 5]


def test_authors_step_rule_comes_from_the_field():
    """USA attention rescales the authors' step; SA and ``usa_step=False`` keep it."""
    usa, sa = Attention(2.0, normalization="usa"), Attention(2.0)
    assert Authors(step=0.1).step_for(usa) == usa.authors_step(0.1) < 0.1
    assert Authors(step=0.1, usa_step=False).step_for(usa) == 0.1
    assert Authors(step=0.1).step_for(sa) == 0.1
    assert RK4(step=0.1).step_for(usa) == 0.1


# ----------------------------------------------------------------- solve/ does not know attention


def imported_modules(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_the_import_scanner_sees_both_forms():
    assert "tokenswarm.fields.Attention" in imported_modules("from tokenswarm.fields import Attention\n")
    assert "tokenswarm.fields.attention" in imported_modules("import tokenswarm.fields.attention as a\n")


def test_solve_does_not_import_attention():
    offenders = {}
    for path in sorted(SOLVE_DIR.rglob("*.py")):
        bad = {m for m in imported_modules(path.read_text(encoding="utf-8"))
               if m.startswith("tokenswarm.fields.attention") or m == "tokenswarm.fields.Attention"}
        if bad:
            offenders[str(path.relative_to(SOLVE_DIR))] = sorted(bad)
    assert not offenders, offenders
    assert {p.stem for p in (SOLVE_DIR / "solvers").glob("*.py")} >= {
        "euler", "heun", "rk4", "authors", "dopri5", "euler_maruyama", "stratonovich_heun"}


def test_sde_times_contract_matches_integrate():
    """``times`` as in :func:`integrate`: first time = time of x0 (or ``t0``), outputs on the step grid."""
    x0 = sample_uniform(4, 3, 3, generator=generator(7))
    noise = ValueNoise(beta=1.0, sigma2=0.4)
    increments = BrownianPath((3,), noise.shape(4, 3), 1.0, 20, generator=generator(8)).increments()
    solver = StratonovichHeun()
    old = integrate_sde(Attention(1.0), noise, x0, 1.0, 20, solver=solver, increments=increments, save_every=5)
    new = integrate_sde(Attention(1.0), noise, x0, times=[0.0, 0.25, 0.5, 0.75, 1.0], steps=20, solver=solver,
                        increments=increments)
    assert torch.equal(old.states, new.states) and torch.allclose(old.times, new.times, rtol=0, atol=1e-15)
    tail = integrate_sde(Attention(1.0), noise, x0, times=[0.5, 1.0, 1.0], t0=0.0, steps=20, solver=solver,
                         increments=increments)
    assert tail.times.tolist() == [0.5, 1.0, 1.0] and torch.equal(tail.states, old.states[[2, 4, 4]])
    with pytest.raises(ValueError, match="grid"):
        integrate_sde(None, noise, x0, times=[0.0, 0.33, 1.0], steps=20, increments=increments)
    with pytest.raises(ValueError, match="not both"):
        integrate_sde(None, noise, x0, 1.0, 20, times=[0.0, 1.0])


def test_adaptive_solver_rejects_a_trial_step_that_overflows():
    """USA attention at beta = 10 on the circle overflows with a first trial step of 0.05: the
    step is rejected and shortened (it used to raise a non-finite state error); the result
    agrees with a tight run started from a tiny step."""
    x0 = sample_uniform(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    field = Attention(10.0, normalization="usa")
    coarse = integrate(field, x0, [0.0, 0.2], DormandPrince(rtol=1e-8, atol=1e-8, step=0.05))
    tight = integrate(field, x0, [0.0, 0.2], DormandPrince(rtol=1e-10, atol=1e-10, step=1e-4))
    assert coarse.rejected > 0
    assert torch.isfinite(coarse.final).all()
    assert float((coarse.final - tight.final).abs().max()) < 1e-6
