"""Plain PyTorch loops the toolkit is measured against (``tokenswarm bench all``).

* :func:`authors_loop`: a reimplementation of the original phase-diagram loop (the baseline
  of Fig. 3), also a command for a child process (below);
* :func:`plain_value_noise_loop`: the two-token value-noise SDE written as a user would;
* :func:`plain_random_mlp_loop`: the random-MLP Transformer of the ``synchronization``
  experiment (attention layer, then MLP layer with fresh Gaussian weights) with its energy
  recorded after every layer, written as a user would.

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


_PLAIN_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
                      "silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu, "identity": lambda z: z}


def plain_random_mlp_loop(x: torch.Tensor, layers: int, width: int, activation: str, beta: float, attention_sign: float,
                          sigma_u: float, sigma_w: float, t_max: float,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies ``(layers + 1, runs)`` and final state of ``x`` ``(runs, n, d)`` through ``layers``
    random-MLP Transformer layers of step ``h = t_max / layers``: an attention step
    ``x <- N(x + h P⊥_x (s softmax(beta x xᵀ) x))`` (``s`` the attention sign, skipped when 0), then
    ``x <- N(x + sqrt(h) (W σ(U x / sqrt(d) + b_U) / sqrt(m) + b_W))`` with ``U, W, b_U, b_W``
    drawn fresh per layer and run (in that order, so the same ``generator`` state gives the same
    network as :class:`~tokenswarm.nets.RandomMLPTransformer`). The energy
    ``E_beta = ½ mean_ij (e^beta - e^{beta <x_i, x_j>})`` is read from the Gram matrix, as a
    user would write it from the paper's formula. Dense matrices, one Python loop over layers."""
    runs, d = x.shape[0], x.shape[-1]
    h = t_max / layers
    sigma = _PLAIN_ACTIVATIONS[activation]
    options = {"generator": generator, "dtype": x.dtype}

    def energy(x):
        return 0.5 * (math.exp(beta) - torch.exp(beta * (x @ x.transpose(1, 2)))).mean(dim=(1, 2))

    energies = [energy(x)]
    for _ in range(layers):
        if attention_sign:
            y = attention_sign * (torch.softmax(beta * (x @ x.transpose(1, 2)), dim=-1) @ x)
            y = y - (x * y).sum(-1, keepdim=True) * x
            x = x + h * y
            x = x / x.norm(dim=-1, keepdim=True)
        U = torch.randn(runs, width, d, **options)
        W = torch.randn(runs, d, width, **options)
        b_u = sigma_u * torch.randn(runs, 1, width, **options)
        b_w = sigma_w * torch.randn(runs, 1, d, **options)
        hidden = sigma(x @ U.transpose(1, 2) / math.sqrt(d) + b_u)
        x = x + math.sqrt(h) * (hidden @ W.transpose(1, 2) / math.sqrt(width) + b_w)
        x = x / x.norm(dim=-1, keepdim=True)
        energies.append(energy(x))
    return torch.stack(energies), x


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
