"""Is a fixed step stable? The largest step a scheme can take on a field, estimated before stepping.

An explicit scheme is stable on ``x' = J x`` while ``h |λ|`` stays inside its stability region
for every eigenvalue ``λ`` of ``J``; beyond it the error grows step after step. On the sphere the
retraction keeps the tokens finite, so an unstable step need not blow up: it can show as a
claim that fails (an energy that is not monotone) for a reason that has nothing to do with the
model. :func:`largest_stable_step` estimates ``boundary / ρ(J)`` from the spectral radius of
the velocity's Jacobian by power iteration on finite-difference products, and
:func:`check_stable_step` refuses a step beyond it with that number in the message.
"""

from __future__ import annotations

import math

import torch

from tokenswarm.fields.base import Field, LieTrotter
from tokenswarm.solve.solvers.base import Solver
from tokenswarm.sphere import project

__all__ = ["UnstableStepError", "spectral_radius", "largest_stable_step", "check_stable_step"]


class UnstableStepError(FloatingPointError):
    """A fixed step beyond the scheme's stability limit for the field (the message gives the limit)."""


def spectral_radius(field: Field, t: float, x: torch.Tensor, iterations: int = 20) -> float:
    """Estimate of the largest ``|λ|`` of the velocity's Jacobian at ``x`` restricted to the tangent
    spaces of the tokens (``P J P``: the retraction removes radial motion, whose modes would
    otherwise inflate the estimate 2-3 fold), over the whole batch (power iteration, central
    differences scaled to the precision)."""
    generator = torch.Generator(device=x.device).manual_seed(0)
    v = project(x, torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device))
    v = v / torch.linalg.vector_norm(v)
    eps = 10 * math.sqrt(float(torch.finfo(x.dtype).eps)) * max(1.0, float(torch.linalg.vector_norm(x)))
    estimate = 0.0
    for _ in range(iterations):
        w = project(x, (field.velocity(t, x + eps * v) - field.velocity(t, x - eps * v)) / (2 * eps))
        estimate = float(torch.linalg.vector_norm(w))
        if not math.isfinite(estimate) or estimate == 0.0:
            return estimate
        v = w / estimate
    return estimate


def largest_stable_step(field: Field, t: float, x: torch.Tensor, solver: Solver) -> float:
    """``solver.stability_boundary / ρ(J)`` at ``(t, x)``; ``inf`` where no limit applies."""
    if solver.stability_boundary is None or isinstance(field, LieTrotter):
        return math.inf
    radius = spectral_radius(field, t, x)
    return solver.stability_boundary / radius if radius > 0 else math.inf


def check_stable_step(field: Field, t: float, x: torch.Tensor, solver: Solver, step: float) -> None:
    """Raise :class:`UnstableStepError` when ``step`` exceeds :func:`largest_stable_step` at the start."""
    limit = largest_stable_step(field, t, x, solver)
    if step > limit:
        raise UnstableStepError(
            f"step {step:g} is unstable for {solver.name} on this field: its largest stable step at t = {t:g} is "
            f"about {limit:.3g} ({solver.stability_boundary:g} over the Jacobian's spectral radius "
            f"{solver.stability_boundary / limit:.3g}); take a step below {limit:.2g}"
        )
