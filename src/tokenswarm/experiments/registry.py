"""The experiment registry: names -> (params dataclass, run function, paper reference).

An experiment module registers itself on import::

    @register("equiangular", title="...", reference="2312.10794 §6, Thm 6.8",
              params=EquiangularParams, quick={"n": 8})
    def run(params: EquiangularParams, context: RunContext) -> Result: ...

and :func:`run_experiment` is the single path by which the CLI, ``reproduce`` and sweeps
execute one: parse the overrides, build the :class:`RunContext`, time the run, complete
the result's parameters and save it.

``EXPERIMENTS`` is a module-level dict because registration by import needs one shared
place to land; it is only mutated through :func:`register` / :func:`unregister`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from tokenswarm.io.claims import ClaimSet, RunSettings
from tokenswarm.io.refs import Ref, parse_references
from tokenswarm.io.results import Claim, Result, to_jsonable, utc_timestamp
from tokenswarm.params import (
    ParameterError,
    UsageError,
    describe,
    param_specs,
    parse_overrides,
)
from tokenswarm.runtime.budget import check_count

__all__ = [
    "EXPERIMENTS",
    "RESERVED_PARAMETER_NAMES",
    "DTYPES",
    "Experiment",
    "RunContext",
    "UnknownExperimentError",
    "register",
    "unregister",
    "get",
    "names",
    "prepare",
    "parse_device",
    "parse_dtype",
    "check_seed",
    "run_experiment",
    "markdown_table",
]

#: Run settings stored next to the experiment parameters in ``Result.params``; an
#: experiment parameter with one of these names would be ambiguous there.
RESERVED_PARAMETER_NAMES = frozenset({"seed", "device", "dtype", "quick", "out", "json"})

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")

RunFunction = Callable[[Any, "RunContext"], Result]
RunFunctionT = TypeVar("RunFunctionT", bound=Callable[..., Result])


class UnknownExperimentError(UsageError):
    """The requested experiment name is not registered."""


@dataclass(frozen=True)
class RunContext:
    """Settings shared by every experiment run, separate from its scientific parameters.

    Attributes:
        seed: master seed of the run.
        device: where tensors live.
        dtype: floating-point precision of the simulation.
        out_dir: the run's output directory (exists when ``run`` is called); write
            animations or other extra files here, never to ``--out`` itself: the CLI
            points this at a partial sibling that replaces ``--out`` once the run is
            complete (:mod:`tokenswarm.io.rundir`).
        quick: whether the reduced ``--quick`` sizes are in effect (experiments may, for
            instance, loosen a statistical tolerance and must then say so in the claim).
    """

    seed: int
    device: torch.device
    dtype: torch.dtype
    out_dir: pathlib.Path
    quick: bool

    def stream_seed(self, offset: int = 0) -> int:
        """A 63-bit seed for stream number ``offset`` of this run.

        ``(seed, offset)`` is hashed with numpy's ``SeedSequence`` instead of adding the
        two, so seed 0 / offset 1 and seed 1 / offset 0 give unrelated streams, and using
        one offset per purpose (initial tokens, weights, noise) keeps those streams
        independent of each other and of how many draws each makes.
        """
        if offset < 0:
            raise ValueError(f"stream offset must be >= 0, got {offset}")
        state = np.random.SeedSequence([self.seed, offset]).generate_state(1, dtype=np.uint64)
        return int(state[0]) & (2**63 - 1)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A fresh ``torch.Generator`` on ``self.device`` seeded with :meth:`stream_seed`.

        The same (seed, offset, device) always yields the same numbers; CPU and CUDA
        generators produce different numbers for the same seed.
        """
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.stream_seed(offset))
        return generator

    def numpy_generator(self, offset: int = 0) -> np.random.Generator:
        """A numpy ``Generator`` for stream ``offset`` (same derivation as :meth:`generator`)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, offset]))


@dataclass(frozen=True)
class Experiment:
    """A registered experiment.

    Attributes:
        name: command-line name, ``[a-z][a-z0-9_-]*`` (e.g. ``phase-diagram``).
        title: one-line human title.
        reference: paper and place, e.g. ``"2312.10794 §6, Thm 6.8"``.
        params: params dataclass; its defaults are the full-size values.
        quick: overrides applied by ``--quick`` (explicit ``-p`` values still win).
        run: ``run(params, context) -> Result``.
        dtypes: the precisions the experiment supports (``None``: all of :data:`DTYPES`);
            another is refused as a usage error before anything runs.
        dtype_reason: why only ``dtypes`` make sense, shown in that refusal.
        claims: the experiment's claims as rules on its saved dataset
            (:class:`tokenswarm.io.claims.ClaimSet`); ``None`` for an experiment that still
            builds its claims inside ``run`` (they cannot be re-checked from the data).
        refs: ``reference`` parsed into (paper, place) pairs.
        summary: what is measured, one line (the README's experiments table).
        variants: parameter sets the robustness suite tries besides the defaults
            (``{"beta": "4"}``, ``{"dtype": "float32"}``; values as typed on the command line).
    """

    name: str
    title: str
    reference: str
    params: type
    quick: Mapping[str, Any]
    run: RunFunction
    dtypes: tuple[str, ...] | None = None
    dtype_reason: str = ""
    claims: ClaimSet | None = None
    refs: tuple[Ref, ...] = ()
    summary: str = ""
    variants: tuple[Mapping[str, str], ...] = ()

    @property
    def papers(self) -> tuple[str, ...]:
        """arXiv ids of the experiment and of its claims, first the experiment's own."""
        ids = [ref.paper for ref in self.refs] + list(self.claims.papers if self.claims else ())
        return tuple(dict.fromkeys(ids))

    def cites(self, paper: str) -> bool:
        """Whether the experiment or one of its claims cites ``paper`` (``2408.09523`` matches its versions)."""
        return any(cited == paper or cited.split("v")[0] == paper for cited in self.papers)

    def check_dtype(self, dtype: torch.dtype) -> None:
        """Raise :class:`UsageError` when the experiment does not support ``dtype``."""
        text = str(dtype).removeprefix("torch.")
        if self.dtypes is not None and text not in self.dtypes:
            reason = f" ({self.dtype_reason})" if self.dtype_reason else ""
            raise UsageError(
                f"experiment '{self.name}' runs only in {' or '.join(self.dtypes)}{reason}; got --dtype {text}"
            )

    def describe_parameters(self) -> str:
        return describe(self.params)


EXPERIMENTS: dict[str, Experiment] = {}


def register(
    name: str,
    *,
    title: str,
    reference: str,
    params: type,
    summary: str = "",
    quick: Mapping[str, Any] | None = None,
    dtypes: tuple[str, ...] | None = None,
    dtype_reason: str = "",
    claims: ClaimSet | None = None,
    variants: list[dict[str, str]] | None = None,
) -> Callable[[RunFunctionT], RunFunctionT]:
    """Decorator registering ``run(params, context) -> Result`` under ``name``.

    Mistakes in the declaration (bad name, unsupported parameter type, a reserved
    parameter name, an invalid ``quick`` value) raise ``TypeError``/``ValueError`` at
    import time rather than when a user first runs the experiment. Registering the same
    function again (a module reload) replaces the entry; registering a different function
    under a taken name is an error.
    """
    if not _NAME_PATTERN.match(name):
        raise ValueError(f"experiment name {name!r} must match {_NAME_PATTERN.pattern}")
    specs = param_specs(params)
    reserved = sorted({spec.name for spec in specs} & RESERVED_PARAMETER_NAMES)
    if reserved:
        raise TypeError(
            f"experiment {name!r}: parameter names {reserved} are reserved for run settings "
            f"({', '.join(sorted(RESERVED_PARAMETER_NAMES))})"
        )
    if dtypes is not None and not set(dtypes) <= set(DTYPES):
        raise ValueError(f"experiment {name!r}: dtypes {dtypes} must be among {sorted(DTYPES)}")
    quick_overrides = dict(quick or {})
    try:
        parse_overrides(params, quick_overrides, experiment=name)
    except ParameterError as error:
        raise TypeError(f"experiment {name!r} has invalid quick overrides: {error}") from None
    refs = parse_references(reference)  # ValueError unless it starts with an arXiv id
    for variant in variants or ():
        overrides = {key: value for key, value in variant.items() if key != "dtype"}
        try:
            parse_overrides(params, overrides, base=quick_overrides, experiment=name)
        except ParameterError as error:
            raise TypeError(f"experiment {name!r} has an invalid robustness variant {variant}: {error}") from None
        if variant.get("dtype", "float64") not in DTYPES:
            raise TypeError(f"experiment {name!r}: variant {variant} names an unknown dtype")

    def decorator(run: RunFunctionT) -> RunFunctionT:
        existing = EXPERIMENTS.get(name)
        if existing is not None and not _same_function(existing.run, run):
            raise ValueError(
                f"experiment name {name!r} is already registered by "
                f"{existing.run.__module__}.{existing.run.__qualname__}"
            )
        EXPERIMENTS[name] = Experiment(
            name, title, reference, params, quick_overrides, run, tuple(dtypes) if dtypes else None, dtype_reason,
            claims, refs, summary, tuple(variants or ()),
        )
        return run

    return decorator


def _same_function(first: Callable[..., Any], second: Callable[..., Any]) -> bool:
    return (first.__module__, first.__qualname__) == (second.__module__, second.__qualname__)


def unregister(name: str) -> None:
    """Remove an experiment (used by tests that register throw-away experiments)."""
    EXPERIMENTS.pop(name, None)


def names() -> list[str]:
    """Registered experiment names, sorted."""
    return sorted(EXPERIMENTS)


def get(name: str) -> Experiment:
    """The experiment called ``name``.

    Raises:
        UnknownExperimentError: with a message listing the valid names.
    """
    try:
        return EXPERIMENTS[name]
    except KeyError:
        valid = ", ".join(names()) or "none are registered"
        raise UnknownExperimentError(
            f"unknown experiment '{name}'; valid experiments: {valid} "
            "(run 'tokenswarm list' for titles and references)"
        ) from None


def prepare(
    name: str, overrides: Mapping[str, Any], *, quick: bool, dtype: str | torch.dtype | None = None
) -> tuple[Experiment, Any]:
    """Look up ``name`` and parse its parameters (and check ``dtype``), without running anything.

    Raises:
        UsageError: unknown experiment, parameter or value, or a precision it does not support.
    """
    experiment = get(name)
    params = parse_overrides(
        experiment.params, overrides, base=experiment.quick if quick else None, experiment=name
    )
    if dtype is not None:
        experiment.check_dtype(parse_dtype(dtype))
    _check_counts(experiment, params)
    return experiment, params


def _check_counts(experiment: Experiment, params: Any) -> None:
    """Every integer parameter is a count (tokens, runs, layers, steps, epochs, cells): one
    above the step limit would loop or allocate for days before any estimate sees it."""
    for spec in param_specs(experiment.params):
        if int not in spec.alternatives:
            continue
        value = getattr(params, spec.name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, int) and not isinstance(item, bool):
                check_count(item, f"parameter {spec.name} = {item} of experiment '{experiment.name}'")


def parse_device(device: str | torch.device) -> torch.device:
    """Validate a device string and check that the device exists here.

    Raises:
        UsageError: malformed name or a device this machine does not have.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(
            f"invalid device {str(device)!r}; use cpu, cuda, cuda:N or mps "
            f"(available here: {', '.join(_available_devices())})"
        ) from None
    available = True
    if parsed.type == "cuda":
        available = torch.cuda.is_available() and (parsed.index or 0) < torch.cuda.device_count()
    elif parsed.type == "mps":
        available = torch.backends.mps.is_available()
    elif parsed.type != "cpu":
        available = False
    if not available:
        raise UsageError(
            f"device '{parsed}' is not available on this machine; "
            f"available: {', '.join(_available_devices())}"
        )
    return parsed


def _available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"float64"`` (or the torch dtype itself) -> torch dtype.

    Raises:
        UsageError: any other precision.
    """
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise UsageError(f"invalid dtype {str(dtype)!r}; valid dtypes: {', '.join(DTYPES)}")


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is an integer in [0, 2**63), else raise :class:`UsageError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UsageError(f"invalid seed {seed!r}; the seed must be an integer in [0, 2**63)")
    return seed


def run_experiment(
    name: str,
    overrides: Mapping[str, Any],
    *,
    quick: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    out_dir: str | os.PathLike[str],
    save: bool = True,
) -> tuple[Result, list[str]]:
    """Validate, run, time and (by default) save one experiment.

    Every usage mistake (name, parameters, device, dtype, seed) is detected before the
    experiment starts. ``Result.params`` is completed with the parsed parameters and the
    run settings (``seed, device, dtype, quick``) so a result file says how to reproduce
    it, and ``Result.seconds`` is the wall time of ``run`` (writing outputs excluded).

    Returns:
        The result and the absolute output paths (``[]`` when ``save`` is false).

    Raises:
        UsageError: a mistake in the request; nothing has been run.
        Exception: whatever the experiment itself raises, unchanged.
    """
    experiment, params = prepare(name, overrides, quick=quick, dtype=dtype)
    context = RunContext(
        seed=check_seed(seed),
        device=parse_device(device),
        dtype=parse_dtype(dtype),
        out_dir=pathlib.Path(out_dir).resolve(),
        quick=quick,
    )
    context.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = experiment.run(params, context)
    seconds = time.perf_counter() - start
    if not isinstance(result, Result):
        raise TypeError(
            f"experiment {name!r} returned {type(result).__name__}; run() must return a Result"
        )
    result.experiment = name
    result.params = _complete_params(params, result.params, context)
    result.seconds = seconds
    if experiment.claims is not None:
        result.claims = judge(experiment, params, result)
    result.timestamp = utc_timestamp()
    outputs = result.save(context.out_dir) if save else []
    return result, outputs


def judge(experiment: Experiment, params: Any, result: Result) -> list[Claim]:
    """Evaluate the experiment's claim rules on ``result.data`` (saving the dataset records the
    parameters and run settings a later re-check needs, attribute ``parameters``)."""
    if result.data is None:
        raise TypeError(f"experiment {experiment.name!r} declares claims but returned no dataset to judge")
    if result.claims:
        raise TypeError(f"experiment {experiment.name!r} declares claims and also built some inside run()")
    return experiment.claims.evaluate(result.data, params, RunSettings.from_params(result.params))


def _complete_params(params: Any, reported: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    # Parsed values win over what the experiment reported under the same name; extra
    # derived values the experiment chose to report are kept after them.
    completed: dict[str, Any] = to_jsonable(dataclasses.asdict(params))
    for key, value in reported.items():
        completed.setdefault(key, value)
    completed.update(
        seed=context.seed,
        device=str(context.device),
        dtype=str(context.dtype).removeprefix("torch."),
        quick=context.quick,
    )
    return completed


#: The order of the papers in tables: the summary article first, then by topic.
PAPER_ORDER = ("2312.10794", "2512.01868", "2510.05554", "2601.21942", "2604.26898", "2408.09523")


def _paper_rank(experiment: Experiment) -> tuple[int, str]:
    first = experiment.refs[0].base_id if experiment.refs else ""
    return (PAPER_ORDER.index(first) if first in PAPER_ORDER else len(PAPER_ORDER), experiment.name)


def markdown_table(experiments: list[Experiment] | None = None) -> str:
    """The experiments as a Markdown table (the README's), grouped by their first paper."""
    chosen = sorted(experiments if experiments is not None else EXPERIMENTS.values(), key=_paper_rank)
    lines = ["| experiment | paper | section / figure | what is measured |", "|---|---|---|---|"]
    for experiment in chosen:
        papers = "; ".join(ref.paper for ref in experiment.refs)
        where = "; ".join(ref.where for ref in experiment.refs if ref.where)
        cells = [f"`{experiment.name}`", papers, where, experiment.summary or experiment.title]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
