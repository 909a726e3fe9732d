"""Ensembles of many small systems integrated in one tensor program (Fig. 3 and Fig. 5 of 2312.10794).

A phase diagram needs thousands of independent systems per (beta, d): they are stacked on
leading batch axes, every beta of a chunk integrated at once with a per-system ``beta``,
and only the clustered-pair statistic is recorded (never the states), so memory does not
grow with the number of output times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from tokenswarm.fields import Attention
from tokenswarm.metrics import pair_fraction
from tokenswarm.runtime.budget import check_steps
from tokenswarm.runtime.progress import progress_bar
from tokenswarm.runtime.threads import torch_threads
from tokenswarm.solve import RK4, Authors, integrate
from tokenswarm.ensembles.engine import AttentionEnsemble
from tokenswarm.solve.ode import NonFiniteStateError, substeps
from tokenswarm.sphere import sample_uniform, span_basis

__all__ = ["DELTA", "SCHEMES", "STATE_BUDGET", "CACHE_BYTES", "clustered_fraction", "piece_size", "boundary_times"]

#: Closeness threshold of Fig. 3: a pair is clustered when ``<x_i, x_j> > 1 - DELTA``.
DELTA = 1e-3
#: Tokens x dims simulated at once (64 MiB in float64); beta is chunked to fit.
STATE_BUDGET = 8 << 20
#: On a CPU, the bytes of one ``n x n`` buffer of a piece of systems integrated together: small
#: enough that a step's buffers stay in a core's cache (measured on 2 shared cores, n = 32,
#: float64: pieces of 32-128 systems took 0.75-0.9x the time of 256 and about half that of 2048).
CACHE_BYTES = 1 << 19
#: Scheme names of the phase-diagram experiments -> integrator methods.
SCHEMES = {"accurate": RK4, "authors": Authors}
"""Solver class for each scheme name a user types (``-p scheme=accurate``); built as ``SCHEMES[name](step=h)``."""


def clustered_fraction(
    n: int,
    d: int,
    betas: np.ndarray,
    times: np.ndarray,
    runs: int,
    *,
    scheme: str,
    step: float,
    model: str,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
    make_field: Callable[[torch.Tensor, torch.Generator], Attention] | None = None,
    weight_elements: int = 0,
    progress: bool = True,
    systems_per_piece: int | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over runs of the clustered-pair fraction, each ``(len(betas), len(times))``.

    ``times`` are measured from the uniform initial state at t = 0 (they need not include 0).

    ``make_field(beta_column, generator)`` builds the field for a chunk of systems with
    per-system ``beta`` of shape ``(chunk, 1)``; the default is ``Q = K = V = I``.
    ``weight_elements`` (numbers drawn per system by ``make_field``) enters the memory budget.

    With the default field the systems are integrated by :class:`~tokenswarm.ensembles.engine.AttentionEnsemble`
    in pieces of ``systems_per_piece`` (default: what keeps an ``n x n`` buffer in cache,
    :func:`piece_size`) on ``workers`` threads (default: the torch threads at the call; each piece
    runs on one). Starts are drawn piece by piece in the order of one ``(betas, runs)`` draw; on a
    CPU with ``n d runs`` a multiple of 16 the pieces then hold exactly the numbers of that one
    draw, and the statistics depend on neither the piece size nor the worker count.
    """
    times = np.asarray(times, dtype=np.float64)
    if make_field is not None:
        return _clustered_fraction_general(
            n, d, betas, times, runs, scheme=scheme, step=step, generator=generator, dtype=dtype,
            device=device, make_field=make_field, weight_elements=weight_elements, progress=progress,
        )
    solver = SCHEMES[scheme](step=step)
    spans = np.diff(np.concatenate([[0.0], times]))
    check_steps(float(sum(substeps(float(span), step)[0] for span in spans)), f"integrating to t = {times[-1]:g} with step {step:g}")
    size = piece_size(n, dtype, device) if systems_per_piece is None else systems_per_piece
    if workers is None:
        workers = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
    pieces = [(b, start, min(runs, start + size)) for b in range(len(betas)) for start in range(0, runs, size)]
    sums = torch.zeros(len(betas), len(times), 2, dtype=torch.float64, device=device)

    def integrate_piece(x: torch.Tensor, beta: float) -> torch.Tensor:
        ensemble = AttentionEnsemble(x, beta, normalization=model, solver=solver)
        out = torch.empty(len(times), 2, dtype=torch.float64, device=device)
        for k, span in enumerate(spans):
            ensemble.advance_by(float(span))
            f = ensemble.pair_fractions(DELTA)
            out[k, 0], out[k, 1] = f.sum(), (f * f).sum()
        return torch.where(ensemble.all_finite(), out, torch.nan)

    def collect(entry: tuple[int, Future]) -> None:
        beta_index, future = entry
        sums[beta_index] += future.result()
        bar.advance()

    # Starts are drawn here, in order; each piece runs on one worker thread with one intra-op
    # thread (small products gain nothing from intra-op parallelism, and its idle-spinning
    # threads cost 2-10x on a shared machine: runtime/threads.py).
    with torch_threads(1, device), progress_bar(len(pieces), "ensembles", enabled=None if progress else False) as bar, \
            ThreadPoolExecutor(max(1, workers), initializer=_one_intra_op_thread, initargs=(device,)) as pool:
        pending: deque[tuple[int, Future]] = deque()
        for b, start, stop in pieces:
            x = sample_uniform(n, d, stop - start, generator=generator, dtype=dtype, device=device)
            if d > n:  # span reduction: r = n coordinates, exactly (docs/theory/attention_ode.md §3.3)
                x = x @ span_basis(x)
            pending.append((b, pool.submit(integrate_piece, x, float(betas[b]))))
            if len(pending) > 2 * workers:  # bounds the states in flight
                collect(pending.popleft())
        while pending:
            collect(pending.popleft())
    stats = sums.cpu().numpy()
    if not np.isfinite(stats).all():
        raise NonFiniteStateError(f"non-finite token states in the {model.upper()} ensembles; reduce the step or use float64")
    mean, square = stats[..., 0] / runs, stats[..., 1] / runs
    variance = np.maximum(square - mean**2, 0.0) * runs / max(runs - 1, 1)
    return mean, np.sqrt(variance / runs)


