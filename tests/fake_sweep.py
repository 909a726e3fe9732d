"""A cheap experiment for the sweep tests (tests/test_sweep.py), importable by dask workers.

Importing this module registers nothing; :func:`register_sweep_fakes` does (the tests'
fixture, and ``fake_sweep_autoregister`` in worker processes).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Literal

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.results import Result, check, claim_less

NAME = "fake_sweep"


@dataclass(frozen=True)
class SweepParams:
    a: int = field(default=1, metadata={"min": 0})
    b: float = field(default=0.5, metadata={"min_exclusive": 0})
    mode: Literal["x", "y"] = "x"
    times: tuple[float, ...] = field(default=(1.0,), metadata={"increasing": True})
    fail_at: int = field(default=-1, metadata={"help": "raise at this a"})
    die_marker: str = field(default="", metadata={"help": "first run at a=0: create this file, SIGKILL own process"})
    log: str = field(default="", metadata={"help": "append one line per completed run to this file"})
    wait: float = field(default=0.0, metadata={"min": 0, "help": "seconds to sleep at a >= 1"})


def run_fake_sweep(params: SweepParams, context: RunContext) -> Result:
    print("stray print from a sweep point")
    if params.a == params.fail_at:
        raise RuntimeError(f"boom at a={params.a}")
    if params.die_marker and params.a == 0 and not os.path.exists(params.die_marker):
        with open(params.die_marker, "w") as marker:
            marker.write(str(os.getpid()))
        (context.out_dir / "half-written.txt").write_text("the worker dies here")
        os.kill(os.getpid(), signal.SIGKILL)
    if params.a >= 1 and params.wait:
        time.sleep(params.wait)
    noise = float(context.numpy_generator(0).normal())
    value = params.a * params.b + (1.0 if params.mode == "y" else 0.0)
    if params.log:
        with open(params.log, "a") as stream:
            stream.write(f"a={params.a} b={params.b} mode={params.mode}\n")
    return Result(
        experiment=NAME,
        params={},
        metrics={"value": value, "noise": noise, "label": f"{params.mode}{params.a}", "vector": [value, noise],
                 "nothing": None if params.a == 1 else float(params.a)},
        claims=[claim_less("small", "fake §4", value, 2.0), check("always", "fake §4", 1, "1", True)],
    )


def register_sweep_fakes() -> str:
    register(NAME, title="Fake experiment for sweeps", reference="0000.00000 fake §4",
             params=SweepParams, quick={"b": 0.25})(run_fake_sweep)
    return NAME
