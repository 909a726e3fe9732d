"""Mean-field equations on the circle (d = 2): continuity, Fokker–Planck, stochastic continuity.

The density ``ρ(θ, t)`` of infinitely many tokens on ``S^1`` solves (docs/theory/mean_field.md §1, §2.1, §3, §4)::

    ∂_t ρ + ∂_θ(ρ v[ρ]) = D ∂_θθ ρ                    D = 1/κ (0: no noise)
    v[ρ] = s ∂_θ Φ,     Φ = g_β * ρ,  g_β(u) = (e^{β cos u} − 1)/β   (USA)
    v[ρ] = s ∂_θ Ψ,     Ψ = β^{-1} log(1 + β Φ / M)                   (SA: β^{-1} ∂_θ log Z, Z = h_β * ρ)

with ``(f * ρ)(θ) = ∫ f(θ − θ') ρ(θ') dθ'``, mass ``M = ∫ρ``, value sign ``s = +1`` (``V = I``) or
``−1`` (``V = −I``). Both are the potential forms of the velocities ``β^{-1}(h' * ρ)`` and
``β^{-1}(h' * ρ)/(h * ρ)`` of docs/theory/attention_ode.md §2.5 (``h_β = 1 + β g_β``, ``∫ρ = M``); at ``β = 0`` both
become Kuramoto, ``g_0 = cos``. With a common noise (the random-MLP field of
docs/theory/random_mlp.md §5.3 restricted to the circle) the equation gains ``Σ_j ∂_θ(ρ c_j) ∘ dB^j`` (Stratonovich): every token is moved by the
same random flow.

Discretisation (finite volumes, ``N`` equal cells, cell averages ``ρ_j``):

* potential: ``Φ_j = h Σ_m g_β((j − m) h) ρ_m`` by FFT (circulant), ``O(N log N)``;
* face velocity ``v_{j+1/2} = s (P_{j+1} − P_j)/h`` for the potential ``P = Φ`` or ``Ψ``. Because
  the velocity is an exact discrete gradient, the semi-discrete scheme *increases* the
  discrete energy ``E = M²/(2β) + (h/2) Σ_j ρ_j Φ_j`` for ``s = +1`` (and decreases it for
  ``s = −1``): ``dE/dt = s Σ_f F_f (P_{f+1} − P_f)`` with ``sign F_f = sign v_f`` (USA; SA the same
  with ``Z``);
* flux ``F_{j+1/2} = v⁺ ρ^E_j + v⁻ ρ^W_{j+1}`` from a MUSCL reconstruction with a slope limiter
  (``mc`` by default; ``minmod``, ``van_leer``, ``none``): face values stay between neighbouring
  cell averages, hence non-negative;
* time: SSP-RK2 (Heun). With ``λ = dt max|v| / h <= 1/2`` every Euler stage writes ``ρ^{new}_j``
  as a non-negative combination of non-negative face values, so **the density stays
  non-negative**; the step is chosen adaptively as ``cfl · h / max|v|`` (``cfl = 0.4``) and a
  step whose second stage breaks the bound is redone smaller. The flux form conserves mass to
  round-off;
* diffusion: the exact semigroup ``exp(D t L_h)`` of the periodic 3-point Laplacian (a
  non-negative matrix) applied in Fourier space, Strang-split around the transport step: no
  parabolic step restriction (the FFT's round-off negatives, ~1e-16 of the peak, are clipped
  and the mass restored by a factor ``1 + O(1e-16)``);
* common noise: per step ``Δt`` the cell faces are moved by the stochastic Heun map
  ``θ ↦ θ + ½(a(θ) + a(θ + a(θ)))``, ``a(θ) = <ξ(x(θ), ΔW), e_θ>`` — the same map the particles
  follow — and the moved cumulative mass is remapped onto the fixed faces by monotone cubic
  (PCHIP) interpolation: exact mass, non-negative, no CFL restriction from the noise.

Everything is float64 by default and runs on any torch device; leading batch dimensions of the
density broadcast against vector-valued ``beta`` / ``kappa`` (one system per value). The
adaptive step needs one host synchronisation per step (``max|v|``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from tokenswarm import theory
from tokenswarm.runtime.budget import STEP_LIMIT, check_steps
from tokenswarm.runtime.progress import progress_bar
from tokenswarm.runtime.threads import torch_threads

__all__ = [
    "CircleGrid",
    "CircleModel",
    "DensityTrajectory",
    "LIMITERS",
    "solve_circle",
    "uniform_density",
    "perturbed_uniform",
    "von_mises_mixture",
    "THREE_BUMPS",
    "three_bumps",
    "sample_density",
    "quantile_points",
    "fourier_coefficient",
    "w1_circle",
    "w1_densities",
    "count_clusters",
    "face_map",
]

LIMITERS = ("mc", "minmod", "van_leer", "none")
TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class CircleGrid:
    """``cells`` equal cells on ``[0, 2π)``; cell ``j`` is ``[j h, (j + 1) h)``."""

    cells: int
    dtype: torch.dtype = torch.float64
    device: torch.device | str | None = None

    def __post_init__(self):
        if not (isinstance(self.cells, int) and self.cells >= 8):
            raise ValueError(f"cells must be an integer >= 8, got {self.cells!r}")

    @property
    def h(self) -> float:
        return TWO_PI / self.cells

    @property
    def centers(self) -> torch.Tensor:
        return (torch.arange(self.cells, dtype=self.dtype, device=self.device) + 0.5) * self.h

    @property
    def faces(self) -> torch.Tensor:
        """Left faces ``j h``, ``j = 0..N−1``."""
        return torch.arange(self.cells, dtype=self.dtype, device=self.device) * self.h

    def mass(self, rho: torch.Tensor) -> torch.Tensor:
        return rho.sum(-1) * self.h

    def cell_average(self, f: Callable[[np.ndarray], np.ndarray], order: int = 8) -> torch.Tensor:
        """Cell averages of a smooth function of the angle by Gauss–Legendre quadrature."""
        nodes, weights = np.polynomial.legendre.leggauss(order)
        left = np.arange(self.cells) * self.h
        points = left[:, None] + 0.5 * self.h * (nodes[None, :] + 1.0)
        values = (f(points) * weights).sum(-1) / 2.0
        return torch.as_tensor(values, dtype=self.dtype, device=self.device)


def _normalise(grid: CircleGrid, rho: torch.Tensor) -> torch.Tensor:
    return rho / grid.mass(rho).unsqueeze(-1)


def uniform_density(grid: CircleGrid) -> torch.Tensor:
    return torch.full((grid.cells,), 1.0 / TWO_PI, dtype=grid.dtype, device=grid.device)


def perturbed_uniform(grid: CircleGrid, modes: dict[int, float], phases: dict[int, float] | None = None
                      ) -> torch.Tensor:
    """``(1/2π)(1 + Σ_k a_k cos(kθ + φ_k))`` as exact cell averages (mass exactly 1).

    Raises ``ValueError`` if the density would be negative (``Σ|a_k| > 1``).
    """
    phases = phases or {}
    if sum(abs(a) for a in modes.values()) > 1:
        raise ValueError(f"amplitudes {modes} could make the density negative (need Σ|a_k| <= 1)")
    left = np.arange(grid.cells) * grid.h
    values = np.ones(grid.cells)
    for k, a in modes.items():
        if not (isinstance(k, (int, np.integer)) and k >= 1):
            raise ValueError(f"modes must be integers >= 1, got {k!r}")
        phi = phases.get(k, 0.0)
        # exact average of cos(kθ + φ) over [a, a + h]
        values = values + a * (np.sin(k * (left + grid.h) + phi) - np.sin(k * left + phi)) / (k * grid.h)
    return torch.as_tensor(values / TWO_PI, dtype=grid.dtype, device=grid.device)


def von_mises_mixture(grid: CircleGrid, locations: Sequence[float], concentrations: Sequence[float],
                      weights: Sequence[float] | None = None) -> torch.Tensor:
    """Mixture of von Mises densities ``∝ e^{c cos(θ − μ)}``, cell-averaged, mass 1."""
    locations, concentrations = np.asarray(locations, float), np.asarray(concentrations, float)
    weights = np.ones_like(locations) if weights is None else np.asarray(weights, float)
    if not (locations.shape == concentrations.shape == weights.shape) or locations.ndim != 1:
        raise ValueError("locations, concentrations and weights must be 1-D of equal length")
    if (concentrations < 0).any() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("concentrations and weights must be >= 0 (weights not all 0)")
    weights = weights / weights.sum()

    def density(theta):
        out = np.zeros_like(theta)
        for mu, c, w in zip(locations, concentrations, weights):
            # e^{c(cos − 1)} / (2π I_0(c) e^{−c}): stable for large c
            from scipy.special import ive
            out = out + w * np.exp(c * (np.cos(theta - mu) - 1.0)) / (TWO_PI * ive(0, c))
        return out

    return _normalise(grid, grid.cell_average(density))


#: The reference initial density of the mean-field experiments: three von Mises bumps
#: (locations, concentrations, weights), asymmetric so that no Fourier mode is special.
THREE_BUMPS = ((0.5, 2.6, 4.4), (4.0, 6.0, 3.0), (0.4, 0.35, 0.25))


def three_bumps(grid: CircleGrid) -> torch.Tensor:
    """:data:`THREE_BUMPS` on ``grid`` (mass 1)."""
    return von_mises_mixture(grid, *THREE_BUMPS)


def sample_density(grid: CircleGrid, rho: torch.Tensor, n: int, *, batch: Sequence[int] = (),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """I.i.d. angles from the piecewise-constant density ``rho`` (exactly the solver's ρ₀)."""
    u = torch.rand(*batch, n, generator=generator, dtype=grid.dtype, device=grid.device)
    return _inverse_cdf(grid, rho, u)


def quantile_points(grid: CircleGrid, rho: torch.Tensor, n: int) -> torch.Tensor:
    """Deterministic angles at the quantiles ``(i + ½)/n`` of ``rho``: a low-discrepancy start."""
    u = (torch.arange(n, dtype=grid.dtype, device=grid.device) + 0.5) / n
    return _inverse_cdf(grid, rho, u)


def _inverse_cdf(grid: CircleGrid, rho: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    if rho.ndim != 1:
        raise ValueError(f"sampling needs one density (N,), got shape {tuple(rho.shape)}")
    masses = rho * grid.h
    masses = masses / masses.sum()
    cdf = torch.cat([masses.new_zeros(1), torch.cumsum(masses, 0)])
    j = torch.searchsorted(cdf[1:-1].contiguous(), u.contiguous(), right=True)   # cell of each u
    width = masses[j]
    fraction = torch.where(width > 0, (u - cdf[j]) / width, torch.full_like(u, 0.5)).clamp(0, 1)
    return (j + fraction) * grid.h


def fourier_coefficient(grid: CircleGrid, rho: torch.Tensor, k: int) -> torch.Tensor:
    """``∫ ρ e^{−ikθ} dθ`` for the piecewise-constant ``ρ`` (complex, exact per cell)."""
    if k == 0:
        return grid.mass(rho).to(torch.complex128)
    left = grid.faces
    # ∫_cell e^{−ikθ} = (e^{−ik a} − e^{−ik(a + h)}) / (ik)
    w = (torch.polar(torch.ones_like(left), -k * left) - torch.polar(torch.ones_like(left), -k * (left + grid.h)))
    w = w / (1j * k)
    return (rho.to(w.dtype) * w).sum(-1)


# -------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class CircleModel:
    """The interaction of the particle view, in the circle's potential form.

    Args:
        beta: inverse temperature ``>= 0``; a sequence gives one system per value (batch).
        model: ``"sa"`` or ``"usa"``.
        value: ``"identity"`` (``V = I``, attractive) or ``"minus_identity"`` (``V = −I``).
        kappa: noise parameter κ of docs/theory/mean_field.md §3 (per-token noise ``√(2/κ) dW``, generator
            ``κ^{-1}∂_θθ``); ``0`` means no noise (the κ = ∞ limit). A sequence batches.
    """

    beta: float | Sequence[float] = 1.0
    model: Literal["sa", "usa"] = "sa"
    value: Literal["identity", "minus_identity"] = "identity"
    kappa: float | Sequence[float] = 0.0

    def __post_init__(self):
        if self.model not in ("sa", "usa"):
            raise ValueError(f"model must be 'sa' or 'usa', got {self.model!r}")
        if self.value not in ("identity", "minus_identity"):
            raise ValueError(f"value must be 'identity' or 'minus_identity', got {self.value!r}")
        beta, kappa = np.atleast_1d(np.asarray(self.beta, float)), np.atleast_1d(np.asarray(self.kappa, float))
        if not np.isfinite(beta).all() or (beta < 0).any() or (beta > 300).any():
            raise ValueError(f"beta must lie in [0, 300] (float64 range of e^beta), got {self.beta!r}")
        if not np.isfinite(kappa).all() or (kappa < 0).any():
            raise ValueError(f"kappa must be finite and >= 0 (0 = no noise), got {self.kappa!r}")

    @property
    def sign(self) -> float:
        return 1.0 if self.value == "identity" else -1.0

    def _param(self, values, grid: CircleGrid) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(values, float), dtype=grid.dtype, device=grid.device)
        return t.unsqueeze(-1) if t.ndim else t

    def betas(self, grid: CircleGrid) -> torch.Tensor:
        """``β`` as ``()`` or ``(P, 1)``, broadcasting against densities ``(..., N)``."""
        return self._param(self.beta, grid)

    def diffusion(self, grid: CircleGrid) -> torch.Tensor:
        kappa = self._param(self.kappa, grid)
        return torch.where(kappa > 0, 1.0 / torch.where(kappa > 0, kappa, torch.ones_like(kappa)),
                           torch.zeros_like(kappa))

    @property
    def has_diffusion(self) -> bool:
        return bool(np.any(np.asarray(self.kappa, float) > 0))

    def growth_rate(self, k) -> np.ndarray:
        """Linear growth rate of mode ``k`` at the uniform density:
        ``s k² I_k(β)/β`` (USA; SA divides by ``I_0(β)``) ``− k²/κ``; see
        :func:`tokenswarm.theory.circle_growth_rate`. Broadcasts over ``beta``/``kappa``."""
        k = np.asarray(k, float)
        beta = np.asarray(self.beta, float)
        kappa = np.asarray(self.kappa, float)
        rate = np.vectorize(lambda b, kk: float(theory.circle_growth_rate(kk, float(b), self.model)))(beta, k)
        D = np.where(kappa > 0, 1.0 / np.where(kappa > 0, kappa, 1.0), 0.0)
        return self.sign * rate - D * k**2

    def fastest_mode(self) -> int | list[int]:
        """``argmax_k`` of the growth rate (attractive model; for ``V = −I`` every mode decays)."""
        betas = np.atleast_1d(np.asarray(self.beta, float))
        modes = [theory.fastest_mode(float(b), self.model) for b in betas]
        return modes[0] if np.ndim(self.beta) == 0 else modes


# ------------------------------------------------------------------------------ the operator
class _Operator:
    """Potential, velocity and transport right-hand side for one (model, grid)."""

    def __init__(self, model: CircleModel, grid: CircleGrid, limiter: str):
        if limiter not in LIMITERS:
            raise ValueError(f"limiter must be one of {LIMITERS}, got {limiter!r}")
        self.model, self.grid, self.limiter = model, grid, limiter
        self.beta = model.betas(grid)
        offsets = torch.arange(grid.cells, dtype=grid.dtype, device=grid.device) * grid.h
        beta = self.beta
        safe = torch.where(beta > 0, beta, torch.ones_like(beta))
        g = torch.where(beta > 0, torch.expm1(beta * torch.cos(offsets)) / safe, torch.cos(offsets))
        self.kernel_hat = torch.fft.rfft(g, dim=-1) * grid.h
        k = torch.arange(grid.cells // 2 + 1, dtype=grid.dtype, device=grid.device)
        self.laplacian_symbol = -(4.0 / grid.h**2) * torch.sin(k * grid.h / 2) ** 2
        self.diffusion = model.diffusion(grid)
        self.mass: torch.Tensor | None = None

    def potential(self, rho: torch.Tensor) -> torch.Tensor:
        """``Φ = g_β * ρ`` at the cell centres."""
        return torch.fft.irfft(torch.fft.rfft(rho, dim=-1) * self.kernel_hat, n=self.grid.cells, dim=-1)

    def velocity_potential(self, rho: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        if self.model.model == "usa":
            return phi
        # Z = M + βΦ; the mass is conserved, so it is taken once from the initial density
        if self.mass is None:
            self.mass = self.grid.mass(rho).unsqueeze(-1)
        beta = self.beta
        safe = torch.where(beta > 0, beta, torch.ones_like(beta))
        return torch.where(beta > 0, torch.log1p(beta * phi / self.mass) / safe, phi / self.mass)

    def face_velocity(self, rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v_{j+1/2}, Φ)``: velocity on the right face of each cell, and the potential."""
        phi = self.potential(rho)
        P = self.velocity_potential(rho, phi)
        return self.model.sign * (torch.roll(P, -1, -1) - P) / self.grid.h, phi

    def _half_slopes(self, forward: torch.Tensor) -> torch.Tensor:
        """Half the limited slope of each cell, from the forward differences ``ρ_{j+1} − ρ_j``."""
        if self.limiter == "none":
            return torch.zeros_like(forward)
        backward = torch.roll(forward, 1, -1)
        agree = 0.25 * (torch.sign(forward) + torch.sign(backward))       # ±1/2 or 0
        smaller = torch.minimum(forward.abs(), backward.abs())
        if self.limiter == "minmod":
            return agree * smaller
        if self.limiter == "van_leer":
            return agree * 2 * forward.abs() * backward.abs() / (forward.abs() + backward.abs()).clamp_min(1e-300)
        # monotonised central: minmod(2b, 2f, (b + f)/2), halved
        return agree * torch.minimum(2 * smaller, 0.5 * (forward + backward).abs())

    def transport(self, rho: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``−(F_{j+1/2} − F_{j−1/2}) / h`` with upwind MUSCL fluxes
        ``F = v⁺ ρ^E_j + v⁻ ρ^W_{j+1} = v ρ_j + v⁻ (ρ_{j+1} − ρ_j) + v⁺ σ_j − v⁻ σ_{j+1}``
        (``σ`` the half slopes)."""
        forward = torch.roll(rho, -1, -1) - rho
        sigma = self._half_slopes(forward)
        negative = v.clamp_max(0)
        flux = v * (rho + sigma) + negative * (forward - sigma - torch.roll(sigma, -1, -1))
        return (torch.roll(flux, 1, -1) - flux) / self.grid.h

    def diffuse(self, rho: torch.Tensor, dt: float) -> torch.Tensor:
        if not self.model.has_diffusion:
            return rho
        multiplier = torch.exp(self.diffusion * dt * self.laplacian_symbol)
        out = torch.fft.irfft(torch.fft.rfft(rho, dim=-1) * multiplier, n=self.grid.cells, dim=-1)
        # exp(tD L_h) is a non-negative matrix; the FFT can leave round-off negatives (~1e-16 of
        # the peak) where ρ ≈ 0. Clip them and restore the mass by a factor 1 + O(1e-16).
        mass = rho.sum(-1, keepdim=True)
        out = out.clamp_min(0)
        return out * (mass / out.sum(-1, keepdim=True))

    def energy(self, rho: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``E_β[ρ] = (2β)^{-1} ∬ e^{β cos} ρρ = M²/(2β) + ½∫ρΦ`` (``β = 0``: ``½∬cos ρρ``)."""
        beta = self.beta.squeeze(-1) if self.beta.ndim else self.beta
        mass = self.grid.mass(rho)
        safe = torch.where(beta > 0, beta, torch.ones_like(beta))
        offset = torch.where(beta > 0, mass**2 / (2 * safe), torch.zeros_like(mass))
        return offset + 0.5 * self.grid.h * (rho * phi).sum(-1)


# ------------------------------------------------------------------------------ the solver
@dataclass
class DensityTrajectory:
    """Saved densities and diagnostics of :func:`solve_circle`.

    ``density``: ``(T, *batch, N)``; ``mass``/``energy``/``free_energy``: ``(T, *batch)``;
    ``step_energy``: the energy after every step ``(steps + 1, *batch)`` (``None`` with noise);
    ``min_density``: the smallest cell value met at any step (``*batch``).
    """

    grid: CircleGrid
    model: CircleModel
    times: np.ndarray
    density: torch.Tensor
    mass: torch.Tensor
    energy: torch.Tensor
    free_energy: torch.Tensor | None
    step_energy: torch.Tensor | None
    min_density: torch.Tensor
    steps: int
    rejected: int
    info: dict = field(default_factory=dict)

    @property
    def mass_error(self) -> torch.Tensor:
        """``max_t |M(t) − M(0)| / M(0)``."""
        return ((self.mass - self.mass[0]).abs() / self.mass[0]).amax(0)

    def energy_monotone(self, increasing: bool = True, tolerance: float = 1e-12, *, free: bool = False) -> torch.Tensor:
        """Whether the per-step energy (or, with ``free``, the saved free energy
        ``E − κ^{-1}∫ρ log ρ``) never moved against ``increasing`` by more than
        ``tolerance · max|E|`` (round-off)."""
        if free:
            if self.free_energy is None:
                raise ValueError("no free energy: the model has no diffusion")
            e = self.free_energy
        else:
            e = self.step_energy if self.step_energy is not None else self.energy
        change = e[1:] - e[:-1]
        if not increasing:
            change = -change
        return (change >= -tolerance * e.abs().amax(0)).all(0)


def face_map(theta: torch.Tensor, displacement: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Stochastic Heun (Stratonovich) map ``θ + ½(a(θ) + a(θ + a(θ)))`` for a displacement field."""
    a1 = displacement(theta)
    return theta + 0.5 * (a1 + displacement(theta + a1))


def _pchip_slopes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fritsch–Butland slopes (as scipy's PchipInterpolator) for increasing ``x``, along -1."""
    h = x[..., 1:] - x[..., :-1]
    delta = (y[..., 1:] - y[..., :-1]) / h
    h0, h1, d0, d1 = h[..., :-1], h[..., 1:], delta[..., :-1], delta[..., 1:]
    w1, w2 = 2 * h1 + h0, h1 + 2 * h0
    positive = (d0 > 0) & (d1 > 0)
    interior = torch.where(positive, (w1 + w2) / (w1 / torch.where(positive, d0, torch.ones_like(d0))
                                                   + w2 / torch.where(positive, d1, torch.ones_like(d1))),
                           torch.zeros_like(d0))
    return torch.cat([delta[..., :1], interior, delta[..., -1:]], dim=-1)


def remap(grid: CircleGrid, rho: torch.Tensor, moved_faces: torch.Tensor) -> torch.Tensor:
    """Cell averages on the fixed grid of the mass that sat in cell ``j`` between the moved faces
    ``moved_faces[j]`` and ``moved_faces[j+1]`` (periodic), by monotone cubic interpolation of the
    cumulative mass. Exact mass; non-negative if the faces stay ordered."""
    N, h = grid.cells, grid.h
    gaps = torch.diff(moved_faces, dim=-1, append=moved_faces[..., :1] + TWO_PI)
    if bool((gaps <= 0).any()):
        raise FloatingPointError("the noise step folded the circle (face map not monotone): use more steps")
    masses = rho * h
    total = masses.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(total), torch.cumsum(masses, -1)], -1)          # at faces 0..N
    knots = torch.cat([moved_faces, moved_faces[..., :1] + TWO_PI], -1)
    # one period on each side, then the cumulative mass at the fixed faces 0, h, .., 2π
    x = torch.cat([knots[..., :-1] - TWO_PI, knots[..., :-1], knots + TWO_PI], -1)
    y = torch.cat([cdf[..., :-1] - total, cdf[..., :-1], cdf + total], -1)
    # The queries 0..2π fall strictly inside the middle period's neighbourhood (faces move by
    # less than a period), never in the outermost intervals whose end slopes are one-sided, so
    # the interpolant there is exactly periodic and the masses sum to the total.
    if bool(((moved_faces - grid.faces).abs() >= math.pi).any()):
        raise FloatingPointError("a noise step moved a face by more than pi: use more steps")
    query = (torch.arange(N + 1, dtype=rho.dtype, device=rho.device) * h).expand(*x.shape[:-1], N + 1)
    slopes = _pchip_slopes(x, y)
    i = (torch.searchsorted(x.contiguous(), query.contiguous(), right=True) - 1).clamp(0, x.shape[-1] - 2)
    x0, x1 = x.gather(-1, i), x.gather(-1, i + 1)
    y0, y1 = y.gather(-1, i), y.gather(-1, i + 1)
    m0, m1 = slopes.gather(-1, i), slopes.gather(-1, i + 1)
    dx = x1 - x0
    t = (query - x0) / dx
    h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
    values = h00 * y0 + h10 * dx * m0 + h01 * y1 + h11 * dx * m1
    return (values[..., 1:] - values[..., :-1]).clamp_min(0) / h


def solve_circle(
    model: CircleModel,
    grid: CircleGrid,
    rho0: torch.Tensor,
    t_max: float,
    *,
    save_times: Sequence[float] | np.ndarray | None = None,
    cfl: float = 0.4,
    dt_max: float | None = None,
    limiter: str = "mc",
    threads: int | None = 1,
    noise: Callable[[float, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    increments: torch.Tensor | None = None,
    progress: bool = False,
) -> DensityTrajectory:
    """Solve the circle mean-field equation from ``rho0`` ``(*batch, N)`` on ``[0, t_max]``.

    Args:
        model: interaction, value sign and noise parameter κ (:class:`CircleModel`).
        grid: the finite-volume grid; ``rho0`` must live on it (dtype and device too).
        save_times: times at which the density is stored (default 101 equal times).
        cfl: Courant number ``dt max|v| / h``; must be ``<= 0.5`` (the positivity bound).
        dt_max: largest step (default ``0.1 / Λ``, ``Λ`` the largest linear rate of any mode,
            so that the linear growth is resolved to ~0.2%).
        limiter: slope limiter of the MUSCL reconstruction (:data:`LIMITERS`).
        noise: common noise ``(t, x, dW) -> displacement (…, M, 2)`` for points ``x`` ``(…, M, 2)``
            on the circle, e.g. ``FieldNoise(...).apply``; requires ``increments``
            ``(steps, *noise_shape)``. The solver then takes ``steps`` equal outer steps of
            Strang type: half transport, noise remap, half transport.
        threads: intra-op threads while stepping on the CPU (default 1: the grid is too small
            for parallelism to pay, see :mod:`tokenswarm.runtime.threads`); ``None`` leaves torch's setting.
        progress: show a progress bar (stderr).
    """
    with torch_threads(threads, rho0.device):
        return _solve_circle(model, grid, rho0, t_max, save_times, cfl, dt_max, limiter, noise, increments, progress)


def _solve_circle(model, grid, rho0, t_max, save_times, cfl, dt_max, limiter, noise, increments, progress):
    if rho0.shape[-1] != grid.cells:
        raise ValueError(f"rho0 has {rho0.shape[-1]} cells, the grid {grid.cells}")
    if rho0.dtype != grid.dtype:
        raise ValueError(f"rho0 has dtype {rho0.dtype}, the grid {grid.dtype}")
    if bool((rho0 < 0).any()) or not bool(torch.isfinite(rho0).all()):
        raise ValueError("rho0 must be finite and non-negative")
    if not (t_max > 0 and math.isfinite(t_max)):
        raise ValueError(f"t_max must be finite and > 0, got {t_max!r}")
    if not 0 < cfl <= 0.5:
        raise ValueError(f"cfl must lie in (0, 0.5] (positivity), got {cfl!r}")
    if (noise is None) != (increments is None):
        raise ValueError("noise and increments go together")
    op = _Operator(model, grid, limiter)
    save_times = np.linspace(0.0, t_max, 101) if save_times is None else np.asarray(save_times, float)
    if save_times.ndim != 1 or save_times[0] < 0 or save_times[-1] > t_max * (1 + 1e-12) or (np.diff(save_times) < 0).any():
        raise ValueError("save_times must be increasing within [0, t_max]")
    if dt_max is None:
        modes = np.arange(1, grid.cells // 2 + 1)
        rates = np.abs(CircleModel(model.beta, model.model, model.value, 0.0).growth_rate(
            modes[:, None] if np.ndim(model.beta) else modes))
        dt_max = 0.1 / max(float(np.max(rates)), 1e-3)
    rho = rho0.expand(*torch.broadcast_shapes(rho0.shape, op.beta.shape, op.diffusion.shape)).clone()

    recorded, saved, masses, energies, free = [], [], [], [], []
    step_energy: list[torch.Tensor] = []
    running_min = rho.amin(-1)

    def record(time: float, r: torch.Tensor) -> None:
        phi = op.potential(r)
        recorded.append(time)
        saved.append(r.clone())
        masses.append(grid.mass(r))
        e = op.energy(r, phi)
        energies.append(e)
        if model.has_diffusion:
            D = op.diffusion.squeeze(-1) if op.diffusion.ndim else op.diffusion
            entropy = (torch.xlogy(r, r)).sum(-1) * grid.h
            free.append(e - D * entropy)

    steps = rejected = 0

    def transport_to(r: torch.Tensor, duration: float, bar=None) -> torch.Tensor:
        """Adaptive SSP-RK2 transport (with Strang-split diffusion) over ``duration``."""
        nonlocal steps, rejected, running_min
        elapsed = 0.0
        v, phi = op.face_velocity(r)
        while elapsed < duration * (1 - 1e-14):
            speed = float(v.abs().max())
            dt = min(dt_max, duration - elapsed, cfl * grid.h / speed if speed > 0 else math.inf)
            while True:
                half = op.diffuse(r, 0.5 * dt)
                if op.model.has_diffusion:
                    v, phi = op.face_velocity(half)
                stage = half + dt * op.transport(half, v)
                v1, _ = op.face_velocity(stage)
                if float(v1.abs().max()) * dt / grid.h <= 0.5:
                    break
                rejected += 1
                dt *= 0.5
            new = 0.5 * half + 0.5 * (stage + dt * op.transport(stage, v1))
            r = op.diffuse(new, 0.5 * dt)
            elapsed += dt
            steps += 1
            if steps > STEP_LIMIT:
                check_steps(steps, f"a mean-field solve to t = {t_max:g} (reached t = {t + elapsed:.6g})")
            running_min = torch.minimum(running_min, r.amin(-1))
            v, phi = op.face_velocity(r)
            if noise is None:
                step_energy.append(op.energy(r, phi))
            if bar is not None:
                bar.advance(dt)
        return r

    t = 0.0
    next_save = 0
    if save_times[0] == 0.0:
        record(0.0, rho)
        next_save = 1
    if noise is None:
        step_energy.append(op.energy(rho, op.potential(rho)))
    # The CFL step at the start bounds the step count from below (speeds only grow as
    # clusters form): refuse a horizon that cannot be reached in a sensible number of steps.
    initial_speed = float(op.face_velocity(rho)[0].abs().max())
    initial_step = min(dt_max, cfl * grid.h / initial_speed if initial_speed > 0 else math.inf)
    check_steps(t_max / initial_step, f"a mean-field solve to t = {t_max:g} ({grid.cells} cells, CFL step {initial_step:.3g})")
    with progress_bar(t_max, "mean-field", enabled=None if progress else False) as bar:
        if noise is None:
            for target in save_times[next_save:]:
                rho = transport_to(rho, target - t, bar)
                t = float(target)
                record(t, rho)
        else:
            n_steps = increments.shape[0]
            dt = t_max / n_steps
            faces = grid.faces
            save_steps = np.rint(save_times[next_save:] / dt).astype(int)
            if np.abs(save_steps * dt - save_times[next_save:]).max(initial=0.0) > 1e-9 * t_max:
                raise ValueError(f"with noise, save_times must be multiples of t_max / steps = {dt:g}")
            save_steps = set(save_steps.tolist())
            for k in range(n_steps):
                rho = transport_to(rho, 0.5 * dt)
                dW = increments[k]

                def displacement(theta, _t=k * dt, _dW=dW):
                    x = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
                    xi = noise(_t, x, _dW)
                    return xi[..., 1] * torch.cos(theta) - xi[..., 0] * torch.sin(theta)

                moved = face_map(faces.expand(*rho.shape[:-1], -1), displacement)
                rho = remap(grid, rho, moved)
                running_min = torch.minimum(running_min, rho.amin(-1))
                rho = transport_to(rho, 0.5 * dt)
                bar.advance(dt)
                if (k + 1) in save_steps:
                    record((k + 1) * dt, rho)
    return DensityTrajectory(
        grid=grid, model=model, times=np.asarray(recorded, float),
        density=torch.stack(saved), mass=torch.stack(masses), energy=torch.stack(energies),
        free_energy=torch.stack(free) if free else None,
        step_energy=torch.stack(step_energy) if step_energy else None,
        min_density=running_min, steps=steps, rejected=rejected,
        info={"dt_max": dt_max, "cfl": cfl, "limiter": limiter},
    )


# ------------------------------------------------------------------------------- measurement
def _as_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def w1_circle(theta, rho, grid: CircleGrid) -> np.ndarray:
    """Wasserstein-1 on the circle (arc length) between the empirical measure of the angles
    ``theta`` ``(*batch, n)`` and the piecewise-constant density ``rho`` ``(*batch, N)`` of mass 1.

    Uses ``W1 = min_c ∫_0^{2π} |F(θ) − G(θ) − c| dθ`` (Rabin et al.); between the merged
    break points (faces and atoms) ``F − G`` is linear, integrated exactly; ``c`` is the
    length-weighted median of the segment midpoints.
    """
    theta, rho = _as_numpy(theta) % TWO_PI, _as_numpy(rho)
    batch = np.broadcast_shapes(theta.shape[:-1], rho.shape[:-1])
    theta = np.broadcast_to(theta, batch + theta.shape[-1:]).reshape(-1, theta.shape[-1])
    rho = np.broadcast_to(rho, batch + rho.shape[-1:]).reshape(-1, rho.shape[-1])
    out = np.array([_w1_one(t, r, grid) for t, r in zip(theta, rho)])
    return out.reshape(batch)


def _w1_one(theta: np.ndarray, rho: np.ndarray, grid: CircleGrid) -> float:
    N, h = grid.cells, grid.h
    masses = rho * h
    masses = masses / masses.sum()
    cdf_faces = np.concatenate([[0.0], np.cumsum(masses)])
    atoms = np.sort(theta)
    points = np.unique(np.concatenate([np.arange(N + 1) * h, atoms]))
    F = np.interp(points, np.arange(N + 1) * h, cdf_faces)
    G_right = np.searchsorted(atoms, points, side="right") / atoms.size   # G on [p_k, p_{k+1})
    a = F[:-1] - G_right[:-1]                                           # D at the left end (G right-continuous)
    b = F[1:] - G_right[:-1]                                            # D at the right end, same G
    length = np.diff(points)
    c = _lebesgue_median(a, b, length)
    a, b = a - c, b - c
    same = a * b >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = (a**2 + b**2) / (2 * (np.abs(a) + np.abs(b)))
    integrand = np.where(same, np.abs(a + b) / 2, np.nan_to_num(crossing))
    return float((integrand * length).sum())


def _lebesgue_median(a: np.ndarray, b: np.ndarray, length: np.ndarray) -> float:
    """The ``c`` with ``|{D < c}| = |{D > c}|`` for ``D`` linear from ``a`` to ``b`` on each segment
    (the minimiser of ``∫|D − c|``), by bisection to round-off."""
    low, high = np.minimum(a, b), np.maximum(a, b)
    span = np.where(high > low, high - low, 1.0)
    half = 0.5 * length.sum()
    lo, hi = float(low.min()), float(high.max())
    for _ in range(200):
        c = 0.5 * (lo + hi)
        below = np.where(high > low, np.clip((c - low) / span, 0.0, 1.0), (low < c).astype(float))
        if (below * length).sum() < half:
            lo = c
        else:
            hi = c
        if hi - lo <= 1e-16 * max(1.0, abs(c)):
            break
    return 0.5 * (lo + hi)


def w1_densities(rho1, rho2, grid: CircleGrid) -> np.ndarray:
    """Wasserstein-1 on the circle between two piecewise-constant densities on one grid
    (trapezoid rule on the CDF difference at the faces, exact median shift)."""
    rho1, rho2 = _as_numpy(rho1), _as_numpy(rho2)
    D = np.cumsum((rho1 - rho2) * grid.h, axis=-1)
    c = np.median(D, axis=-1, keepdims=True)
    return np.abs(D - c).sum(-1) * grid.h


def count_clusters(rho, grid: CircleGrid, threshold: float = 0.05) -> np.ndarray:
    """Number of connected arcs where ``ρ`` exceeds ``threshold ×`` its maximum, counting only
    arcs holding at least 1% of the mass (so numerical tails do not count)."""
    rho = _as_numpy(rho)
    flat = rho.reshape(-1, rho.shape[-1])
    counts = []
    for r in flat:
        above = r > threshold * r.max()
        if above.all():
            counts.append(0)
            continue
        start = int(np.argmin(above))                       # rotate so that we start outside an arc
        a, m = np.roll(above, -start), np.roll(r, -start) * grid.h
        edges = np.diff(a.astype(int))
        starts, ends = np.nonzero(edges == 1)[0] + 1, np.nonzero(edges == -1)[0] + 1
        if a[-1]:
            ends = np.append(ends, a.size)
        arcs = [m[s:e].sum() for s, e in zip(starts, ends)]
        counts.append(sum(1 for w in arcs if w >= 0.01 * m.sum()))
    return np.asarray(counts).reshape(rho.shape[:-1])
