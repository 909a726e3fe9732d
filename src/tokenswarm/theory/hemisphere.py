"""Wendel's hemisphere probability (Thm 6.7 of 2312.10794).
"""

from __future__ import annotations

import math
from fractions import Fraction

from tokenswarm import checks

# --------------------------------------------------------------------------- Thm 6.7


def wendel_probability(n: int, d: int) -> float:
    """Wendel's theorem: ``P(n i.i.d. uniform points on S^{d-1} lie in an open hemisphere)``.

    ``p = 2^{1-n} sum_{k=0}^{d-1} C(n-1, k)`` (equal to 1 when ``d >= n``), summed exactly in
    rational arithmetic and rounded once. 2312 Thm 6.7 uses it for ``d <= n``.

    Args:
        n: number of points ``>= 1``.
        d: ambient dimension ``>= 1``.
    """
    n = checks.integer("n", n, 1)
    d = checks.integer("d", d, 1)
    favourable = sum(math.comb(n - 1, k) for k in range(min(d, n)))
    return float(Fraction(favourable, 2 ** (n - 1)))
