"""The original code's scheme: Euler on the raw output plus normalisation (order 1)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenswarm.solve.solvers.base import Solver

__all__ = ["Authors"]


@dataclass(frozen=True)
class Authors(Solver):
    """The original code's scheme (docs/theory/attention_ode.md §3.2): ``x <- N(x + eta y(x))``.

    ``y`` is the attention output *before* tangent projection, so the radial part of ``y``
    shortens the effective step by about ``1/(1 + eta <x, y>)``; this is a consistent
    first-order method whose error at ``eta = 0.1`` is visible in the figures.

    With ``usa_step`` (the default) the step is the field's own rule
    ``field.authors_step(step)`` (for USA attention ``step / max(sqrt(beta) e^{beta - 1/2}, 1)``,
    :func:`tokenswarm.fields.attention.usa_step`); the solver knows no field class.
    """

    usa_step: bool = True
    name = "authors"
    order = 1
    evaluations_per_step = 1

    def step_for(self, field):
        if self.usa_step and self.step is not None:
            return field.authors_step(self.step)
        return self.step

    def increment(self, field, t, x, h):
        return h * field.output(t, x)
