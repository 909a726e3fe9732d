"""Performance of the ensemble engine against plain PyTorch loops (``tokenswarm bench all``).

Every figure is a ratio to a baseline measured in the same call, the two alternated so that
a drift of the machine's speed hits both: the Fig. 3 job as a whole command against the
plain reimplementation of the authors' loop (:mod:`tokenswarm.runtime.baselines`), each in a
child process whose own peak resident memory the operating system reports (``os.wait4``);
the span reduction as the cost of a d = 128 job over the same job at d = 32; the two-token
SDE ensembles and the random-MLP ensembles of ``synchronization`` in runs per second against
plain loops; the peak memory of both ensembles in child processes at four run counts, fitted
by a line in the number of runs.

The memory children are this module run as a command::

    python -m tokenswarm.runtime.ensemble_perf memory two-token --runs 50000
    python -m tokenswarm.runtime.ensemble_perf memory random-mlp --runs 16
    python -m tokenswarm.runtime.ensemble_perf memory import   # the imports only: the baseline

each printing one JSON line (the bytes per run of the ensemble's state tensor, the seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from tokenswarm.ensembles import boundary_times, clustered_fraction

__all__ = ["machine", "run_child", "bench_phase_job", "bench_span_reduction", "bench_two_token", "bench_random_mlp",
           "bench_memory_scaling", "fit_line"]


def machine() -> dict:
    """The machine a benchmark ran on: processor model, cores, torch version and threads."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


# Run by a small interpreter (no torch): a child forked from a large process starts with that
# process's resident set as its ru_maxrss, so the command is started from this launcher instead.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write("\\n@peak_kib %d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak resident MiB of the command's process, its stdout) of one command."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr[-2000:]}")
    peak = next(float(line.split()[1]) for line in reversed(done.stderr.splitlines()) if line.startswith("@peak_kib"))
    return wall, peak / 1024.0, done.stdout


def _summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def bench_phase_job(runs: int = 2048, betas: tuple[float, ...] = (1.0, 4.0), d: int = 128, repeats: int = 1,
                    scheme: str = "authors", step: float = 0.1) -> dict:
    """The Fig. 3 job of issue 12 (SA, n = 32, output every 0.15 to t = 30, float64) as the whole
    ``tokenswarm run phase-diagram`` command against the authors' loop (eta = ``step``), alternated."""
    beta_text = ",".join(f"{b:g}" for b in betas)
    authors = [sys.executable, "-m", "tokenswarm.runtime.baselines", "--d", str(d), "--runs", str(runs),
               "--beta", beta_text, "--eta", str(step), "--t-max", "30"]
    times = np.round(np.arange(0, 30.0001, 0.15), 6)
    walls = {"tokenswarm": [], "authors": []}
    peaks = {"tokenswarm": [], "authors": []}
    half = {}
    with tempfile.TemporaryDirectory() as scratch:
        ours = [sys.executable, "-m", "tokenswarm", "run", "phase-diagram", "-p", f"d={d}", "-p", f"compare_d={d}",
                "-p", f"runs={runs}", "-p", f"beta={beta_text}", "-p", "t=0:30:0.15", "-p", f"scheme={scheme}",
                "-p", f"step={step}", "--dtype", "float64", "--json", "--out", os.path.join(scratch, "run")]
        for _ in range(repeats):
            for name, argv in (("authors", authors), ("tokenswarm", ours)):
                wall, peak, text = run_child(argv)
                walls[name].append(wall)
                peaks[name].append(peak)
                summary = json.loads(text.strip().splitlines()[-1])
                if name == "authors":
                    half[name] = [r["half_time"] for r in summary["results"]]
                else:
                    fraction = np.asarray(summary["metrics"]["fraction"])
                    half[name] = boundary_times(fraction, times).tolist()
    ratios = [a / b for a, b in zip(walls["authors"], walls["tokenswarm"])]
    return {
        "job": f"SA, n = 32, d = {d}, {runs} runs, beta = {beta_text}, t to 30, {scheme} step {step}, float64",
        "wall_seconds": {k: _summary(v) for k, v in walls.items()},
        "peak_memory_mb": {k: _summary(v) for k, v in peaks.items()},
        "speedup": _summary(ratios),
        "half_time": half,
        "repeats": repeats,
    }


