"""tokenswarm.checks: the argument checks shared by theory/, metrics/, fields/, nets/ and meanfield/."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenswarm import checks


def test_integer_lenient_and_strict():
    assert checks.integer("n", 4.0, 2) == 4 and isinstance(checks.integer("n", np.int64(4), 2), int)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="n must be an integer >= 2"):
            checks.integer("n", bad, 2)
    assert checks.integer("layers", 3, 1, strict=True) == 3
    for bad in (3.0, np.int64(3), False):
        with pytest.raises(ValueError, match="layers must be an integer >= 1"):
            checks.integer("layers", bad, 1, strict=True)


def test_numbers_bounds_and_reasons():
    assert checks.number("beta", 0) == 0.0
    np.testing.assert_array_equal(checks.numbers("beta", [0.0, 2.0]), [0.0, 2.0])
    for bad in (-1e-300, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"beta must be finite and >= 0, got"):
            checks.number("beta", bad)
        with pytest.raises(ValueError, match=r"beta must be finite and >= 0, got"):
            checks.numbers("beta", [1.0, bad])
    with pytest.raises(ValueError, match=r"beta must be finite and > 0 \(why\)"):
        checks.number("beta", 0.0, positive=True, note=" (why)")
    assert torch.equal(checks.tensor_numbers("beta", torch.tensor([0.0, 1.0])), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="beta must be finite and > 0 everywhere"):
        checks.tensor_numbers("beta", torch.tensor([1.0, 0.0]), positive=True)


def test_inner_products_clip_only_within_the_tolerance():
    assert checks.inner_products("u", 1.0 + 1e-13, tolerance=1e-12) == 1.0
    np.testing.assert_array_equal(checks.inner_products("rho", [-1.0, 0.25]), [-1.0, 0.25])
    for bad, tolerance in ((1.0 + 1e-13, 0.0), (1.0 + 1e-11, 1e-12), (math.nan, 1e-12)):
        with pytest.raises(ValueError, match=r"u must lie in \[-1, 1\]"):
            checks.inner_products("u", bad, tolerance=tolerance)


def test_closed_sets():
    assert checks.model("USA") == "usa"
    with pytest.raises(ValueError, match="model must be 'sa' or 'usa'"):
        checks.model("softmax")
    checks.choice("norm", "rms", ("layer", "rms"))
    with pytest.raises(ValueError, match="norm must be one of 'layer', 'rms', got 'batch'"):
        checks.choice("norm", "batch", ("layer", "rms"))
