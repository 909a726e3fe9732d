"""Fixed-step integration of many small attention systems in preallocated buffers.

The phase diagrams of Fig. 3 (2312.10794) integrate thousands of systems of ``n = 32`` tokens
under attention with ``Q = K = V = I`` and record only the clustered-pair statistic. In the
reduced coordinates of the span (docs/theory/attention_ode.md §3.3) every tensor of a step is
``(systems, n, r)`` or ``(systems, n, n)`` with ``r <= n``: small matrices, for which the
generic loop of :func:`tokenswarm.solve.integrate` spends most of its time in allocation,
dispatch and PyTorch's softmax (which on a CPU takes four times as long as the two batched
products of a step together at ``n = 32`` in float64). :class:`AttentionEnsemble` writes
every step into buffers allocated once, evaluates the weights as ``exp`` and a row sum whose
reciprocal scales the ``n x r`` output instead of the ``n x n`` weights, and reads nothing
back to the host inside the step loop.

It is the same field and the same schemes as ``integrate(Attention(beta, normalization=...),
x, times, solver=...)`` with :class:`~tokenswarm.solve.Authors` or :class:`~tokenswarm.solve.RK4`,
equal up to round-off (tests/test_ensembles.py holds them together).
"""

from __future__ import annotations

import math

import torch

from tokenswarm.fields.attention import usa_step
from tokenswarm.solve.ode import substeps
from tokenswarm.solve.solvers import RK4, Authors, Solver

__all__ = ["AttentionEnsemble", "UNSHIFTED_LOGIT_LIMIT"]

#: Largest ``|logit|`` for which ``exp`` is taken without subtracting the row maximum: ``e^40``
#: times ``n`` terms stays far from overflow in float32 (``3e38``) for any ``n`` below ``1e20``.
UNSHIFTED_LOGIT_LIMIT = 40.0


