"""The field protocol shared by the particle solvers, the discrete networks and the metrics.

A *field* maps a time ``t`` and a state ``x`` of shape ``(*batch, n, d)`` to

* ``output(t, x)``: the raw layer output ``y_i`` (attention average, MLP value), i.e. what a
  residual Transformer block adds to the token before normalisation;
* ``velocity(t, x) = P⊥_x output(t, x)``: the tangent velocity of the continuous model.

Fields compose by :class:`SumField` (the joint field of a block, e.g. attention + MLP) and
:class:`LieTrotter` (one after the other within a step, as a pre/post-norm block does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tokenswarm.sphere import project

__all__ = ["Field", "SumField", "LieTrotter"]


class Field:
    """Base class: subclasses implement :meth:`output`; velocity is its tangent projection."""

    def output(self, t: float, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def velocity(self, t: float, x: torch.Tensor) -> torch.Tensor:
        return project(x, self.output(t, x))

    def __call__(self, t: float, x: torch.Tensor) -> torch.Tensor:
        return self.velocity(t, x)

    def __add__(self, other: Field) -> SumField:
        return SumField([self, other])

    def authors_step(self, step: float) -> float:
        """The step the original code's scheme (:class:`~tokenswarm.solve.Authors`) takes for a
        nominal ``step`` on this field; the identity unless a field defines its own rule."""
        return step

    # Span reduction (docs/theory/attention_ode.md §3.3): a field whose output stays in span{x_j} can be
    # simulated in r = rank coordinates. Fields that cannot return None.
    def restrict(self, basis: torch.Tensor) -> Field | None:
        """The same field written in the coordinates ``c = Uᵀx`` of an orthonormal basis
        ``U`` of shape ``(*batch, d, r)``, or ``None`` if the span is not invariant."""
        return None


class SumField(Field):
    """Joint field ``Σ_k F_k``: all parts evaluated at the same state."""

    def __init__(self, parts: Sequence[Field]):
        self.parts = list(parts)

    def output(self, t, x):
        total = self.parts[0].output(t, x)
        for part in self.parts[1:]:
            total = total + part.output(t, x)
        return total

    def restrict(self, basis):
        parts = [p.restrict(basis) for p in self.parts]
        return None if any(p is None for p in parts) else SumField(parts)

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.parts)


class LieTrotter(Field):
    """Lie–Trotter splitting of ``Σ_k F_k``: fixed-step solvers step each part in turn.

    ``renormalize`` (default True, docs/theory/attention_ode.md §1.5) retracts to the sphere after every
    sub-step, as a block with a norm after each sub-layer does. As a plain field (adaptive
    solvers, energies) it behaves like the joint field.
    """

    def __init__(self, parts: Sequence[Field], *, renormalize: bool = True):
        self.parts = list(parts)
        self.renormalize = renormalize

    def output(self, t, x):
        return SumField(self.parts).output(t, x)

    def restrict(self, basis):
        parts = [p.restrict(basis) for p in self.parts]
        return None if any(p is None for p in parts) else LieTrotter(parts, renormalize=self.renormalize)

    def __repr__(self) -> str:
        return "LieTrotter(" + ", ".join(repr(p) for p in self.parts) + ")"