def _time_ensemble(d: int, runs: int, betas, scheme: str, step: float, dtype=torch.float64) -> float:
    times = np.round(np.arange(0, 30.0001, 0.3), 6)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    clustered_fraction(32, d, np.asarray(betas, float), times, runs, scheme=scheme, step=step, model="sa",
                       generator=generator, dtype=dtype, device=torch.device("cpu"), progress=False)
    return time.perf_counter() - start


def bench_span_reduction(runs: int = 512, betas=(1.0, 4.0), repeats: int = 3) -> dict:
    """Cost of the n = 32 ensemble job at d = 128 over the same job at d = 32, per scheme
    (span reduction: both integrate r = 32 coordinates), alternated ``repeats`` times."""
    out = {}
    for scheme, step in (("authors", 0.1), ("accurate", 0.1)):
        ratios, small, large = [], [], []
        for _ in range(repeats):
            small.append(_time_ensemble(32, runs, betas, scheme, step))
            large.append(_time_ensemble(128, runs, betas, scheme, step))
            ratios.append(large[-1] / small[-1])
        out[scheme] = {"seconds_d32": _summary(small), "seconds_d128": _summary(large), "ratio": _summary(ratios)}
    return {"runs": runs, "betas": list(betas), "t": "0:30:0.3", "schemes": out}


def bench_float32(runs: int = 512, betas=(1.0, 4.0), repeats: int = 3) -> dict:
    """The d = 128 authors' job in float32 (statistics accumulated in float64) against float64."""
    ratios = []
    for _ in range(repeats):
        double = _time_ensemble(128, runs, betas, "authors", 0.1, torch.float64)
        single = _time_ensemble(128, runs, betas, "authors", 0.1, torch.float32)
        ratios.append(double / single)
    return {"runs": runs, "speedup_float32": _summary(ratios)}


def bench_two_token(runs: int = 4000, d: int = 6, beta: float = 2.0, steps: int = 500, t_max: float = 10.0,
                    repeats: int = 3) -> dict:
    """Runs per second of the two-token value-noise SDE (``integrate_sde`` with low-rank noise, as
    the ``two-token-sde`` experiment) against :func:`~tokenswarm.runtime.baselines.plain_value_noise_loop`."""
    from tokenswarm.noise import ValueNoise
    from tokenswarm.runtime.baselines import plain_value_noise_loop
    from tokenswarm.runtime.threads import torch_threads
    from tokenswarm.solve import EulerMaruyama
    from tokenswarm.solve.sde import integrate_sde
    from tokenswarm.sphere import sample_uniform

    ours, plain = [], []
    with torch_threads(1):
        for _ in range(repeats):
            generator = torch.Generator().manual_seed(0)
            x0 = sample_uniform(2, d, runs, generator=generator)
            noise = ValueNoise(beta=beta, sigma2=1.0 / d, low_rank=True)
            start = time.perf_counter()
            integrate_sde(None, noise, x0, t_max, steps, solver=EulerMaruyama(), generator=generator)
            ours.append(runs / (time.perf_counter() - start))
            start = time.perf_counter()
            plain_value_noise_loop(x0, beta, 1.0 / d, t_max, steps, generator)
            plain.append(runs / (time.perf_counter() - start))
    ratios = [a / b for a, b in zip(ours, plain)]
    return {"runs": runs, "d": d, "steps": steps, "runs_per_second": {"tokenswarm": _summary(ours), "plain": _summary(plain)},
            "ratio": _summary(ratios)}


