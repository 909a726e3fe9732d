"""Plain PyTorch loops the toolkit is measured against (``tokenswarm bench all``).

* :func:`authors_loop`: a reimplementation of the original phase-diagram loop (the baseline
  of Fig. 3), also a command for a child process (below);
* :func:`plain_value_noise_loop`: the two-token value-noise SDE written as a user would.

The authors' loop

For each beta: ``runs`` systems of ``n`` tokens uniform on S^{d-1}, all in one ``(runs, n, d)``
tensor with full d-dimensional matrices; repeat ``G = x xᵀ``, record the fraction of pairs
``i != j`` with ``G_ij > 1 - delta``, ``A = softmax(beta G)`` row-wise, ``x <- x + eta A x``,
``x <- x / |x|``. No span reduction, no preallocation, no chunking: the loop as a user would
write it, the time the toolkit is measured against.

Run as a child process for wall time and peak memory::

    python -m tokenswarm.runtime.baselines --d 128 --runs 2048 --beta 1,4 --eta 0.1 --t-max 30

prints one JSON line: per beta the time at which the mean fraction reaches 0.5 and the fraction
at the final time, plus the wall time of the loop.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch


def boundary_time(times: list[float], fraction: list[float], level: float = 0.5) -> float:
    """First time the fraction reaches ``level``, linearly interpolated; NaN if never."""
    for k in range(1, len(fraction)):
        if fraction[k] >= level:
            w = (level - fraction[k - 1]) / (fraction[k] - fraction[k - 1])
            return times[k - 1] + w * (times[k] - times[k - 1])
    return float("nan")


def authors_loop(n: int, d: int, runs: int, beta: float, eta: float, t_max: float, delta: float,
                 generator: torch.Generator, dtype: torch.dtype) -> tuple[list[float], list[float]]:
    x = torch.randn(runs, n, d, generator=generator, dtype=dtype)
    x = x / x.norm(dim=-1, keepdim=True)
    steps = round(t_max / eta)
    times, fraction = [], []
    for k in range(steps + 1):
        gram = x @ x.transpose(1, 2)
        clustered = (gram > 1 - delta).sum(dim=(1, 2)) - n  # the diagonal is always clustered
        times.append(k * eta)
        fraction.append(float(clustered.double().mean()) / (n * (n - 1)))
        if k == steps:
            break
        attention = torch.softmax(beta * gram, dim=-1)
        x = x + eta * (attention @ x)
        x = x / x.norm(dim=-1, keepdim=True)
    return times, fraction


def plain_value_noise_loop(x: torch.Tensor, beta: float, sigma2: float, t_max: float, steps: int,
                           generator: torch.Generator) -> torch.Tensor:
    """Euler–Maruyama plus normalisation for ``x`` ``(runs, 2, d)`` under value noise ``dW y_i``
    (``y`` the SA attention output, ``W`` a full ``d x d`` Brownian matrix per run): the loop of
    the ``two-token-sde`` workload without the toolkit's low-rank draw or solver objects."""
    dt = t_max / steps
    d = x.shape[-1]
    for _ in range(steps):
        attention = torch.softmax(beta * (x @ x.transpose(1, 2)), dim=-1)
        y = attention @ x
        dW = math.sqrt(dt * sigma2) * torch.randn(x.shape[0], d, d, generator=generator, dtype=x.dtype)
        x = x + y @ dW.transpose(1, 2)
        x = x / x.norm(dim=-1, keepdim=True)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2048)
    parser.add_argument("--beta", default="1,4", help="comma-separated inverse temperatures")
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--t-max", type=float, default=30.0)
    parser.add_argument("--delta", type=float, default=1e-3)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    results = []
    for beta in (float(b) for b in args.beta.split(",")):
        times, fraction = authors_loop(args.n, args.d, args.runs, beta, args.eta, args.t_max, args.delta,
                                       generator, getattr(torch, args.dtype))
        results.append({"beta": beta, "half_time": boundary_time(times, fraction), "final_fraction": fraction[-1]})
    print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
                      **{k: v for k, v in vars(args).items() if k != "threads"}, "results": results}), flush=True)


if __name__ == "__main__":
    main()
