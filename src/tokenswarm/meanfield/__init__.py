"""Mean-field views: densities of infinitely many tokens.

* :mod:`tokenswarm.meanfield.circle`: continuity / Fokker–Planck / stochastic continuity
  equations on the circle (d = 2), finite volumes.
* :mod:`tokenswarm.meanfield.particles`: the matching finite particle systems.
* :mod:`tokenswarm.meanfield.token_pde`: the "master PDE" over token position and depth
  (2408.09523), its stability bound and its fitting to a Transformer's hidden states.
"""

from tokenswarm.meanfield.circle import (
    THREE_BUMPS,
    CircleGrid,
    CircleModel,
    DensityTrajectory,
    perturbed_uniform,
    sample_density,
    solve_circle,
    three_bumps,
    von_mises_mixture,
    w1_circle,
)
from tokenswarm.meanfield.token_pde import TokenPDE, TokenPDEConfig, fit_token_pde

__all__ = [
    "CircleGrid", "CircleModel", "DensityTrajectory", "solve_circle", "perturbed_uniform", "von_mises_mixture", "THREE_BUMPS", "three_bumps",
    "sample_density", "w1_circle", "TokenPDE", "TokenPDEConfig", "fit_token_pde",
]