def bench_random_mlp(runs: int = 12, n: int = 64, d: int = 64, width: int = 256, layers: int = 150, t_max: float = 5.0,
                     beta: float = 1.0, activation: str = "relu", bias: float = 0.1, attention: float = 1.0,
                     repeats: int = 3) -> dict:
    """Runs per second of the random-MLP Transformer ensemble of the ``synchronization`` experiment
    (one cell of its grid: ``energy_curve``, i.e. :class:`~tokenswarm.nets.RandomMLPTransformer`
    layer by layer with the energy ``E_beta`` read after every layer) against
    :func:`~tokenswarm.runtime.baselines.plain_random_mlp_loop`, alternated ``repeats`` times.

    Of the two random-MLP ensembles, ``synchronization``'s is the one whose per-run cost makes
    its experiment: the experiment is nothing but these ensembles (a few runs per cell over its
    (d, bias, activation, attention) grid, 150 layers of n = 64 tokens, width 256), each run
    costing O(L (n² d + n d m)) plus ``m d`` fresh Gaussians per layer, while ``depth-limit``'s
    random-MLP part (``integrate_sde`` with :class:`~tokenswarm.noise.FieldNoise`, a few
    hundred runs of n = 4, d = 4) costs little per run and is a small share of that experiment,
    whose time goes to its value-noise and width parts.

    Both sides start from the same tokens and draw the same weights from equal generators, so
    they compute the same energies up to rounding: ``max_energy_difference`` (last repetition)
    is the largest absolute difference, relative to ``e^beta``.
    """
    from tokenswarm.experiments.synchronization import Params, energy_curve
    from tokenswarm.runtime.baselines import plain_random_mlp_loop
    from tokenswarm.runtime.threads import torch_threads
    from tokenswarm.sphere import sample_uniform

    params = Params(n=n, width=width, beta=beta, runs=runs)
    ours, plain, difference = [], [], float("nan")
    with torch_threads(1):
        for _ in range(repeats):
            start = time.perf_counter()
            energies, _ = energy_curve(params, d, bias, activation, attention, layers, t_max, torch.Generator().manual_seed(0),
                                       torch.float64, torch.device("cpu"))
            ours.append(runs / (time.perf_counter() - start))
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            x0 = sample_uniform(n, d, runs, generator=generator)
            reference, _ = plain_random_mlp_loop(x0, layers, width, activation, beta, attention, bias, bias, t_max, generator)
            plain.append(runs / (time.perf_counter() - start))
            difference = float(np.max(np.abs(energies - reference.numpy()))) / math.exp(beta)
    ratios = [a / b for a, b in zip(ours, plain)]
    return {"experiment": "synchronization", "runs": runs, "n": n, "d": d, "width": width, "layers": layers, "t_max": t_max,
            "beta": beta, "activation": activation, "bias": bias, "attention": attention,
            "runs_per_second": {"tokenswarm": _summary(ours), "plain": _summary(plain)}, "ratio": _summary(ratios),
            "max_energy_difference": difference, "repeats": repeats}


# Sizes of the memory children (fixed, small: a child holds one ensemble for a few steps; the
# random-MLP layers have the experiment's step T / L = 5 / 150).
MEMORY_SIZES = {"two-token": {"d": 6, "beta": 2.0, "steps": 5, "t_max": 1.0},
                "random-mlp": {"n": 64, "d": 64, "width": 256, "layers": 2, "t_max": 5.0 * 2 / 150, "beta": 1.0,
                               "activation": "relu", "bias": 0.1, "attention": 1.0}}


def memory_job(ensemble: str, runs: int) -> dict:
    """One ensemble of ``runs`` runs at :data:`MEMORY_SIZES` (``"import"``: the imports only);
    returns the bytes per run of its state tensor (the tokens) and the seconds. The command
    (:func:`main`) runs it in one thread, as :func:`bench_two_token` and :func:`bench_random_mlp`."""
    from tokenswarm.experiments.synchronization import Params, energy_curve
    from tokenswarm.noise import ValueNoise
    from tokenswarm.solve import EulerMaruyama
    from tokenswarm.solve.sde import integrate_sde
    from tokenswarm.sphere import sample_uniform

    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    if ensemble == "import":
        state = 0
    elif ensemble == "two-token":
        size = MEMORY_SIZES[ensemble]
        x0 = sample_uniform(2, size["d"], runs, generator=generator)
        noise = ValueNoise(beta=size["beta"], sigma2=1.0 / size["d"], low_rank=True)
        integrate_sde(None, noise, x0, size["t_max"], size["steps"], solver=EulerMaruyama(), generator=generator)
        state = x0[0].numel() * x0.element_size()
    elif ensemble == "random-mlp":
        size = MEMORY_SIZES[ensemble]
        params = Params(n=size["n"], width=size["width"], beta=size["beta"], runs=runs)
        _, x = energy_curve(params, size["d"], size["bias"], size["activation"], size["attention"], size["layers"],
                            size["t_max"], generator, torch.float64, torch.device("cpu"))
        state = x[0].numel() * x.element_size()
    else:
        raise ValueError(f"unknown ensemble {ensemble!r}; valid: import, two-token, random-mlp")
    return {"ensemble": ensemble, "runs": runs, "state_bytes_per_run": state, "seconds": time.perf_counter() - start}


def fit_line(runs, memory) -> dict:
    """Least-squares ``memory = a + b runs``; ``max_relative_deviation``: max over the points of
    ``|memory - (a + b runs)| / memory``."""
    runs, memory = np.asarray(runs, float), np.asarray(memory, float)
    b, a = np.polyfit(runs, memory, 1)
    deviation = np.abs(memory - (a + b * runs)) / np.abs(memory)
    return {"intercept": float(a), "slope": float(b), "max_relative_deviation": float(deviation.max())}


