"""Does suppressing the value-matrix initialisation noise degrade accuracy? (2601.21942)

The abstract of 2601.21942 states that "suppressing the intrinsic noise degrades accuracy";
its protocol is not available to us (docs/theory/common_noise.md §4.2), so this experiment is **our protocol**,
built to be fair and able to fail.

Model (:class:`tokenswarm.nets.trainable.TrainableTransformer`): the papers' form, trained.
Tokens are embedded to ``d = 32`` (learned linear embedding + learned positions), then
``L = 32`` post-norm layers ``x <- RMSNorm(x + (1/L)^{1/2} Attn(x))`` (diffusion scaling, one
head, trainable ``Q, K, V`` per layer, RMSNorm without gain: tokens on the radius-``sqrt(d)``
sphere, logits ``<Qx_i, Kx_j>/sqrt(d)``, i.e. unit-sphere ``beta = sqrt(d)``); no MLP
(``mlp_width = 0``); mean pool over tokens and a linear classifier.

Variants differ **only in the initial value matrices**; the parametrisation, the residual
factor ``(1/L)^{1/2}``, the optimiser and everything else are identical, and ``V`` is trained
in all of them (freezing ``V = 0`` would remove attention altogether, not its noise):

* ``random``: ``V_k`` i.i.d. ``N(0, sigma_v2)``, ``sigma_v2 = 1/d`` (standard init, the noise
  of 2601.21942);
* ``suppressed``: ``V_k = 0``, the mean of that law (reading "V_k -> mean", equivalently the
  limit ``sigma_v2 -> 0``); at initialisation the network is embedding + norm + readout;
* ``scaled`` (optional): ``V_k ~ N(0, sigma_v2 / L)``, the same draws divided by ``sqrt(L)``:
  the value noise left by ``1/L`` (ODE) instead of ``(1/L)^{1/2}`` scaling (reading "1/L
  scaling"; the trained parametrisation is kept, so the optimiser sees the same problem);
* ``identity`` (optional): ``V_k = (1/L)^{1/2} I`` (``(1/L)^{1-a} I`` for a residual exponent
  ``a``), so each layer starts as the Euler step
  ``x <- N(x + (1/L) Attn_{V=I}(x))`` of the deterministic clustering model of 2312.10794
  (reading "noise replaced by a deterministic value map").

Tasks (tokens = sequences of ``n = 16``):

* ``digits``: scikit-learn's bundled 8×8 digits (1797 images, no download), pixels / 16,
  tokens = the 16 patches of 2×2 pixels (4 features each), 10 classes; a stratified 70/30
  train/test split drawn per seed. Logistic regression on the 64 pixels already reaches
  0.965 on such splits, so attention is helpful but not necessary here.
* ``match``: generated sequences of ``n = 16`` symbols from a vocabulary of 4 (one-hot
  tokens); label = "the first symbol occurs again later". The first symbol is uniform, the
  other 15 are uniform over the 3 other symbols, and for label 1 (probability 1/2) one
  uniformly chosen later position is overwritten by the first symbol. Mean pooling of
  token-wise features is additive over tokens while the label is an interaction between the
  first token and the rest, so attention is necessary: with ``V`` frozen at 0 (no attention)
  the same network stays at chance (0.46-0.54 test accuracy over 15 epochs, checked once).
  1500 training and 1000 test sequences per seed. With the defaults every variant reaches
  ~99% within the budget, so the final accuracy compares converged models; how fast they
  get there is in the curves and in the ``speed`` metrics.

Training: Adam (lr ``3e-3``, default betas, no weight decay), batch 32, ``epochs = 8``, cross-
entropy, float32 whatever ``--dtype`` says (training in float64 would change nothing but the
cost). These values were chosen, the same for all variants, so that both tasks reach their
plateau (digits ~0.96, match ~0.99) within a 2-core CPU budget (default run 70-125 s of wall
time measured on a shared 2-core machine; ``--quick`` about 5 s); no variant was tuned. Note
that ``V = 0`` is the "zero-initialised residual branch" (ReZero/Fixup-like) that is often
*easier* to optimise in deep residual networks; with Adam its ``V`` leaves 0 at the first step
(``|ΔV| ≈ lr``).

Paired design: for each seed both variants get the same data (split or
generated sequences), the same minibatch order and the same initial embedding, positions,
``Q, K`` and readout; the random ``V`` come from a separate stream. All models of a task
(seeds × variants) are trained side by side as one batched model (their losses summed, so
each model gets exactly its own gradient and Adam update). The fixed budget is the protocol:
the accuracy compared is the test accuracy after the last epoch; the test accuracy after
every epoch is kept (``data``) and plotted, so the reader sees whether a difference is one of
speed or of final level.

Sensitivity (seed 0, CPU, default sizes, measured once): the outcome depends on the optimiser
budget. With the default lr ``3e-3`` neither task shows a significant final-accuracy
difference (suppressed is slightly better on match), while random ``V`` learns digits faster
(``speed`` interval above 0). With lr ``1e-3`` (models less converged after 8 epochs) random
``V`` is significantly better on digits (+0.014, CI [+0.008, +0.020]) and significantly worse
on match (-0.004, CI [-0.007, -0.001]). Rerun with ``-p learning_rate=...``/``-p epochs=...``
before reading much into either direction.

Claim, per task and per non-random variant: "the variant has lower test accuracy than the
random-init model": the paired differences ``random - variant`` over seeds give a mean and a
95% Student t-interval (``seeds - 1`` degrees of freedom); the claim passes iff the whole
interval lies above 0. It fails both when the variant is as good (interval straddles 0) and
when it is better (interval below 0); the metrics say which.

Metrics (``<task>_`` prefixed): ``accuracy_<variant>`` (mean test accuracy),
``accuracies_<variant>`` (per seed), ``difference_<variant>`` (mean of random - variant),
``ci_low_<variant>``, ``ci_high_<variant>``, ``p_value_<variant>`` (two-sided paired t-test),
``differences_<variant>`` (per seed), ``initial_accuracy_<variant>``,
``initial_loss_<variant>`` (untrained, test set), ``train_loss_<variant>`` and
``train_accuracy_<variant>`` (trained, full pass over the training set),
``test_loss_<variant>``, ``seconds`` (training + evaluation of all models of the task) and
``seconds_per_run`` (that divided by seeds × variants). Descriptive, no claim:
``speed_accuracy_<variant>`` (test accuracy averaged over the checkpoints after epochs
1..E, an area under the learning curve) and ``speed_difference/speed_ci_low/speed_ci_high
_<variant>`` (paired, random - variant).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from matplotlib.ticker import MaxNLocator
from scipy import stats

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.nets.trainable import TrainableTransformer
from tokenswarm.plots._common import new_figure, settle, style
from tokenswarm.progress import progress_bar
from tokenswarm.results import Result, check

Variant = Literal["random", "suppressed", "scaled", "identity"]
Task = Literal["digits", "match"]

#: variant -> ``TrainableTransformer.initialise(value=...)``
VALUE_INIT = {"random": "random", "suppressed": "zero", "scaled": "scaled", "identity": "identity"}
READING = {
    "suppressed": "V_k at its mean 0 (sigma_v2 -> 0)",
    "scaled": "value noise of 1/L scaling (sigma_v2 / L)",
    "identity": "deterministic value map V_k = I/sqrt(L)",
}
#: fixed stream blocks, so a task's numbers do not depend on which other tasks run
TASK_STREAM = {"digits": 1, "match": 2}
REFERENCE = "2601.21942 abstract (accuracy claim; protocol ours)"


@dataclass
class Params:
    tasks: list[Task] = field(default_factory=lambda: ["digits", "match"], metadata={"help": "data sets (module docs)"})
    variants: list[Variant] = field(default_factory=lambda: ["random", "suppressed"], metadata={"help": "value initialisations; 'random' is the reference and is always run"})
    seeds: int = field(default=5, metadata={"min": 2, "help": "paired repetitions (data split, init, minibatch order)"})
    d: int = field(default=32, metadata={"min": 2, "help": "token dimension"})
    layers: int = field(default=32, metadata={"min": 1, "help": "depth L (residual factor (1/L)^a)"})
    residual_exponent: float = field(default=0.5, metadata={"min_exclusive": 0, "help": "a: 0.5 diffusion scaling, 1 ODE scaling"})
    sigma_v2: float | None = field(default=None, metadata={"min": 0, "help": "variance of the random V entries (none: 1/d)"})
    mlp_width: int = field(default=0, metadata={"min": 0, "help": "token-wise MLP hidden width (0: no MLP)"})
    epochs: int = field(default=8, metadata={"min": 1, "help": "training epochs (same for every variant)"})
    batch_size: int = field(default=32, metadata={"min": 1, "help": "minibatch size"})
    learning_rate: float = field(default=3e-3, metadata={"min_exclusive": 0, "help": "Adam learning rate"})
    test_fraction: float = field(default=0.3, metadata={"min_exclusive": 0, "max_exclusive": 1, "help": "digits: held-out fraction (stratified)"})
    match_length: int = field(default=16, metadata={"min": 3, "help": "match: tokens per sequence"})
    match_vocabulary: int = field(default=4, metadata={"min": 3, "help": "match: number of symbols"})
    match_train: int = field(default=1500, metadata={"min": 2, "help": "match: training sequences per seed"})
    match_test: int = field(default=1000, metadata={"min": 2, "help": "match: test sequences per seed"})

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("tasks must name at least one task")
        if len(set(self.tasks)) != len(self.tasks) or len(set(self.variants)) != len(self.variants):
            raise ValueError("tasks and variants must not repeat")
        if self.variants[:1] != ["random"]:
            rest = [v for v in self.variants if v != "random"]
            self.variants = ["random", *rest]
        if len(self.variants) < 2:
            raise ValueError("variants must include at least one variant besides 'random'")


# ----------------------------------------------------------------------------------------
# Data: (inputs (seeds, N, n, p) float32, labels (seeds, N) long) for train and test
# ----------------------------------------------------------------------------------------
def digits_data(p: Params, seed_states: list[int]):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    count = images.shape[0]
    # (N, 8, 8) -> (N, 4 patch rows, 4 patch columns, 2, 2) -> 16 tokens of 4 pixels, row-major
    patches = images.reshape(count, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(count, 16, 4)
    splits = [train_test_split(np.arange(count), test_size=p.test_fraction, stratify=digits.target,
                               random_state=state % 2**32) for state in seed_states]

    def stack(which: int):
        inputs = torch.from_numpy(np.stack([patches[split[which]] for split in splits]))
        labels = torch.from_numpy(np.stack([digits.target[split[which]] for split in splits])).long()
        return inputs, labels

    return stack(0), stack(1), 10


def match_sequences(count: int, length: int, vocabulary: int, generator: torch.Generator):
    """``count`` sequences: (one-hot inputs ``(count, length, vocabulary)``, labels ``(count,)``)."""
    first = torch.randint(vocabulary, (count,), generator=generator)
    others = torch.randint(vocabulary - 1, (count, length - 1), generator=generator)
    others = others + (others >= first[:, None]).long()  # uniform over the symbols != first
    labels = torch.randint(2, (count,), generator=generator)
    where = torch.randint(length - 1, (count,), generator=generator)
    rows = torch.nonzero(labels == 1).squeeze(-1)
    others[rows, where[rows]] = first[rows]
    symbols = torch.cat([first[:, None], others], dim=1)
    return F.one_hot(symbols, vocabulary).float(), labels


def match_data(p: Params, seed_states: list[int]):
    train, test = [], []
    for state in seed_states:
        generator = torch.Generator().manual_seed(state)
        train.append(match_sequences(p.match_train, p.match_length, p.match_vocabulary, generator))
        test.append(match_sequences(p.match_test, p.match_length, p.match_vocabulary, generator))

    def stack(parts):
        return torch.stack([a for a, _ in parts]), torch.stack([b for _, b in parts])

    return stack(train), stack(test), 2


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------
def build_models(p: Params, inputs_shape, classes: int, weight_states: list[int], value_states: list[int],
                 device) -> TrainableTransformer:
    """One batched model ``(seeds, variants)``; per seed, all variants share every weight but V."""
    seeds, variants = len(weight_states), len(p.variants)
    tokens, features = inputs_shape[-2], inputs_shape[-1]
    options = dict(d=p.d, layers=p.layers, residual_exponent=p.residual_exponent, mlp_width=p.mlp_width)
    model = TrainableTransformer(features, tokens, classes, batch_shape=(seeds, variants), **options)
    with torch.no_grad():
        for s in range(seeds):
            single = TrainableTransformer(features, tokens, classes, **options)
            single.initialise(torch.Generator().manual_seed(weight_states[s]), value="zero")
            for (name, batched), (_, one) in zip(model.named_parameters(), single.named_parameters(), strict=True):
                batched[s] = one
            for v, variant in enumerate(p.variants):
                # Same stream for every variant: "scaled" is the "random" draw / sqrt(L).
                model.set_value(VALUE_INIT[variant], sigma_v2=p.sigma_v2,
                                generator=torch.Generator().manual_seed(value_states[s]), index=(s, v))
    return model.to(device)


def _losses(model, inputs, labels, chunk: int = 1024):
    """Per-model mean cross-entropy and accuracy ``(seeds, variants)`` over a whole set."""
    seeds, variants = model.batch_shape
    total_loss = torch.zeros(seeds, variants, device=labels.device)
    correct = torch.zeros(seeds, variants, device=labels.device)
    count = labels.shape[1]
    with torch.no_grad():
        for start in range(0, count, chunk):
            x, y = inputs[:, None, start:start + chunk], labels[:, None, start:start + chunk]
            logits = model(x)
            y = y.expand(*logits.shape[:-1])
            loss = F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none").view(y.shape)
            total_loss += loss.sum(-1)
            correct += (logits.argmax(-1) == y).float().sum(-1)
    return total_loss / count, correct / count


def train(p: Params, model, train_set, test_set, order_states: list[int], description: str):
    """Adam on all models at once; returns per-epoch curves ``(seeds, variants, epochs[+1])``."""
    inputs, labels = train_set
    seeds, variants = model.batch_shape
    count = labels.shape[1]
    optimiser = torch.optim.Adam(model.parameters(), lr=p.learning_rate)
    orders = [torch.Generator().manual_seed(state) for state in order_states]
    test_loss, test_accuracy = _losses(model, *test_set)
    curves = {"train_loss": [], "test_loss": [test_loss], "test_accuracy": [test_accuracy]}
    batches = math.ceil(count / p.batch_size)
    with progress_bar(p.epochs * batches, description) as bar:
        for _ in range(p.epochs):
            permutation = torch.stack([torch.randperm(count, generator=g) for g in orders]).to(labels.device)
            running = torch.zeros(seeds, variants, device=labels.device)
            for start in range(0, count, p.batch_size):
                index = permutation[:, start:start + p.batch_size]
                x = torch.gather(inputs, 1, index[..., None, None].expand(-1, -1, *inputs.shape[2:]))
                y = torch.gather(labels, 1, index)
                logits = model(x[:, None])
                y = y[:, None].expand(*logits.shape[:-1])
                loss = F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none").view(y.shape).mean(-1)
                optimiser.zero_grad(set_to_none=True)
                loss.sum().backward()  # a sum: each model receives exactly its own gradient
                optimiser.step()
                running += loss.detach() * index.shape[1]
                bar.advance()
            if not bool(torch.isfinite(running).all()):
                raise FloatingPointError(f"{description}: non-finite training loss")
            curves["train_loss"].append(running / count)
            test_loss, test_accuracy = _losses(model, *test_set)
            curves["test_loss"].append(test_loss)
            curves["test_accuracy"].append(test_accuracy)
    final_train_loss, final_train_accuracy = _losses(model, *train_set)
    out = {name: torch.stack(values, dim=-1).cpu().numpy() for name, values in curves.items()}
    out["final_train_loss"] = final_train_loss.cpu().numpy()
    out["final_train_accuracy"] = final_train_accuracy.cpu().numpy()
    return out


def paired_interval(differences: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, t-interval bounds and two-sided p-value of paired differences ``(seeds,)``."""
    k = differences.size
    mean = float(differences.mean())
    spread = float(differences.std(ddof=1)) / math.sqrt(k)
    if spread == 0.0:
        # every seed gave the same difference: the interval is that point
        p_value = 1.0 if mean == 0.0 else 0.0
        return mean, mean, mean, p_value
    half = float(stats.t.ppf(0.5 + level / 2, k - 1)) * spread
    p_value = float(2 * stats.t.sf(abs(mean) / spread, k - 1))
    return mean, mean - half, mean + half, p_value


