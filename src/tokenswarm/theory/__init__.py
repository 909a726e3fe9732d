"""Closed forms and scalar reference solutions (NumPy/SciPy, float64).

Everything here is an independent oracle for the simulators: formulas evaluated in closed form
or by a high-accuracy scalar ODE or quadrature, against which the particle, network and
mean-field views are checked. One module per model:

* :mod:`~tokenswarm.theory.equiangular`: the equiangular reduction of the attention ODE
  (docs/theory/attention_ode.md §2.6);
* :mod:`~tokenswarm.theory.energy`: energies of reference configurations (§2.4);
* :mod:`~tokenswarm.theory.long_context`: the long-context single-layer oracle (§2.8);
* :mod:`~tokenswarm.theory.circle`: linear stability on the circle d = 2 (§2.5;
  docs/theory/mean_field.md §2.2);
* :mod:`~tokenswarm.theory.hemisphere`: Wendel's hemisphere probability;
* :mod:`~tokenswarm.theory.two_token`: the two-token diffusion of the common-noise SDE
  (docs/theory/common_noise.md), with its Monte Carlo simulators;
* :mod:`~tokenswarm.theory.random_mlp`: the random-MLP field kernel and its constants
  (docs/theory/random_mlp.md).

The attention closed forms are re-exported here (``theory.equiangular_solution``); the
two-token and random-MLP modules are imported by name. Models are named ``"sa"`` (softmax
attention) and ``"usa"`` (unnormalised, ``1/n``), case insensitive.
"""

from __future__ import annotations

from tokenswarm.checks import FloatOrArray, Model
from tokenswarm.runtime.lazy import lazy_exports

#: Public name -> the submodule defining it, imported when the name is first read.
_EXPORTS = {
    "MetastablePrediction": "circle",
    "angle_velocity": "circle",
    "circle_growth_rate": "circle",
    "fastest_mode": "circle",
    "sqrt_beta_cluster_prediction": "circle",
    "cross_polytope_energy": "energy",
    "log_uniform_energy": "energy",
    "simplex_energy": "energy",
    "uniform_energy": "energy",
    "equiangular_crossing_time": "equiangular",
    "equiangular_late_slope": "equiangular",
    "equiangular_rhs": "equiangular",
    "equiangular_solution": "equiangular",
    "wendel_probability": "hemisphere",
    "long_context_cosine": "long_context",
    "long_context_limit": "long_context",
}

__all__ = [
    "FloatOrArray",
    "Model",
    "equiangular_rhs",
    "equiangular_solution",
    "equiangular_crossing_time",
    "equiangular_late_slope",
    "uniform_energy",
    "log_uniform_energy",
    "simplex_energy",
    "cross_polytope_energy",
    "long_context_cosine",
    "long_context_limit",
    "angle_velocity",
    "circle_growth_rate",
    "fastest_mode",
    "MetastablePrediction",
    "sqrt_beta_cluster_prediction",
    "wendel_probability",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
