"""Integrate a field on the sphere: fixed-step, authors' scheme, or adaptive Runge–Kutta.

Problem (the field), solver (a :class:`~tokenswarm.solve.solvers.Solver` object holding its own
settings) and policies (output times, what to record) are separate, as in diffrax:
``integrate(field, x0, times, solver=RK4(step=0.05))``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import torch

from tokenswarm.fields.base import Field
from tokenswarm.runtime.budget import (
    STEP_LIMIT,
    ResourceLimitError,
    check_solve_memory,
    check_steps,
    is_forced,
)
from tokenswarm.runtime.progress import progress_bar
from tokenswarm.solve.solvers import Solver, solver_from_name
from tokenswarm.solve.stability import check_stable_step, largest_stable_step
from tokenswarm.sphere import retract, span_basis

__all__ = ["Trajectory", "NonFiniteStateError", "StepSizeUnderflowError", "integrate"]


class NonFiniteStateError(FloatingPointError):
    """The state became NaN or infinite; the message names the time and step."""


class StepSizeUnderflowError(FloatingPointError):
    """The adaptive solver needed a step below round-off to meet its tolerance."""


@dataclass
class Trajectory:
    """Recorded output of :func:`integrate`.

    ``states`` stacks ``observe(x(t_k))`` over the output times: by default the states
    themselves, shape ``(T, *batch, n, d)``.
    """

    times: torch.Tensor
    states: Any
    method: str
    steps: int = 0
    evaluations: int = 0
    rejected: int = 0
    reduced_dimension: int | None = None
    info: dict = dataclass_field(default_factory=dict)

    @property
    def final(self):
        return self.states[-1]


def _check_finite(x: torch.Tensor, t: float, step: int) -> None:
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteStateError(
            f"non-finite token state at t = {t:.6g} (step {step}); reduce the step, beta, or use float64"
        )


def _check_budget(x0: torch.Tensor, times: torch.Tensor, solver: Solver, step: float | None, *, observe_given: bool) -> None:
    """Refuse before the first step what would not fit in memory or would take too many steps."""
    check_solve_memory(x0, 0 if observe_given else times.numel(),
                       f"integrating {tuple(x0.shape)} tokens to {times.numel()} output times")
    if not solver.adaptive:
        count = float(sum(substeps(t1 - t0, step)[0] for t0, t1 in zip(times[:-1].tolist(), times[1:].tolist())))
        check_steps(count, f"integrating from t = {float(times[0]):g} to {float(times[-1]):g} with step {step:g}")


def substeps(span: float, step: float) -> tuple[int, float]:
    """``(count, h)``: the ``ceil(span / step)`` equal sub-steps a fixed-step solver takes over
    ``span`` (none when ``span <= 0``; the ``1e-9`` keeps ``span = k * step`` at ``k`` steps)."""
    count = math.ceil(span / step - 1e-9) if span > 0 else 0
    return count, span / max(count, 1)


def _stack(records: list) -> Any:
    first = records[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(records)
    if isinstance(first, tuple):
        return tuple(_stack(list(parts)) for parts in zip(*records))
    if isinstance(first, dict):
        return {key: _stack([r[key] for r in records]) for key in first}
    return records


def integrate(
    field: Field,
    x0: torch.Tensor,
    times: Sequence[float] | torch.Tensor,
    solver: Solver | None = None,
    *,
    t0: float | None = None,
    method: str | Solver | None = None,
    step: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    observe: Callable[[torch.Tensor], Any] | None = None,
    invariant_observe: bool = False,
    span_reduction: bool | str = "auto",
    authors_usa_step: bool | None = None,
    max_steps: int | None = None,
    progress: bool = False,
) -> Trajectory:
    """Solve ``dx/dt = P⊥_x F(t, x)`` on the sphere from ``x0`` (shape ``(*batch, n, d)``).

    Parameters
    ----------
    times:
        Non-decreasing output times. Without ``t0``, ``times[0]`` is the time of ``x0``
        (the library convention: the first output is ``x0`` itself).
    t0:
        The time of ``x0`` when it is not ``times[0]``. The solver then starts at ``t0``
        and records exactly ``times`` (all ``>= t0``): ``times=[10, 30], t0=0`` gives the
        states at 10 and 30, the same values as the tail of ``times=[0, 10, 30]``.
        Experiments pass ``t0=0`` so that a user's time list always means time since
        the initial state.
    solver:
        A solver object: ``Euler(step=h)``, ``Heun(step=h)``, ``RK4(step=h)``,
        ``Authors(step=eta, usa_step=True)`` (the original code's scheme, with the field's own
        step rule ``field.authors_step``) or ``DormandPrince(rtol=..., atol=...)`` (adaptive).
        Fixed-step solvers take ``ceil(Δ/step)`` equal sub-steps between output times, so
        output times on the grid ``k * step`` give exactly the layer-by-layer network.
    method, step, rtol, atol, authors_usa_step:
        Deprecated shortcut kept for old callers: ``method="rk4", step=h`` means
        ``solver=RK4(step=h)`` (see :func:`~tokenswarm.solve.solvers.solver_from_name`);
        ``method`` may also be a step-less solver object. Not combined with ``solver``.
    observe:
        Function of the state recorded at each output time (default: the state itself).
        Use it to keep memory small, e.g. ``observe=metrics.pair_fraction``.
    invariant_observe:
        Declare ``observe`` rotation invariant (a function of inner products only): under
        span reduction it then sees the reduced coordinates and skips the map back.
    span_reduction:
        ``"auto"`` simulates in ``r = n`` coordinates when ``d > n`` and the field keeps the
        span of the tokens invariant (``V = λ I``), exactly; ``True`` requires it, ``False``
        disables it.
    max_steps:
        A cap on the steps taken (accepted and rejected). By default the budget's
        :data:`~tokenswarm.runtime.budget.STEP_LIMIT`, lifted inside :func:`tokenswarm.runtime.budget.forced`
        (``--force``); an explicit value always holds.

    All arithmetic stays on ``x0``'s device and dtype; the whole batch shares one step.
    """
    solver = _resolve_solver(solver, method, step, rtol, atol, authors_usa_step)
    times = torch.as_tensor(times, dtype=torch.float64).flatten()
    if times.numel() < 1 or bool((times.diff() < 0).any()):
        raise ValueError("times must be a non-empty, non-decreasing sequence")
    requested = times
    if t0 is not None:
        if float(times[0]) < t0:
            raise ValueError(f"output time {float(times[0]):g} lies before the start time t0 = {t0:g}")
        if float(times[0]) > t0:
            times = torch.cat([times.new_tensor([t0]), times])
    if not solver.adaptive and (solver.step is None or not solver.step > 0):
        raise ValueError(f"method {solver.name!r} needs a step > 0, got step={solver.step!r}")
    observe_given = observe is not None
    observe = observe or (lambda state: state)

    basis = None
    n, d = x0.shape[-2], x0.shape[-1]
    if span_reduction and d > n:
        candidate = span_basis(x0)
        reduced = field.restrict(candidate)
        if reduced is not None:
            basis = candidate
            field, x = reduced, x0 @ basis
        elif span_reduction is True:
            raise ValueError(f"span reduction requested but {field!r} does not keep the span invariant")
        else:
            x = x0
    else:
        x = x0

    def record(state):
        if basis is None or invariant_observe:
            return observe(state)
        return observe(state @ basis.mT)

    step = solver.step_for(field)
    _check_budget(x0, times, solver, step, observe_given=observe_given)
    if step is not None and not solver.adaptive:
        check_stable_step(field, float(times[0]), x, solver, step)
    stepper = _adaptive if solver.adaptive else _fixed
    if max_steps is None:  # the budget's cap, which --force lifts (the fixed-step count is checked above)
        max_steps = math.inf if is_forced() else STEP_LIMIT
    records, stats = stepper(field, x, times, solver, step, record, max_steps, progress)
    records = records[len(times) - len(requested):]  # drop the start state when t0 was prepended
    return Trajectory(
        times=requested,
        states=_stack(records),
        method=solver.name,
        reduced_dimension=None if basis is None else basis.shape[-1],
        info={"step": step} if step is not None else {},
        **stats,
    )


def _progress(enabled: bool, total: float):
    """The shared progress bar (time units) when ``enabled``, shown on a terminal only."""
    return progress_bar(total, "integrating", enabled=None if enabled else False)


def _resolve_solver(solver, method, step, rtol, atol, authors_usa_step) -> Solver:
    """The solver object, from ``solver=`` or from the deprecated ``method=``/``step=`` keywords."""
    legacy = {"method": method, "step": step, "rtol": rtol, "atol": atol, "authors_usa_step": authors_usa_step}
    if solver is not None:
        given = [key for key, value in legacy.items() if value is not None]
        if given:
            raise ValueError(f"pass the settings inside the solver object, not as {', '.join(given)}= next to solver=")
        if not isinstance(solver, Solver):
            raise TypeError(f"solver must be a Solver object such as RK4(step=0.05), got {solver!r}")
        return solver
    tolerances = {"rtol": 1e-7 if rtol is None else rtol, "atol": 1e-9 if atol is None else atol}
    usa = True if authors_usa_step is None else authors_usa_step
    if method is None or isinstance(method, str):
        return solver_from_name("rk4" if method is None else method, step, usa_step=usa, **tolerances)
    if isinstance(method, Solver):  # an old-style step-less instance, e.g. METHODS["rk4"]
        names = {f.name for f in dataclasses.fields(method)}
        changes = {"step": step} if step is not None else {}
        changes.update({key: value for key, value in tolerances.items() if key in names})
        if "usa_step" in names:
            changes["usa_step"] = usa
        return dataclasses.replace(method, **changes)
    raise TypeError(f"method must be a solver name or Solver object, got {method!r}")


def _fixed(field, x, times, method, step, record, max_steps, progress):
    """The fixed-step loop. Finiteness is checked once per output time, not per step (a check
    is a host synchronisation on an accelerator); a non-finite state stays non-finite, so when
    the check fails the interval is replayed from its start, step by step, to name the first
    bad step."""
    records = [record(x)]
    steps = 0
    with _progress(progress, float(times[-1] - times[0])) as bar:
        for t0, t1 in zip(times[:-1].tolist(), times[1:].tolist()):
            span = t1 - t0
            count, h = substeps(span, step)
            if steps + count > max_steps:
                raise RuntimeError(f"more than max_steps={max_steps} steps")
            start = x
            for k in range(count):
                x = method.advance(field, t0 + k * h, x, h)
            if count and not bool(torch.isfinite(x).all()):
                _replay_to_first_non_finite(field, start, t0, h, count, method, steps)
            steps += count
            records.append(record(x))
            bar.advance(span)
    return records, {"steps": steps, "evaluations": steps * method.evaluations_per_step, "rejected": 0}


def _replay_to_first_non_finite(field, x, t0, h, count, method, steps_before):
    """Repeat the ``count`` steps from ``x`` at ``t0``, checking each, and raise at the first
    non-finite state (the steps are deterministic, so the replay meets it again)."""
    for k in range(count):
        previous, x = x, method.advance(field, t0 + k * h, x, h)
        try:
            _check_finite(x, t0 + (k + 1) * h, steps_before + k + 1)
        except NonFiniteStateError as error:
            limit = largest_stable_step(field, t0 + k * h, previous, method)
            if h > limit:
                raise NonFiniteStateError(f"{error}; step {h:g} exceeds {method.name}'s largest stable step there, "
                                          f"about {limit:.3g}") from None
            raise
    raise NonFiniteStateError(
        f"non-finite token state between t = {t0:.6g} and t = {t0 + count * h:.6g} that a step-by-step replay "
        "did not reproduce; reduce the step, beta, or use float64"
    )


def _error_ratio(error, x, x_new, rtol, atol):
    """Max over systems of the RMS scaled error (one step size for the batch)."""
    scale = atol + rtol * torch.maximum(x.abs(), x_new.abs())
    ratio = (error / scale) ** 2
    return float(ratio.mean(dim=(-2, -1)).sqrt().max())


def _adaptive(field, x, times, method, step, record, max_steps, progress):
    rtol, atol = method.rtol, method.atol
    records = [record(x)]
    t, t_end = float(times[0]), float(times[-1])
    h = step or max(1e-3, 1e-2 * (t_end - t))
    steps = rejected = evaluations = 0
    targets = times[1:].tolist()
    with _progress(progress, t_end - t) as bar:
        for target in targets:
            while t < target - 1e-12 * max(1.0, abs(target)):
                h_try = min(h, target - t)
                increment, error = method.stages(field, t, x, h_try)
                evaluations += 7
                x_new = x + increment
                ratio = _error_ratio(error, x, x_new, rtol, atol)
                if not math.isfinite(ratio):
                    # a trial step that overflows (a stiff field, e^beta at large beta) is
                    # rejected and retried shorter, like any step whose error is too large;
                    # a field that is non-finite at the accepted state itself is an error
                    _check_finite(field(t, x), t, steps)
                    ratio = math.inf
                if ratio <= 1.0:
                    x = retract(x_new)
                    t += h_try
                    steps += 1
                    bar.advance(h_try)
                else:
                    rejected += 1
                factor = 5.0 if ratio == 0 else min(5.0, max(0.2, 0.9 * ratio ** (-1 / 5)))
                h = h_try * factor
                if steps + rejected > max_steps:
                    raise ResourceLimitError(
                        f"the adaptive solver took more than max_steps = {max_steps} steps and reached only "
                        f"t = {t:.6g} of {t_end:g}; shorten the horizon or loosen the tolerance"
                    )
                if h < 1e-14 * max(1.0, abs(t)):
                    raise StepSizeUnderflowError(
                        f"step size underflow at t = {t:.6g}: the tolerance rtol = {rtol:g} cannot be met in "
                        f"{str(x.dtype).removeprefix('torch.')}; loosen rtol/atol"
                    )
            records.append(record(x))
    return records, {"steps": steps, "evaluations": evaluations, "rejected": rejected}
