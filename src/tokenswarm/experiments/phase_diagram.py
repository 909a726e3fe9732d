"""Phase diagram of Fig. 3 (2312.10794): fraction of clustered pairs over (beta, t).

The statistic is the fraction of ordered pairs ``i != j`` with ``<x_i(t), x_j(t)> > 0.999``,
averaged over independent i.i.d.-uniform starts, on a grid of inverse temperatures and
times, in the *accurate* scheme (RK4 + retraction, converges to the ODE) and the *authors'*
scheme (``x <- N(x + eta y)``, ``eta = step``, docs/theory/attention_ode.md §3.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr

from tokenswarm import theory
from tokenswarm.ensembles import DELTA, boundary_times, clustered_fraction
from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, inconclusive, less
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.plots import phase_diagram_grid


def _grid(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


@dataclass
class Params:
    n: int = field(default=32, metadata={"min": 2, "help": "tokens per system"})
    d: int = field(default=2, metadata={"min": 2, "help": "dimension of the main panel"})
    compare_d: list[int] = field(
        default_factory=lambda: [8, 32, 128, 512, 1024], metadata={"min": 2, "help": "further panels (Fig. 3); values equal to d are ignored"}
    )
    runs: int = field(default=1024, metadata={"min": 2, "help": "independent starts per (beta, d)"})
    beta: list[float] = field(
        default_factory=lambda: np.round(np.linspace(0.1, 9, 90), 6).tolist(), metadata={"min": 0, "help": "inverse temperatures"}
    )
    t: list[float] = field(
        default_factory=lambda: np.round(np.arange(0, 30.0001, 0.3), 6).tolist(),
        metadata={"min": 0, "increasing": True, "help": "output times from the initial state at t = 0 (multiples of step keep the authors' eta exact)"},
    )
    scheme: Literal["accurate", "authors", "both"] = field(default="both", metadata={"help": "integration scheme"})
    step: float = field(default=0.1, metadata={"min_exclusive": 0, "help": "step (eta for the authors' scheme)"})
    model: Literal["sa", "usa"] = field(default="sa", metadata={"help": "attention normalisation"})


def summary(data: xr.Dataset, p: Params) -> dict:
    """The measurements of a run, from its dataset, keyed like its metrics."""
    betas, times = data.beta.values, data.t.values
    schemes, dims = [str(s) for s in data.scheme.values], [int(d) for d in data.d.values]
    ode_crossing = data.ode_crossing_time.values
    metrics = {
        "fraction": data.fraction.values[0, 0].tolist(),
        "standard_error_max": float(data.standard_error.values.max()),
        "runs": p.runs,
    }
    for i, scheme in enumerate(schemes):
        for j, d in enumerate(dims):
            f, e = data.fraction.values[i, j], data.standard_error.values[i, j]
            late = f[:, -1]
            if d == 2:
                strong = betas >= 3
                if strong.any():
                    metrics[f"d2_plateau_{scheme}"] = float(late[strong].mean())
                    metrics[f"d2_plateau_se_{scheme}"] = float(np.sqrt((e[strong, -1] ** 2).sum()) / strong.sum())
            if d >= 128:
                metrics[f"intermediate_cells_d{d}_{scheme}"] = float(((f > 0.05) & (f < 0.95)).mean())
                boundary = boundary_times(f, times)
                valid = np.isfinite(boundary) & np.isfinite(ode_crossing)
                if valid.any():
                    metrics[f"boundary_lag_d{d}_{scheme}"] = float(np.median(boundary[valid] / ode_crossing[valid] - 1))
                    metrics[f"boundary_betas_d{d}_{scheme}"] = int(valid.sum())
    return metrics


def _with_panels(data: xr.Dataset, change) -> xr.Dataset:
    """The dataset with ``fraction[:, j] = change(fraction[:, j], j-th d)`` for every panel (a control's helper)."""
    fraction = data.fraction.values.copy()
    for j, d in enumerate(data.d.values):
        fraction[:, j] = change(fraction[:, j], int(d))
    return data.assign(fraction=data.fraction.copy(data=fraction))


def _merging(data: xr.Dataset, rate: float = 0.1) -> xr.Dataset:
    """Negative control: d = 2 clusters that are not metastable but merge at ``rate``:
    the unclustered share of pairs decays like exp(-rate t) on top of the run's."""
    decay = np.exp(-rate * data.t.values)
    return _with_panels(data, lambda f, d: 1 - (1 - f) * decay if d == 2 else f)


def _low_rank_start(data: xr.Dataset) -> xr.Dataset:
    """Negative control: a sampler that draws the high-d tokens in the subspace of the smallest
    d (a plane for d = 2), so every d >= 128 panel shows that panel's gradual, metastable
    dynamics instead of a sharp front."""
    low = data.fraction.values[:, int(np.argmin(data.d.values))]
    return _with_panels(data, lambda f, d: low if d >= 128 else f)


def _fast_clock(data: xr.Dataset, factor: float = 1.3) -> xr.Dataset:
    """Negative control: high-d runs whose clock runs ``factor`` times too fast (a wrong time
    scale), fraction(factor t) on the same grid: the boundary comes ~23% early."""
    t = data.t.values
    faster = np.minimum(factor * t, t[-1])

    def change(f, d):
        return np.apply_along_axis(lambda row: np.interp(faster, t, row), -1, f) if d >= 128 else f
    return _with_panels(data, change)


CLAIMS = ClaimSet()


def _cells(data: xr.Dataset):
    return [(str(scheme), int(d)) for scheme in data.scheme.values for d in data.d.values]


@CLAIMS.rule("d = 2 plateau well below 1 ({scheme})", Ref("2312.10794", "Fig. 3 (d = 2 panel)"), control=_merging)
def _plateau(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    s = summary(data, p)
    if p.model == "usa":  # the panel's statement is about SA's time scale
        return [inconclusive(s[f"d2_plateau_{scheme}"], "< 0.8",
                             "Fig. 3's d = 2 plateau is an SA statement: USA weights are up to e^beta times larger, its "
                             "circle clusters merge within the t = 30 that SA's keep apart, so USA does not test it",
                             labels={"scheme": scheme})
                for scheme, d in _cells(data) if d == 2 and f"d2_plateau_{scheme}" in s]
    return [
        less(s[f"d2_plateau_{scheme}"], 0.8,
             detail=f"mean over beta >= 3 of the fraction at t = {data.t.values[-1]:g}; "
                    f"MC s.e. {s[f'd2_plateau_se_{scheme}']:.2g}, runs = {p.runs}",
             labels={"scheme": scheme})
        for scheme, d in _cells(data) if d == 2 and f"d2_plateau_{scheme}" in s
    ]


@CLAIMS.rule("d = {d} diagram nearly 0/1-valued ({scheme})", Ref("2312.10794", "Fig. 3 (d >= 128 panels)"),
             control=_low_rank_start)
def _binary(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    s = summary(data, p)
    return [
        less(s[f"intermediate_cells_d{d}_{scheme}"], 0.15, detail="share of (beta, t) cells with 0.05 < fraction < 0.95",
             labels={"d": d, "scheme": scheme})
        for scheme, d in _cells(data) if d >= 128
    ]


@CLAIMS.rule("d = {d} boundary follows the equiangular ODE ({scheme})",
             Ref("2312.10794", "Fig. 3 (black curve), Thm 6.9"), control=_fast_clock)
def _boundary(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    s = summary(data, p)
    return [
        less(abs(s[f"boundary_lag_d{d}_{scheme}"]), 0.05 if scheme == "accurate" else 0.15,
             detail=f"median relative lag of the t where fraction = 0.5 behind the rho0 = 0 crossing time "
                    f"({s[f'boundary_betas_d{d}_{scheme}']} betas); the authors' eta = {p.step} is expected to lag a few %",
             labels={"d": d, "scheme": scheme})
        for scheme, d in _cells(data) if d >= 128 and f"boundary_lag_d{d}_{scheme}" in s
    ]


@register(
    "phase-diagram",
    title="Clustering phase diagram over (beta, t) for several d",
    summary="P(<x_i,x_j> > 0.999) over (beta, t) for d in {2, 8, ..., 1024}; accurate and authors' schemes; boundary vs the equiangular ODE",
    reference="2312.10794 §6, Fig. 3",
    params=Params,
    quick={
        "runs": 24, "compare_d": [128],
        "beta": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        "t": np.round(np.arange(0, 30.0001, 0.5), 6).tolist(),
    },
    claims=CLAIMS,
    variants=[{"d": "8"}, {"scheme": "authors"}, {"model": "usa", "beta": "0.5,1,2,3"}, {"dtype": "float32"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    betas, times = _grid(p.beta), _grid(p.t)
    dims = [p.d] + [d for d in p.compare_d if d != p.d]
    schemes = ["accurate", "authors"] if p.scheme == "both" else [p.scheme]
    generator = ctx.generator()

    fractions: dict[tuple[str, int], np.ndarray] = {}
    errors: dict[tuple[str, int], np.ndarray] = {}
    for scheme in schemes:
        for d in dims:
            fractions[scheme, d], errors[scheme, d] = clustered_fraction(
                p.n, d, betas, times, p.runs, scheme=scheme, step=p.step, model=p.model,
                generator=generator, dtype=ctx.dtype, device=ctx.device,
            )

    # The equiangular ODE from rho0 = 0 (orthonormal tokens, the d >> n limit): its 0.999
    # crossing time is the black curve of Fig. 3.
    ode_crossing = np.array([
        theory.equiangular_crossing_time(1 - DELTA, 0.0, p.n, float(b), p.model) if b > 0 else np.nan for b in betas
    ])

    panels, overlays = {}, {}
    for scheme in schemes:
        for d in dims:
            key = f"d = {d}" + (f" ({scheme})" if len(schemes) > 1 else "")
            panels[key] = (fractions[scheme, d], times, betas)
            if d >= 32:
                overlays[key] = {"equiangular ODE": (ode_crossing, betas)}
    figure = phase_diagram_grid(
        panels, ncols=len(dims), overlays=overlays,
        suptitle=f"P(<x_i, x_j> > 1 - 1e-3), {p.model.upper()}, n = {p.n}, {p.runs} runs",
    )
    data = xr.Dataset(
        {
            "fraction": (("scheme", "d", "beta", "t"), np.stack([np.stack([fractions[s, d] for d in dims]) for s in schemes])),
            "standard_error": (("scheme", "d", "beta", "t"), np.stack([np.stack([errors[s, d] for d in dims]) for s in schemes])),
            "ode_crossing_time": ("beta", ode_crossing),
        },
        coords={"scheme": schemes, "d": dims, "beta": betas, "t": times},
    )
    metrics = {key: value for key, value in summary(data, p).items()
               if not key.startswith(("d2_plateau_se_", "boundary_betas_"))}
    return Result(metrics=metrics, data=data, figures={"phase_diagram": figure})