class AttentionEnsemble:
    """Systems ``x`` of shape ``(systems, n, r)`` under attention with ``Q = K = V = I`` and one
    inverse temperature ``beta``, stepped in place by the authors' scheme or RK4.

    ``x`` is copied; :attr:`x` is the current state. Tokens are unit vectors (the retraction
    keeps them so), hence ``|beta <x_i, x_j>| <= beta`` up to the ``O(h)`` excursion of an RK4
    stage; below :data:`UNSHIFTED_LOGIT_LIMIT` the weights need no max-shift.
    """

    def __init__(self, x: torch.Tensor, beta: float, *, normalization: str, solver: Solver):
        if x.ndim != 3:
            raise ValueError(f"states must have shape (systems, n, r), got {tuple(x.shape)}")
        if normalization not in ("sa", "usa"):
            raise ValueError(f"normalization must be 'sa' or 'usa', got {normalization!r}")
        if not isinstance(solver, (Authors, RK4)) or solver.step is None:
            raise ValueError(f"solver must be Authors(step=...) or RK4(step=...), got {solver!r}")
        beta = float(beta)
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        systems, n, _ = x.shape
        self.beta, self.normalization, self.solver, self.n = beta, normalization, solver, n
        self.step = solver.step
        if isinstance(solver, Authors) and solver.usa_step and normalization == "usa":
            self.step = usa_step(solver.step, beta)
        # Stages leave the sphere by O(h); a margin of 2 covers any step that keeps the solve stable.
        self._shift = 2.0 * beta > UNSHIFTED_LOGIT_LIMIT
        self._usa_offset = math.log(n) if normalization == "usa" else 0.0
        like = dict(dtype=x.dtype, device=x.device)
        self.x = x.clone()
        self._weights = torch.empty(systems, n, n, **like)
        self._product = torch.empty_like(x)
        self._row = torch.empty(systems, n, 1, **like)
        self._scale = torch.empty(systems, n, 1, **like)
        self._close = torch.empty(systems, n, n, **like)  # 0/1 as numbers: summed 3x faster than booleans
        self._logits_of: tuple[int, int] | None = None  # (address, version) of the state whose logits _weights holds
        self._next = torch.empty_like(x)
        if isinstance(solver, RK4):
            self._slope = torch.empty_like(x)
            self._stage = torch.empty_like(x)
            self._total = torch.empty_like(x)

    # -- the field ---------------------------------------------------------------------
    def _unnormalised_output(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ_j exp(beta <x_i, x_j> - c_i) x_j`` into ``self._product``; ``self._scale`` then holds
        the factor ``1 / Σ_j exp(...)`` (SA) or ``e^{c_i} / n`` (USA) that turns it into the output."""
        if self._logits_of == (x.data_ptr(), x._version):  # left by pair_fractions for this very state
            weights = self._weights
        else:
            weights = torch.baddbmm(self._weights, x, x.mT, beta=0.0, alpha=self.beta, out=self._weights)
        self._logits_of = None
        if self._shift:
            torch.amax(weights, dim=-1, keepdim=True, out=self._row)
            weights.sub_(self._row)
        weights.exp_()
        if self.normalization == "sa":
            torch.sum(weights, dim=-1, keepdim=True, out=self._scale).reciprocal_()
        elif self._shift:
            torch.sub(self._row, self._usa_offset, out=self._scale).exp_()
        else:
            self._scale.fill_(1.0 / self.n)
        return torch.bmm(weights, x, out=self._product)

    def _velocity(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``P⊥_x y = s (z - <x, z> x)`` into ``out``, where ``y = s z`` (as ``Attention.velocity``)."""
        z = self._unnormalised_output(x)
        torch.mul(x, z, out=out)
        torch.sum(out, dim=-1, keepdim=True, out=self._row)
        torch.addcmul(z, self._row, x, value=-1.0, out=out)
        return out.mul_(self._scale)

    def _retract(self, z: torch.Tensor) -> None:
        """``x <- z (1 / |z|)`` (a product: broadcast division takes three times as long)."""
        torch.linalg.vector_norm(z, dim=-1, keepdim=True, out=self._row)
        torch.mul(z, self._row.reciprocal_(), out=self.x)

    # -- steps -------------------------------------------------------------------------
    def advance(self, h: float) -> None:
        """One step of size ``h`` in place."""
        x = self.x
        if isinstance(self.solver, Authors):  # x <- N(x + h y)
            z = self._unnormalised_output(x)
            self._scale.mul_(h)
            self._retract(torch.addcmul(x, z, self._scale, out=self._next))
            return
        slope, stage, total = self._slope, self._stage, self._total
        self._velocity(x, total)  # k1
        torch.add(x, total, alpha=h / 2, out=stage)
        self._velocity(stage, slope)  # k2
        total.add_(slope, alpha=2.0)
        torch.add(x, slope, alpha=h / 2, out=stage)
        self._velocity(stage, slope)  # k3
        total.add_(slope, alpha=2.0)
        torch.add(x, slope, alpha=h, out=stage)
        self._velocity(stage, slope)  # k4
        total.add_(slope)
        self._retract(torch.add(x, total, alpha=h / 6, out=self._next))

    def advance_by(self, span: float) -> int:
        """Advance by ``span`` in the equal sub-steps of :func:`~tokenswarm.solve.integrate`; returns their count."""
        count, h = substeps(span, self.step)
        for _ in range(count):
            self.advance(h)
        return count

    # -- statistics --------------------------------------------------------------------
    def pair_fractions(self, delta: float) -> torch.Tensor:
        """Per system, the fraction of ordered pairs ``i != j`` with ``<x_i, x_j> > 1 - delta``,
        shape ``(systems,)``, float64 whatever the state's dtype (as :func:`tokenswarm.metrics.pair_fraction`).

        The comparison is made on the logits ``beta <x_i, x_j>`` against ``beta (1 - delta)``,
        which the next step then reuses instead of forming the same Gram product again (exact
        for a power-of-two ``beta``; otherwise a pair within one rounding of the threshold may
        count differently)."""
        x = self.x
        if self.beta > 0:
            logits = torch.baddbmm(self._weights, x, x.mT, beta=0.0, alpha=self.beta, out=self._weights)
            self._logits_of, threshold = (x.data_ptr(), x._version), self.beta * (1.0 - delta)
        else:
            logits, threshold = torch.bmm(x, x.mT, out=self._weights), 1.0 - delta
        close = torch.gt(logits, threshold, out=self._close)
        count = close.sum((-2, -1)) - close.diagonal(dim1=-2, dim2=-1).sum(-1)
        return count.to(torch.float64) / (self.n * (self.n - 1))

    def all_finite(self) -> torch.Tensor:
        """A 0-d boolean tensor on the device (no host synchronisation until it is read)."""
        return torch.isfinite(self.x).all()