def bench_memory_scaling(two_token_runs: int = 50000, mlp_runs: int = 16, factors: tuple[int, ...] = (1, 2, 4, 8)) -> dict:
    """Peak resident memory of a child process (:func:`run_child`) running the two-token SDE
    ensemble (as :func:`bench_two_token`, a few steps) and the ``synchronization`` random-MLP
    ensemble (as :func:`bench_random_mlp`, two layers) at ``runs * factor`` runs, less the peak
    of a child that only imports them; fitted by ``a + b runs`` (:func:`fit_line`).

    Per ensemble: the points, ``mib_per_1000_runs`` (``b``), ``intercept_mib`` (``a``), the largest
    relative deviation of a point from the line, and ``per_run_over_state``: the bytes the
    engine holds per run (``b``) over the bytes of one run's state tensor (the minimum).
    """
    command = [sys.executable, "-m", "tokenswarm.runtime.ensemble_perf", "memory"]
    _, baseline, _ = run_child([*command, "import"])
    out = {"baseline_mib": baseline, "factors": list(factors)}
    for ensemble, smallest in (("two-token", two_token_runs), ("random-mlp", mlp_runs)):
        points, state = [], 0
        for factor in factors:
            _, peak, text = run_child([*command, ensemble, "--runs", str(smallest * factor)])
            state = json.loads(text.strip().splitlines()[-1])["state_bytes_per_run"]
            points.append({"runs": smallest * factor, "peak_mib": peak, "above_baseline_mib": peak - baseline})
        fit = fit_line([p["runs"] for p in points], [p["above_baseline_mib"] for p in points])
        per_run = fit["slope"] * 2**20
        out[ensemble] = {"sizes": MEMORY_SIZES[ensemble], "points": points, "mib_per_1000_runs": 1000 * fit["slope"],
                         "intercept_mib": fit["intercept"], "max_relative_deviation": fit["max_relative_deviation"],
                         "state_bytes_per_run": state, "per_run_over_state": per_run / state}
    return out


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |\n"


