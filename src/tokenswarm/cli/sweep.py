"""``tokenswarm sweep``: run an experiment at every point of a grid on dask.distributed.

``tokenswarm sweep kuramoto --quick --grid beta=0.5,1,2 --grid n=8,16 --store sweeps/k
[--workers N | --scheduler ADDRESS] [--json]`` validates every point, runs the unfinished
ones (:mod:`tokenswarm.sweep`) and rebuilds ``STORE/metrics.parquet``. A live bar on
stderr (when it is a terminal) counts the points done and failed and estimates the time
left. SIGINT/SIGTERM stop the sweep: the workers are shut down, the table is rebuilt from
the points finished so far, one line says so and the exit code is 130/143; running the same
command again resumes it.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from tokenswarm import sweep
from tokenswarm.io import rundir
from tokenswarm.params import UsageError, parse_key_values
from tokenswarm.runtime.progress import progress_bar

__all__ = ["sweep_command"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Interrupted(BaseException):
    """SIGINT/SIGTERM during a sweep: unwinds to the command, which cleans up and exits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`_Interrupted` while the sweep runs, so that the
    cluster is closed and the table rebuilt (the process-wide handler would ``_exit``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def sweep_command(
    name: str,
    grid: Sequence[str],
    params: Sequence[str],
    *,
    store: str,
    quick: bool,
    seed: int,
    device: str,
    dtype: str,
    workers: int | None,
    scheduler: str | None,
    json_output: bool,
    extra_modules: Sequence[str],
) -> int:
    """Validate, run and report a sweep; returns the exit code (1 when a point failed).

    Raises:
        UsageError: any mistake in the request or the store, before a point runs.
    """
    if workers is not None and scheduler is not None:
        raise UsageError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if scheduler is not None and not scheduler.strip():
        raise UsageError("--scheduler is empty; give an address such as tcp://host:8786")
    store_path = rundir.parse_out(store, pathlib.Path(store), option="--store")
    plan = sweep.plan_sweep(
        name, sweep.parse_grid(list(grid)), parse_key_values(list(params)), quick=quick, seed=seed,
        device=device, dtype=dtype, check_device=scheduler is None,
    )
    if scheduler is None and workers is None:
        workers = os.cpu_count() or 1
    pending = sum(not sweep.is_finished(store_path, point.id) for point in plan.points)
    failed = 0
    summary: sweep.SweepSummary | None = None
    with progress_bar(pending, f"sweep {name}") as bar:

        def advance(outcome: dict[str, Any]) -> None:
            nonlocal failed
            failed += outcome["status"] == "failed"
            if failed:
                bar.update(description=f"sweep {name} ({failed} failed)")
            bar.advance()

        try:
            with _signals_interrupt():
                summary = sweep.run_sweep(
                    plan, store_path, workers=workers, address=scheduler, extra_modules=extra_modules,
                    on_point=advance,
                )
        except _Interrupted as interruption:
            finished = sum(sweep.is_finished(store_path, point.id) for point in plan.points)
            signame = signal.Signals(interruption.signum).name
            print(
                f"error: interrupted by {signame}; {finished} of {len(plan.points)} points are finished in "
                f"{rundir.printable(str(store_path))} (run the same command to resume)",
                file=sys.stderr,
            )
            return 128 + interruption.signum
    assert summary is not None
    if json_output:
        sys.stdout.write(json.dumps(summary.to_json_dict(), ensure_ascii=False, allow_nan=False) + "\n")
        sys.stdout.flush()
    else:
        rate = summary.completed / summary.seconds if summary.seconds > 0 else 0.0
        print(
            f"sweep {name}: {summary.tasks} points: {summary.completed} completed, {summary.skipped} skipped, "
            f"{summary.failed} failed in {summary.seconds:.1f} s ({rate:.2f} points/s)"
        )
        print(f"table: {summary.table}")
        for failure in summary.failures:
            print(f"  FAILED {failure['point']}: {failure['error']}")
    return 1 if summary.failed else 0
