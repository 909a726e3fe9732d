"""Common noise: randomness shared by all tokens of a system (docs/theory/common_noise.md §1).

* :mod:`~tokenswarm.noise.common`: the noise models, each turning one Gaussian increment per
  system into a displacement of every token (:class:`ValueNoise`, :class:`ScalarNoise`,
  :class:`FieldNoise`, all deriving from :class:`CommonNoise`);
* :mod:`~tokenswarm.noise.brownian`: one Brownian realisation on nested grids
  (:class:`BrownianPath`).

Add a noise model by subclassing :class:`CommonNoise` in ``common.py``.
"""

from tokenswarm.noise.brownian import BrownianPath
from tokenswarm.noise.common import CommonNoise, FieldNoise, ScalarNoise, ValueNoise

__all__ = ["CommonNoise", "ValueNoise", "ScalarNoise", "FieldNoise", "BrownianPath"]
