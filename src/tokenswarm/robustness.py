"""The robustness suite: every claim away from its defaults, over several seeds.

A claim that passes at the default parameters and fails a little further out is a claim
whose judgement (tolerance, estimator, sample size) is wrong, or a finding. The suite runs
each experiment at its defaults and at the parameter sets of ``register(variants=...)`` (another beta,
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
from tokenswarm.runtime.budget import ResourceLimitError
from tokenswarm.runtime.optional import MissingDependencyError

__all__ = ["variants", "Outcome", "Tally", "run_suite", "tally", "markdown"]

#: The parameter sets tried besides the defaults are declared by each experiment,
#: ``register(..., variants=[{"beta": "4"}, {"dtype": "float32"}, ...])``: ``dtype`` is the run
#: precision, every other key an experiment parameter (values as typed on the command line).
def variants() -> dict[str, list[dict[str, str]]]:
    """Each registered experiment's parameter sets besides the defaults (``register(variants=...)``)."""
    from tokenswarm.experiments import load_all, registry

    load_all()
    return {name: list(registry.get(name).variants) for name in registry.names()}

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
        for variant in [DEFAULTS, *registry.get(name).variants]:
            overrides = {key: value for key, value in variant.items() if key != "dtype"}
            dtype = variant.get("dtype", "float64")
            for seed in seeds:
                with tempfile.TemporaryDirectory(prefix="tokenswarm-robustness-") as out:
                    try:
                        result, _ = registry.run_experiment(name, overrides, quick=quick, seed=seed, dtype=dtype,
                                                            out_dir=out, save=False)
                    except (UsageError, ResourceLimitError, MissingDependencyError, FloatingPointError) as error:
                        # what the command line answers with exit 2 and one line: an unsupported
                        # combination, an unstable step, a state that left the valid range
                        emit(Outcome(name, _label(variant), seed, "(run)", "refused", str(error).strip().splitlines()[0]))
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
