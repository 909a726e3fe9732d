"""The robustness suite: every claim away from its defaults, over several seeds.

A claim that passes at the default parameters and fails a little further out is a claim
whose judgement (tolerance, estimator, sample size) is wrong, or a finding. The suite runs
each experiment at its defaults and at the parameter sets of :data:`VARIANTS` (another beta,
d, model, solver or step, float32, fewer layers...), for several seeds, and counts each claim's
outcomes: pass, fail, inconclusive, plus runs that were refused (a usage error: the
combination is not supported, with its reason) or that raised (a bug).

``tokenswarm robustness [--only NAMES] [--seeds N] [--full] [--json]`` runs it; the default is
the ``--quick`` size, ``--full`` the experiments' full sizes (hours).
"""

from __future__ import annotations

import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenswarm.params import UsageError

__all__ = ["VARIANTS", "Outcome", "Tally", "run_suite", "tally", "markdown"]

#: Parameter sets tried besides the defaults; ``dtype`` is the run precision, every other key
#: an experiment parameter (values as typed on the command line).
VARIANTS: dict[str, list[dict[str, str]]] = {
    "activation-table": [{"beta": "4"}, {"d": "16,256"}, {"bias": "0.5"}],
    "common-noise-pde": [{"beta": "4"}, {"model": "usa"}, {"activation": "relu"}],
    "depth-limit": [{"beta": "4"}, {"d": "8"}, {"activation": "relu"}, {"dtype": "float32"}],
    "energy": [{"beta": "4"}, {"d": "8"}, {"model": "usa"}, {"dtype": "float32"}],
    "equiangular": [{"beta": "4"}, {"model": "usa"}, {"solver": "rk4", "step": "0.01"},
                    {"solver": "euler", "step": "0.01"}, {"dtype": "float32"}],
    "hybrid-threshold": [{"beta": "2"}, {"layers": "200"}, {"law": "rademacher"}],
    "information-flow": [{"noise_std": "0.25"}, {"diffusion": "false"}, {"dtype": "float32"}],
    "kuramoto": [{"beta": "0,8"}, {"model": "usa"}, {"dtype": "float32"}],
    "linear-stability": [{"beta": "8"}, {"model": "usa"}, {"mode": "2"}],
    "long-context": [{"rho": "0.2"}, {"rho": "0.9"}, {"gamma": "0.5,4"}, {"dtype": "float32"}],
    "lyapunov": [{"d": "8"}, {"bias": "0"}, {"step": "0.01"}, {"dtype": "float32"}],
    "mean-field": [{"beta": "1"}, {"model": "usa"}, {"kappa": "0.5"}],
    "metastability": [{"beta": "2,16"}, {"scheme": "authors"}, {"n": "32"}, {"dtype": "float32"}],
    "noise-accuracy": [{"layers": "4"}, {"d": "16"}, {"dtype": "float32"}],
    "noise-level": [{"beta": "1"}, {"d": "3"}, {"n": "3"}, {"dtype": "float32"}],
    "noisy-kuramoto": [{"cells": "256"}, {"n": "1000"}, {"step": "0.05"}],
    "pde-vs-transformer": [{"forms": "learned"}, {"diffusion": "false"}, {"dtype": "float32"}],
    "phase-diagram": [{"d": "8"}, {"scheme": "authors"}, {"model": "usa", "beta": "0.5,1,2,3"}, {"dtype": "float32"}],
    "propagation-of-chaos": [{"beta": "4"}, {"d": "5"}, {"activation": "tanh"}],
    "random-weights": [{"scaling": "paper"}, {"d": "32"}, {"step": "0.05"}, {"dtype": "float32"}],
    "real-tokens": [{"texts": "16"}, {"delta": "0.2"}, {"step": "0.05"}],
    "stabilizers": [{"depth": "6"}, {"dim": "32"}, {"dtype": "float32"}],
    "stochastic-clusters": [{"beta": "1.5"}, {"d": "4"}, {"n": "4"}, {"dtype": "float32"}],
    "synchronization": [{"beta": "4"}, {"d": "64"}, {"layers": "60"}, {"dtype": "float32"}],
    "trajectories": [{"beta": "9"}, {"model": "usa"}, {"d": "2"}, {"dtype": "float32"}],
    "two-token-sde": [{"d": "3"}, {"method": "discrete", "layers": "200"}, {"beta": "6"}, {"dtype": "float32"}],
}

DEFAULTS: dict[str, str] = {}


@dataclass(frozen=True)
class Outcome:
    """One claim (or one run that produced no claims) of one experiment, variant and seed."""

    experiment: str
    variant: str
    seed: int
    claim: str
    status: str  # pass | fail | inconclusive | refused | error
    detail: str = ""


def _label(variant: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in variant.items()) or "defaults"


def run_suite(names: Iterable[str], seeds: Iterable[int] = range(5), *, quick: bool = True,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every experiment of ``names`` at its defaults and variants, for every seed."""
    from tokenswarm.experiments import load_for, registry

    outcomes: list[Outcome] = []
    seeds = list(seeds)

    def emit(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    for name in names:
        load_for(name)
        registry.get(name)
        for variant in [DEFAULTS, *VARIANTS.get(name, [])]:
            overrides = {key: value for key, value in variant.items() if key != "dtype"}
            dtype = variant.get("dtype", "float64")
            for seed in seeds:
                with tempfile.TemporaryDirectory(prefix="tokenswarm-robustness-") as out:
                    try:
                        result, _ = registry.run_experiment(name, overrides, quick=quick, seed=seed, dtype=dtype,
                                                            out_dir=out, save=False)
                    except UsageError as error:
                        emit(Outcome(name, _label(variant), seed, "(run)", "refused", str(error)))
                        continue
                    except Exception as error:  # noqa: BLE001 - a traceback is an outcome to count
                        last = traceback.format_exception_only(type(error), error)[-1].strip()
                        emit(Outcome(name, _label(variant), seed, "(run)", "error", last))
                        continue
                for claim in result.claims:
                    emit(Outcome(name, _label(variant), seed, claim.name, claim.status, claim.detail))
    return outcomes


@dataclass
class Tally:
    """Counts of one claim at one parameter set over the seeds."""

    experiment: str
    claim: str
    variant: str
    counts: Counter = field(default_factory=Counter)
    example: str = ""


def tally(outcomes: Iterable[Outcome]) -> list[Tally]:
    """Group outcomes by (experiment, claim, variant) and count statuses."""
    table: dict[tuple[str, str, str], Tally] = {}
    for outcome in outcomes:
        key = (outcome.experiment, outcome.claim, outcome.variant)
        entry = table.setdefault(key, Tally(*key))
        entry.counts[outcome.status] += 1
        if outcome.status != "pass" and not entry.example:
            entry.example = outcome.detail
    return list(table.values())


def markdown(tallies: Iterable[Tally]) -> str:
    """The tally as a Markdown table: claim, parameter set, pass/fail/inconclusive/refused/error."""
    lines = ["| experiment | claim | parameters | pass | fail | inconclusive | refused | error |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in tallies:
        counts = entry.counts
        cells = [entry.experiment, entry.claim, entry.variant,
                 *(str(counts.get(status, 0)) for status in ("pass", "fail", "inconclusive", "refused", "error"))]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def summary_counts(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Totals by status."""
    return dict(Counter(outcome.status for outcome in outcomes))
