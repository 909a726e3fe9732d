"""Mean-field views: densities of infinitely many tokens.

* :mod:`tokenswarm.meanfield.circle`: continuity / Fokker–Planck / stochastic continuity
  equations on the circle (d = 2), finite volumes.
* :mod:`tokenswarm.meanfield.token_pde`: the "master PDE" over token position and depth.
"""
