"""Circle, d = 2 (2312.10794 §7): the Cartesian flow against the angle equations (7.1).

At ``beta = 0`` the angle equations are the Kuramoto model (7.2) with ``K = 1``, ``ω = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import xarray as xr
from scipy.integrate import solve_ivp

from tokenswarm import theory
from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.fields import Attention
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.metrics import kuramoto_order
from tokenswarm.plots import line_plot
from tokenswarm.solve import DormandPrince, integrate
from tokenswarm.sphere import sample_uniform


@dataclass
class Params:
    n: int = field(default=32, metadata={"min": 2, "help": "tokens"})
    beta: list[float] = field(default_factory=lambda: [0.0, 1.0, 4.0], metadata={"min": 0, "help": "inverse temperatures"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})
    t_max: float = field(default=10.0, metadata={"min_exclusive": 0, "help": "final time"})
    rtol: float = field(default=1e-11, metadata={"min_exclusive": 0, "help": "tolerance of both solvers"})
    samples: int = field(default=201, metadata={"min": 2, "help": "output times"})


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def differences(data: xr.Dataset, p: Params) -> dict[float, float]:
    """Per beta: max over t and tokens of the angle difference, Cartesian flow vs angle equations (rad)."""
    return {
        beta: float(np.abs(_wrap(data[f"theta_beta_{beta:g}"].values - data[f"theta_angles_beta_{beta:g}"].values)).max())
        for beta in p.beta
    }


def _detuned(data: xr.Dataset) -> xr.Dataset:
    """Negative control: angle equations with a spurious natural frequency 0.01, theta + 0.01 t."""
    return data.assign({name: data[name] + 0.01 * data.t for name in data.data_vars if name.startswith("theta_angles_")})


CLAIMS = ClaimSet()


@CLAIMS.rule("Cartesian flow on S^1 equals the angle equations", Ref("2312.10794", "eq. (7.1); beta = 0: Kuramoto (7.2)"),
             control=_detuned)
def _angle_equations(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return less(
        max(differences(data, p).values()), 1e-7 if run.dtype == "float64" else 1e-3,
        detail="max over t, tokens and beta in " + ", ".join(f"{b:g}" for b in p.beta) + " of the angle difference (rad)",
    )


@register(
    "kuramoto",
    title="Tokens on the circle follow the generalised Kuramoto equations",
    summary="Cartesian d = 2 flow against the angle equations",
    reference="2312.10794 §7, eqs. (7.1)-(7.2)",
    params=Params,
    quick={"n": 16, "t_max": 5.0, "samples": 51},
    claims=CLAIMS,
    variants=[{"beta": "0,8"}, {"model": "usa"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    generator = ctx.generator()
    times = np.linspace(0.0, p.t_max, p.samples)
    x0 = sample_uniform(p.n, 2, generator=generator, dtype=ctx.dtype, device=ctx.device)
    theta0 = torch.atan2(x0[..., 1], x0[..., 0]).double().cpu().numpy()
    orders, data = {}, {}
    for beta in p.beta:
        traj = integrate(Attention(beta, normalization=p.model), x0, times, DormandPrince(rtol=p.rtol, atol=p.rtol))
        x = traj.states.double().cpu().numpy()
        theta_cartesian = np.arctan2(x[..., 1], x[..., 0])
        ode = solve_ivp(
            lambda _t, th: theory.angle_velocity(th, beta, p.model), (0.0, p.t_max), theta0,
            t_eval=times, method="DOP853", rtol=p.rtol, atol=p.rtol,
        )
        theta_angles = ode.y.T
        orders[beta] = kuramoto_order(torch.as_tensor(x)).numpy()
        data[f"order_beta_{beta:g}"] = ("t", orders[beta], {"long_name": f"order parameter, beta = {beta:g}", "units": "1"})
        data[f"theta_beta_{beta:g}"] = (("t", "token"), theta_cartesian,
                                        {"long_name": f"token angle, beta = {beta:g}", "units": "rad"})
        data[f"theta_angles_beta_{beta:g}"] = (("t", "token"), theta_angles,
                                               {"long_name": f"angle from the angle equations, beta = {beta:g}", "units": "rad"})
    figure = line_plot(
        times, {f"beta = {b:g}": r for b, r in orders.items()}, xlabel="t", ylabel="order parameter |mean e^{i theta}|",
        title=f"Kuramoto order parameter, {p.model.upper()}, n = {p.n}",
    )
    dataset = xr.Dataset(data, coords={"t": times})
    by_beta = differences(dataset, p)
    return Result(
        metrics={"max_difference": max(by_beta.values()), "max_difference_by_beta": {f"{b:g}": v for b, v in by_beta.items()}},
        data=dataset, figures={"order_parameter": figure},
    )
