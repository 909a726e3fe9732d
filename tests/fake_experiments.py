"""Throw-away experiments used only by the infrastructure tests.

Importing this module does not register anything, so collecting the tests cannot leak
fake experiments into other tests: the ``fake_registry`` fixture registers them for one
test and removes them afterwards. A CLI subprocess loads them through
``TOKENSWARM_EXTRA_EXPERIMENTS=fake_experiments_autoregister``, whose import registers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import matplotlib.figure
import numpy as np
import pytest
import torch
import xarray
from PIL import Image

from tokenswarm.experiments.registry import RunContext, register, unregister
from tokenswarm.progress import track
from tokenswarm.results import Result, check, claim_less

FAKE_NAMES = ("fake_ok", "fake_raise")


@dataclass(frozen=True)
class FakeParams:
    n: int = field(default=16, metadata={"min": 2, "help": "number of tokens"})
    beta: tuple[float, ...] = (0.5, 1.0)
    model: Literal["sa", "usa"] = "sa"
    scale: float = field(default=1.0, metadata={"min_exclusive": 0})
    fail_claim: bool = False


def run_fake_ok(params: FakeParams, context: RunContext) -> Result:
    """Exercises every kind of output: torch/numpy metrics, NaN, data, figure, GIF."""
    # Stray prints must not reach stdout when the CLI prints JSON.
    print("stray print from an experiment")
    generator = context.generator(0)
    tokens = torch.randn(params.n, 3, generator=generator, device=context.device, dtype=context.dtype)
    tokens = tokens / tokens.norm(dim=-1, keepdim=True)
    for _ in track(range(3), "fake steps"):
        pass
    figure = matplotlib.figure.Figure(figsize=(2, 2))
    figure.add_subplot().plot(tokens[:, 0].cpu().numpy())
    gif = context.out_dir / "spin.gif"
    Image.new("RGB", (4, 4), "red").save(gif)
    data = xarray.Dataset({"tokens": (("token", "coordinate"), tokens.cpu().numpy())})
    norms_error = (tokens.norm(dim=-1) - 1).abs().max()
    return Result(
        experiment="fake_ok",
        params={},
        metrics={
            "norm_error": norms_error,  # a torch scalar
            "betas": np.asarray(params.beta),  # a numpy array
            "undefined": float("nan"),
            "first_token": tokens[0],
        },
        claims=[
            claim_less("tokens on the sphere", "fake §1", norms_error, 1e-6),
            check("deliberate", "fake §2", params.n, "n is anything", not params.fail_claim),
        ],
        data=data,
        figures={"tokens": figure},
        animations={"spin": gif},
    )


def run_fake_raise(params: FakeParams, context: RunContext) -> Result:
    raise RuntimeError("boom from fake_raise")


def register_all() -> list[str]:
    """(Re-)register the fake experiments; returns their names."""
    register("fake_ok", title="Fake experiment that works", reference="fake 0000.00000 §1",
             params=FakeParams, quick={"n": 4})(run_fake_ok)
    register("fake_raise", title="Fake experiment that raises", reference="fake 0000.00000 §2",
             params=FakeParams)(run_fake_raise)
    return list(FAKE_NAMES)



@pytest.fixture
def fake_registry() -> Iterator[list[str]]:
    """Register the fake experiments for one test, then remove them."""
    names = register_all()
    try:
        yield names
    finally:
        for name in names:
            unregister(name)