def _one_intra_op_thread(device) -> None:
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)


def piece_size(n: int, dtype: torch.dtype, device: torch.device | str) -> int:
    """Systems integrated together: on a CPU as many as keep one ``n x n`` buffer within
    :data:`CACHE_BYTES` (a multiple of 16, so that drawing the starts piece by piece reproduces
    one large draw); on an accelerator enough to fill it (:data:`STATE_BUDGET` numbers)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    if torch.device(device).type != "cpu":
        return max(16, STATE_BUDGET // (n * n) // 16 * 16)
    return max(16, CACHE_BYTES // (n * n * itemsize) // 16 * 16)


def _clustered_fraction_general(n, d, betas, times, runs, *, scheme, step, generator, dtype, device, make_field,
                                weight_elements, progress):
    """Fields built by ``make_field`` (random weights): each chunk of betas through :func:`integrate`."""
    def observe(x):
        f = pair_fraction(x, DELTA)
        return torch.stack([f.mean(-1), (f * f).mean(-1)], dim=-1)

    width = min(n, d)  # span reduction keeps r = n coordinates when d > n
    chunk = max(1, STATE_BUDGET // (runs * (n * width + weight_elements)))
    mean, square = [], []
    with torch_threads(1, device):
        for start in range(0, len(betas), chunk):
            beta_chunk = torch.as_tensor(betas[start:start + chunk], dtype=dtype, device=device)
            x0 = sample_uniform(n, d, (len(beta_chunk), runs), generator=generator, dtype=dtype, device=device)
            field_ = make_field(beta_chunk.unsqueeze(-1), generator)
            traj = integrate(
                field_, x0, times, t0=0.0, solver=SCHEMES[scheme](step=step), observe=observe,
                invariant_observe=True, progress=progress,
            )
            stats = traj.states.double().cpu().numpy()  # (T, chunk, 2)
            mean.append(stats[..., 0].T)
            square.append(stats[..., 1].T)
    mean, square = np.concatenate(mean), np.concatenate(square)
    variance = np.maximum(square - mean**2, 0.0) * runs / max(runs - 1, 1)
    return mean, np.sqrt(variance / runs)


def boundary_times(fraction: np.ndarray, times: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Per beta, the first time the fraction reaches ``level`` (linear interpolation; NaN if never)."""
    out = np.full(fraction.shape[0], np.nan)
    for b, row in enumerate(fraction):
        above = np.nonzero(row >= level)[0]
        if above.size and above[0] > 0:
            k = above[0]
            w = (level - row[k - 1]) / (row[k] - row[k - 1])
            out[b] = times[k - 1] + w * (times[k] - times[k - 1])
    return out
