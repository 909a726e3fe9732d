"""Performance measurements of the attention field (``tokenswarm bench field``).

Everything is timed in the same process as a reference GEMM, so the ratio to the
machine's matrix-multiply rate is meaningful even on a noisy shared machine. Peak memory
is measured in a fresh child process that only builds the tokens and evaluates the
field, so the figure is not polluted by the GEMM operands or earlier allocations.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from dataclasses import dataclass

import torch

from tokenswarm.fields.attention import Attention
from tokenswarm.sphere import sample_uniform

__all__ = ["FieldBenchmark", "bench_field", "gemm_gflops", "field_peak_memory_mb", "MeanFieldBenchmark", "bench_meanfield"]

DENSE_LIMIT_BYTES = 4 << 30  # skip the dense baseline when its n x n logits alone exceed this


@dataclass
class FieldBenchmark:
    n: int
    d: int
    dtype: str
    device: str
    normalization: str
    backend: str
    seconds_per_eval: float
    gflops: float
    gemm_gflops: float
    ratio_to_gemm: float
    dense_seconds_per_eval: float | None
    speedup_vs_dense: float | None
    peak_memory_mb: float | None
    evaluation_memory_mb: float | None
    repeats: int


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up: kernel selection, allocator, caches
    _synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _synchronize(device)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def gemm_gflops(dtype: torch.dtype, device: torch.device, size: int = 4096, repeats: int = 3) -> float:
    """Rate of a ``size x size`` matrix product, GFLOP/s (``2 size³`` flops)."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, dtype=dtype, device=device, generator=generator)
    b = torch.randn(size, size, dtype=dtype, device=device, generator=generator)
    seconds = _median_seconds(lambda: a @ b, repeats, device)
    return 2 * size**3 / seconds / 1e9


def _status_kib(field_name: str) -> float:
    """A ``/proc/self/status`` entry in KiB (e.g. VmHWM, the peak resident set)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _memory_child(n, d, dtype_name, normalization, backend, beta, queue):
    # VmHWM belongs to the address space, which exec replaces, so unlike getrusage's
    # ru_maxrss it does not inherit the parent's peak from before the spawn.
    dtype = getattr(torch, dtype_name)
    x = sample_uniform(n, d, generator=torch.Generator().manual_seed(0), dtype=dtype)
    field = Attention(beta, normalization=normalization, backend=backend)
    before = _status_kib("VmRSS")
    field.velocity(0.0, x)
    peak = _status_kib("VmHWM")
    queue.put((peak / 1024.0, max(peak - before, 0.0) / 1024.0))


def field_peak_memory_mb(
    n: int, d: int, dtype: torch.dtype, *, normalization="sa", backend="fused", beta=1.0
) -> tuple[float, float]:
    """(peak resident memory of a fresh process that builds the tokens and evaluates the field
    once, part of that peak above the resident memory just before the evaluation), in MiB.

    Linux only (reads ``/proc/self/status``)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    dtype_name = str(dtype).removeprefix("torch.")
    child = context.Process(target=_memory_child, args=(n, d, dtype_name, normalization, backend, beta, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def bench_field(
    n: int = 4096,
    d: int = 64,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    beta: float = 1.0,
    normalization: str = "sa",
    backend: str = "fused",
    repeats: int = 5,
    dense: bool = True,
    memory: bool = True,
) -> FieldBenchmark:
    """Time one evaluation of the attention velocity ``P⊥_x Σ_j A_ij x_j`` for ``n`` tokens.

    FLOPs are counted as ``4 n² d`` per evaluation (logits and weighted sum).
    """
    device = torch.device(device)
    x = sample_uniform(n, d, generator=torch.Generator(device=device).manual_seed(0), dtype=dtype, device=device)
    field = Attention(beta, normalization=normalization, backend=backend)
    seconds = _median_seconds(lambda: field.velocity(0.0, x), repeats, device)
    flops = 4.0 * n * n * d
    gemm = gemm_gflops(dtype, device)

    dense_seconds = None
    if dense and n * n * x.element_size() * 2 <= DENSE_LIMIT_BYTES:
        dense_field = field.with_backend("dense")
        dense_seconds = _median_seconds(lambda: dense_field.velocity(0.0, x), repeats, device)

    peak = evaluation = None
    if memory:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            field.velocity(0.0, x)
            peak = torch.cuda.max_memory_allocated(device) / 2**20
            evaluation = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        else:
            peak, evaluation = field_peak_memory_mb(n, d, dtype, normalization=normalization, backend=backend, beta=beta)

    return FieldBenchmark(
        n=n, d=d, dtype=str(dtype).removeprefix("torch."), device=str(device),
        normalization=normalization, backend=backend,
        seconds_per_eval=seconds, gflops=flops / seconds / 1e9, gemm_gflops=gemm,
        ratio_to_gemm=flops / seconds / 1e9 / gemm,
        dense_seconds_per_eval=dense_seconds,
        speedup_vs_dense=None if dense_seconds is None else dense_seconds / seconds,
        peak_memory_mb=peak, evaluation_memory_mb=evaluation, repeats=repeats,
    )


@dataclass
class MeanFieldBenchmark:
    """One circle mean-field solve (:func:`bench_meanfield`)."""

    seconds: float
    steps: int
    rejected: int
    us_per_step: float
    fft_share_of_step: float
    mass_error: float
    min_density: float
    clusters: int


def bench_meanfield(cells: int = 4096, beta: float = 9.0, t_max: float = 30.0, model: str = "sa",
                    device: torch.device | str = "cpu") -> MeanFieldBenchmark:
    """Time the circle continuity equation from a uniform density perturbed in modes 3 and 5
    (clusters form and the CFL step shrinks as they sharpen). The plain baseline is the pair of
    FFT convolutions every SSP-RK2 step needs, timed alone in the same process on the same
    thread count as the solver (one on the CPU): ``fft_share_of_step`` is their fraction of a
    step, the part no finite-volume implementation can avoid."""
    import numpy as np

    from tokenswarm.meanfield.circle import (
        CircleGrid,
        CircleModel,
        count_clusters,
        perturbed_uniform,
        solve_circle,
    )
    from tokenswarm.runtime.threads import torch_threads

    device = torch.device(device)
    grid = CircleGrid(cells, device=device)
    rho0 = perturbed_uniform(grid, {3: 1e-4, 5: 1e-4})
    _synchronize(device)
    start = time.perf_counter()
    traj = solve_circle(CircleModel(beta=beta, model=model), grid, rho0, t_max, save_times=np.linspace(0, t_max, 31))
    _synchronize(device)
    seconds = time.perf_counter() - start
    kernel = torch.fft.rfft(torch.rand(cells, dtype=grid.dtype, device=device))
    rho = traj.density[-1]

    def convolutions():
        torch.fft.irfft(torch.fft.rfft(rho) * kernel, n=cells)
        torch.fft.irfft(torch.fft.rfft(rho) * kernel, n=cells)

    with torch_threads(1, device):
        fft_step = _median_seconds(convolutions, 200, device)
    per_step = seconds / traj.steps
    return MeanFieldBenchmark(
        seconds=seconds, steps=traj.steps, rejected=traj.rejected, us_per_step=1e6 * per_step,
        fft_share_of_step=fft_step / per_step, mass_error=float(traj.mass_error),
        min_density=float(traj.min_density), clusters=int(count_clusters(rho, grid)),
    )