# ----------------------------------------------------------------------------------------
# Figure
# ----------------------------------------------------------------------------------------
def task_figure(task: str, variants: list[str], curves: dict, final: np.ndarray):
    """Paired test accuracies per seed, training loss and test accuracy per epoch."""
    seeds = final.shape[0]
    with style():
        fig = new_figure((11.5, 3.4))
        paired, loss_axes, accuracy_axes = fig.subplots(1, 3)
        positions = np.arange(len(variants))
        for s in range(seeds):
            paired.plot(positions, final[s], color="0.6", linewidth=0.9, marker="o", markersize=3.5, zorder=1)
        paired.plot(positions, final.mean(0), color="black", marker="D", linestyle="none", markersize=6,
                    label="mean", zorder=2)
        paired.set_xticks(positions, variants)
        paired.set_xlim(-0.4, len(variants) - 0.6)
        paired.set_ylabel("test accuracy (final epoch)")
        paired.set_title(f"{task}: paired seeds ({seeds})")
        paired.legend(loc="best")
        epochs = curves["train_loss"].shape[-1]
        for v, variant in enumerate(variants):
            colour = f"C{v}"
            train_loss = curves["train_loss"][:, v]
            loss_axes.plot(np.arange(1, epochs + 1), train_loss.mean(0), color=colour, label=variant)
            loss_axes.fill_between(np.arange(1, epochs + 1), train_loss.min(0), train_loss.max(0), color=colour,
                                   alpha=0.2, linewidth=0)
            accuracy = curves["test_accuracy"][:, v]
            accuracy_axes.plot(np.arange(epochs + 1), accuracy.mean(0), color=colour, label=variant)
            accuracy_axes.fill_between(np.arange(epochs + 1), accuracy.min(0), accuracy.max(0), color=colour,
                                       alpha=0.2, linewidth=0)
        loss_axes.set_yscale("log")
        loss_axes.set_xlabel("epoch")
        loss_axes.set_ylabel("training loss (epoch mean)")
        loss_axes.set_title("mean over seeds, band: min-max")
        loss_axes.legend()
        accuracy_axes.set_xlabel("epoch (0: initialisation)")
        accuracy_axes.set_ylabel("test accuracy")
        accuracy_axes.legend()
        for axes in (loss_axes, accuracy_axes):
            axes.grid(True)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return settle(fig)


