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
from tokenswarm.io.results import Result, check, claim_less
from tokenswarm.runtime.progress import track

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
    register("fake_ok", title="Fake experiment that works", reference="0000.00000 fake §1",
             params=FakeParams, quick={"n": 4})(run_fake_ok)
    register("fake_raise", title="Fake experiment that raises", reference="0000.00000 fake §2",
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


# --------------------------------------------------------------------------------------
# fake_slow: writes its GIF slowly, for the interruption tests (tests/test_cli_rundir.py)
# --------------------------------------------------------------------------------------

#: When set, fake_slow creates this file once half of its GIF is on disk (and before it
#: waits), so a test can send a signal at the moment the run is writing its directory.
SLOW_SENTINEL_ENV = "FAKE_SLOW_SENTINEL"


@dataclass(frozen=True)
class SlowParams:
    wait: float = field(default=0.0, metadata={"min": 0, "help": "seconds to wait half-way through the GIF"})
    frames: int = field(default=6, metadata={"min": 2})


def gif_bytes(seed: int, frames: int) -> bytes:
    """A small GIF whose pixels depend on ``seed`` (so two runs differ byte for byte)."""
    import io

    colours = np.random.default_rng(seed).integers(0, 256, size=(frames, 3))
    images = [Image.new("RGB", (24, 24), tuple(int(c) for c in colour)) for colour in colours]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return buffer.getvalue()


def run_fake_slow(params: SlowParams, context: RunContext) -> Result:
    """Writes ``slow.gif`` into ``context.out_dir`` in two halves with a wait in between.

    The wait is ``params.wait``, or ``$FAKE_SLOW_WAIT`` when set (``reproduce`` passes no
    parameters).
    """
    import os
    import time

    wait = float(os.environ.get("FAKE_SLOW_WAIT", params.wait))

    payload = gif_bytes(context.seed, params.frames)
    gif = context.out_dir / "slow.gif"
    with open(gif, "wb") as stream:
        stream.write(payload[: len(payload) // 2])
        stream.flush()
        sentinel = os.environ.get(SLOW_SENTINEL_ENV)
        if sentinel:
            with open(sentinel, "w") as flag:
                flag.write(str(os.getpid()))
        time.sleep(wait)
        stream.write(payload[len(payload) // 2 :])
    figure = matplotlib.figure.Figure(figsize=(1.5, 1.5))
    figure.add_subplot().plot(context.numpy_generator(0).normal(size=8))
    data = xarray.Dataset({"values": (("i",), context.numpy_generator(1).normal(size=5))})
    return Result(
        experiment="fake_slow",
        params={},
        metrics={"seed_echo": context.seed},
        claims=[check("always", "fake §3", 1, "1", True)],
        data=data,
        figures={"noise": figure},
        animations={"slow": gif},
    )


def register_slow() -> str:
    register("fake_slow", title="Fake experiment that writes slowly", reference="0000.00000 fake §3",
             params=SlowParams)(run_fake_slow)
    return "fake_slow"