def markdown(results: dict) -> str:
    """docs/benchmarks.md from the results of ``tokenswarm bench all``."""
    m = results["machine"]
    lines = [
        "# Benchmarks\n\n",
        "Written by `tokenswarm bench all -p out=docs/benchmarks.md` (min / median / max over the alternated\n",
        "repetitions; each ratio is taken against a baseline measured in the same call).\n\n",
        f"Machine: {m['cores']} cores, {m['cpu']}; torch {m['torch']} ({m['threads']} threads), Python {m['python']}.\n\n",
    ]
    gemm = results["gemm_gflops"]
    lines.append(f"Matrix product (2048 x 2048): {gemm['float64']:.0f} GFLOP/s float64, {gemm['float32']:.0f} GFLOP/s float32.\n\n")
    f = results["field"]
    lines.append("## Attention field, n = 4096, d = 64, float32\n\n")
    lines.append(f"{1e3 * f['seconds_per_eval']:.1f} ms per evaluation, {f['gflops']:.0f} GFLOP/s = {f['ratio_to_gemm']:.2f} of the "
                 f"same-call GEMM rate; {f['speedup_vs_dense'] or float('nan'):.1f}x the dense n x n baseline; "
                 f"peak {f['peak_memory_mb'] or float('nan'):.0f} MiB in a child process.\n\n")
    job = results["phase_job"]
    lines.append("## The Fig. 3 job against the authors' loop\n\n")
    lines.append(f"{job['job']}: the whole `tokenswarm run phase-diagram` command against the plain-torch reimplementation "
                 "of the authors' loop (`python -m tokenswarm.runtime.baselines`, full d-dimensional matrices), each a child "
                 f"process, alternated {job['repeats']} time(s).\n\n")
    lines.append(_row(["", "wall s (min / median / max)", "peak MiB (median)", "t where half the pairs clustered"]))
    lines.append(_row(["---"] * 4))
    for name in ("authors", "tokenswarm"):
        w = job["wall_seconds"][name]
        lines.append(_row([name, f"{w['min']:.1f} / {w['median']:.1f} / {w['max']:.1f}", f"{job['peak_memory_mb'][name]['median']:.0f}",
                           ", ".join(f"{t:.2f}" for t in job["half_time"][name])]))
    s = job["speedup"]
    lines.append(f"\nSpeed-up (authors / tokenswarm, pair by pair): {s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f}.\n\n")
    span = results["span_reduction"]
    lines.append(f"## Span reduction: cost of d = 128 over d = 32 (n = 32, {span['runs']} runs, beta {span['betas']}, t = {span['t']})\n\n")
    lines.append(_row(["scheme", "s at d = 32 (median)", "s at d = 128 (median)", "ratio (min / median / max)"]))
    lines.append(_row(["---"] * 4))
    for scheme, v in span["schemes"].items():
        r = v["ratio"]
        lines.append(_row([scheme, f"{v['seconds_d32']['median']:.2f}", f"{v['seconds_d128']['median']:.2f}",
                           f"{r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f}"]))
    f32 = results["float32"]["speedup_float32"]
    lines.append(f"\nfloat32 states (float64 statistics) against float64, same job at d = 128: {f32['median']:.2f}x "
                 f"(min {f32['min']:.2f}, max {f32['max']:.2f}).\n\n")
    tt = results["two_token"]
    lines.append(f"## Two-token SDE ensembles ({tt['runs']} runs, d = {tt['d']}, {tt['steps']} Euler–Maruyama steps)\n\n")
    rps = tt["runs_per_second"]
    lines.append(f"{rps['tokenswarm']['median']:.0f} runs/s (`integrate_sde`, low-rank value noise) against "
                 f"{rps['plain']['median']:.0f} runs/s for a plain loop with full d x d noise matrices: "
                 f"{tt['ratio']['median']:.2f}x (min {tt['ratio']['min']:.2f}, max {tt['ratio']['max']:.2f}).\n")
    if "random_mlp" in results:
        rm = results["random_mlp"]
        rps = rm["runs_per_second"]
        lines.append(f"\n## Random-MLP ensembles (synchronization: {rm['runs']} runs, n = {rm['n']}, d = {rm['d']}, "
                     f"width {rm['width']}, {rm['layers']} layers, {rm['activation']}, bias {rm['bias']:g}, "
                     f"attention {rm['attention']:+g})\n\n")
        lines.append(f"{rps['tokenswarm']['median']:.2f} runs/s for the experiment's own loop (`RandomMLPTransformer` layer by "
                     "layer, the energy E_beta from squared distances after every layer) against "
                     f"{rps['plain']['median']:.2f} runs/s for a plain loop with the same weights (dense attention, energy "
                     f"from the Gram matrix), alternated {rm['repeats']} time(s): {rm['ratio']['median']:.2f}x "
                     f"(min {rm['ratio']['min']:.2f}, max {rm['ratio']['max']:.2f}); largest energy difference "
                     f"{rm['max_energy_difference']:.1e} e^beta.\n")
    if "memory" in results:
        mem = results["memory"]
        lines.append("\n## Memory linear in runs\n\n")
        lines.append(f"Peak resident memory of a child process running one ensemble at {', '.join(f'{k}x' for k in mem['factors'])} "
                     f"its smallest run count, less that of a child that only imports it ({mem['baseline_mib']:.0f} MiB), "
                     "fitted by a + b runs; the last column is b over the bytes of one run's tokens (the least a run "
                     "needs).\n\n")
        lines.append(_row(["ensemble", "runs", "MiB above imports", "b (MiB / 1000 runs)", "a (MiB)",
                           "max deviation from the line", "b / state bytes"]))
        lines.append(_row(["---"] * 7))
        for name in ("two-token", "random-mlp"):
            e = mem[name]
            lines.append(_row([name, ", ".join(str(p["runs"]) for p in e["points"]),
                               ", ".join(f"{p['above_baseline_mib']:.0f}" for p in e["points"]),
                               f"{e['mib_per_1000_runs']:.3g}", f"{e['intercept_mib']:.0f}",
                               f"{100 * e['max_relative_deviation']:.1f}%", f"{e['per_run_over_state']:.0f}"]))
    return "".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a memory child of tokenswarm bench all")
    commands = parser.add_subparsers(dest="command", required=True)
    memory = commands.add_parser("memory", help="run one ensemble and print one JSON line")
    memory.add_argument("ensemble", choices=["import", "two-token", "random-mlp"])
    memory.add_argument("--runs", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps(memory_job(args.ensemble, args.runs)), flush=True)


if __name__ == "__main__":
    main()