# ----------------------------------------------------------------------------------------
# Experiment
# ----------------------------------------------------------------------------------------
@register(
    "noise-accuracy",
    title="Suppressing the value-matrix initialisation noise vs test accuracy (trained deep Transformer)",
    reference=REFERENCE,
    params=Params,
    quick={"seeds": 3, "layers": 8, "epochs": 2, "match_train": 600, "match_test": 400},
)
def run(p: Params, ctx: RunContext) -> Result:
    device = ctx.device  # float32 always: see the module docstring
    variants = list(p.variants)
    metrics: dict = {}
    claims = []
    figures = {}
    arrays: dict[str, list] = {}
    for task in p.tasks:
        block = 1000 * TASK_STREAM[task]
        states = {purpose: [ctx.stream_seed(block + 10 * s + offset) for s in range(p.seeds)]
                  for purpose, offset in (("data", 0), ("weights", 1), ("values", 2), ("order", 3))}
        loader = digits_data if task == "digits" else match_data
        train_set, test_set, classes = loader(p, states["data"])
        train_set = tuple(t.to(device) for t in train_set)
        test_set = tuple(t.to(device) for t in test_set)
        start = time.perf_counter()
        model = build_models(p, train_set[0].shape, classes, states["weights"], states["values"], device)
        curves = train(p, model, train_set, test_set, states["order"], f"noise-accuracy {task}")
        seconds = time.perf_counter() - start

        final = curves["test_accuracy"][..., -1]  # (seeds, variants)
        prefix = f"{task}_"
        metrics[prefix + "seconds"] = seconds
        metrics[prefix + "seconds_per_run"] = seconds / (p.seeds * len(variants))
        metrics[prefix + "train_size"] = int(train_set[1].shape[1])
        metrics[prefix + "test_size"] = int(test_set[1].shape[1])
        for v, variant in enumerate(variants):
            metrics[f"{prefix}accuracy_{variant}"] = float(final[:, v].mean())
            metrics[f"{prefix}accuracies_{variant}"] = final[:, v].tolist()
            metrics[f"{prefix}initial_accuracy_{variant}"] = float(curves["test_accuracy"][:, v, 0].mean())
            metrics[f"{prefix}initial_loss_{variant}"] = float(curves["test_loss"][:, v, 0].mean())
            metrics[f"{prefix}train_loss_{variant}"] = float(curves["final_train_loss"][:, v].mean())
            metrics[f"{prefix}train_accuracy_{variant}"] = float(curves["final_train_accuracy"][:, v].mean())
            metrics[f"{prefix}test_loss_{variant}"] = float(curves["test_loss"][:, v, -1].mean())
            metrics[f"{prefix}speed_accuracy_{variant}"] = float(curves["test_accuracy"][:, v, 1:].mean())
        for v, variant in enumerate(variants[1:], start=1):
            differences = final[:, 0] - final[:, v]
            mean, low, high, p_value = paired_interval(differences)
            metrics[f"{prefix}difference_{variant}"] = mean
            metrics[f"{prefix}ci_low_{variant}"] = low
            metrics[f"{prefix}ci_high_{variant}"] = high
            metrics[f"{prefix}p_value_{variant}"] = p_value
            metrics[f"{prefix}differences_{variant}"] = differences.tolist()
            speed = curves["test_accuracy"][..., 1:].mean(-1)
            speed_mean, speed_low, speed_high, _ = paired_interval(speed[:, 0] - speed[:, v])
            metrics[f"{prefix}speed_difference_{variant}"] = speed_mean
            metrics[f"{prefix}speed_ci_low_{variant}"] = speed_low
            metrics[f"{prefix}speed_ci_high_{variant}"] = speed_high
            verdict = ("random better" if low > 0 else f"{variant} better" if high < 0 else "no significant difference")
            claims.append(check(
                f"{task}: {variant} init ({READING[variant]}) less accurate than random V init",
                REFERENCE + ("" if variant == "suppressed" else f"; reading: {READING[variant]}"),
                mean, "95% t-interval of paired (random - variant) test accuracy entirely > 0", low > 0,
                detail=(f"{p.seeds} paired seeds, mean difference {mean:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}], "
                        f"p = {p_value:.3g} ({verdict}); accuracy random {final[:, 0].mean():.4f} vs {variant} "
                        f"{final[:, v].mean():.4f} after {p.epochs} epochs; L = {p.layers}, d = {p.d}"
                        + (" (quick sizes: indicative only)" if ctx.quick else "")),
            ))
        figures[f"accuracy_{task}"] = task_figure(task, variants, curves, final)
        for name in ("train_loss", "test_accuracy", "test_loss"):
            arrays.setdefault(name, []).append(curves[name])
        for name in ("final_train_loss", "final_train_accuracy"):
            arrays.setdefault(name, []).append(curves[name])
    data = xr.Dataset(
        {
            "train_loss": (("task", "seed", "variant", "epoch"), np.stack(arrays["train_loss"])),
            "test_accuracy": (("task", "seed", "variant", "checkpoint"), np.stack(arrays["test_accuracy"])),
            "test_loss": (("task", "seed", "variant", "checkpoint"), np.stack(arrays["test_loss"])),
            "final_train_loss": (("task", "seed", "variant"), np.stack(arrays["final_train_loss"])),
            "final_train_accuracy": (("task", "seed", "variant"), np.stack(arrays["final_train_accuracy"])),
        },
        coords={"task": list(p.tasks), "variant": variants, "seed": np.arange(p.seeds),
                "epoch": np.arange(1, p.epochs + 1), "checkpoint": np.arange(p.epochs + 1)},
        attrs={"checkpoint": "0 = initialisation, k = after epoch k", "dtype": "float32"},
    )
    return Result(
        experiment="noise-accuracy",
        params={"training_dtype": "float32", "sigma_v2_used": p.sigma_v2 if p.sigma_v2 is not None else 1.0 / p.d},
        metrics=metrics, claims=claims, data=data, figures=figures,
    )
