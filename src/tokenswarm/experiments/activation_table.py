"""The table of 2604.26898 §1.4-1.5: ``K(1), K'(1), λ₁, λ̄`` per activation, d and bias (docs/theory/random_mlp.md §5.2).

Pure quadrature (:mod:`tokenswarm.theory.random_mlp`), no simulation: for every activation, dimension
``d`` and bias ``σ_U = σ_W = bias`` the row holds ``K1 = κ(1)``, ``K1' = κ'(1)``, the top Lyapunov
exponent ``λ₁ = ((d-3)/2)K1' - ((d-1)/2)K1`` of the pure-noise flow, ``λ̄ = (d-1)K1' - (d-3)K1``,
the guaranteed energy-decay rate ``λ̄'(β) = -inf F`` of Thm 1.4 (ε = 0, attractive attention),
``coercive = λ̄' < 0`` and ``S1 = λ̄ < 0`` with a field that is not a.s. odd.

Metrics layout: ``metrics["table"]`` is a list of rows (activation-major, then d, then bias)
``{activation, d, bias, K1, K1_prime, lambda_1, lambda_bar, lambda_bar_prime, u_star,
coercive, S1, in_paper, paper_lambda_bar_negative}`` (``u_star``: where the infimum of F is
reached on the grid of ``RandomMLPKernel.energy_decay_bound``, 1.0 for the limit ``F(1⁻) = -λ̄``; rows with
``u_star = 1`` have ``λ̄' = λ̄``, which is checked numerically on that grid (1001 uniform points plus
31 near u = 1, Brent-refined), not proved; ``paper_lambda_bar_negative``: the paper's sign of
λ̄ for the cell, ``None`` outside the paper's grid). The top-level ``K1, K1_prime, lambda_1,
lambda_bar, lambda_bar_prime, coercive`` are those of the first grid point. The same numbers
are in ``data`` with dims ``(activation, d, bias)``. GELU is not in the paper: reported, never
claimed.

Claims: the ReLU closed forms equal the (kink-split, exact) quadrature; Prop. 1.5 equals the
definitions; λ₁ < 0 in every cell of the paper's activations; the sign of λ̄ matches the paper's
table in every cell that the paper has (mismatches listed in the detail); and λ̄' < 0 wherever S1
holds (Thm 1.4 with ε = 0). Derivations: docs/random_mlp.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tokenswarm.experiments.registry import RunContext, register
from tokenswarm.io.claims import ClaimSet, RunSettings, Verdict, less, verdict
from tokenswarm.io.refs import Ref
from tokenswarm.io.results import Result
from tokenswarm.plots._common import new_figure, settle, style
from tokenswarm.theory.random_mlp import RandomMLPKernel, relu_proposition_1_5

REFERENCE = "2604.26898 §1.4-1.5 (Prop. 1.5, table of K(1), K'(1), λ₁, λ̄)"
REF = Ref("2604.26898", "§1.4-1.5 (Prop. 1.5, table of K(1), K'(1), λ₁, λ̄)")
PAPER_ACTIVATIONS = ("relu", "silu", "sigmoid", "tanh")
PAPER_D = (5, 64, 128)
PAPER_BIAS = (0.0, 0.1)


@dataclass
class Params:
    activation: list[Literal["relu", "silu", "sigmoid", "tanh", "gelu"]] = field(
        default_factory=lambda: ["relu", "silu", "sigmoid", "tanh", "gelu"], metadata={"help": "activations σ (gelu: exact erf form, not in the paper)"}
    )
    d: list[int] = field(default_factory=lambda: [5, 64, 128], metadata={"min": 2, "help": "dimensions"})
    bias: list[float] = field(default_factory=lambda: [0.0, 0.1], metadata={"min": 0, "max": 10, "help": "bias standard deviation, σ_U = σ_W = bias (the quadratures resolve up to 10)"})
    beta: float = field(default=1.0, metadata={"min_exclusive": 0, "help": "inverse temperature of E_β for λ̄'(β)"})

    def __post_init__(self):
        for name in ("activation", "d", "bias"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must not repeat values, got {values!r}")


def paper_sign(activation: str, d: int, bias: float) -> bool | None:
    """The paper's sign of λ̄ (True: negative) where its table has the cell, else None (docs/theory/random_mlp.md §5.2)."""
    if activation not in PAPER_ACTIVATIONS or d not in PAPER_D or not any(math.isclose(bias, b, abs_tol=1e-12) for b in PAPER_BIAS):
        return None
    return activation == "sigmoid" or (math.isclose(bias, 0.1) and d in (64, 128))


def relu_closed_form_error(d_values: list[int], biases: list[float]) -> float:
    """Max |closed form - quadrature| of ReLU's κ, κ' (2-D polar rule) and K1, K1' (1-D) over the grid."""
    near = np.logspace(-1, -12, 12)
    u = np.concatenate([np.linspace(-1.0, 1.0, 201), 1.0 - near, -1.0 + near])
    errors = []
    for d in d_values:
        for bias in biases:
            quadrature = RandomMLPKernel("relu", d, bias, bias, method="quadrature")
            closed = RandomMLPKernel("relu", d, bias, bias, method="closed")
            errors += [np.max(np.abs(quadrature.kappa(u) - closed.kappa(u))),
                       np.max(np.abs(quadrature.kappa_prime(u) - closed.kappa_prime(u))),
                       abs(quadrature.K1 - closed.K1), abs(quadrature.K1_prime - closed.K1_prime)]
    return float(max(errors))


def proposition_1_5_error(d_values: list[int], biases: list[float]) -> float:
    """Max |definition (quadrature K1, K1') - Prop. 1.5 formula| / max(1, |formula|) of ReLU's λ₁, λ̄ over the grid."""
    errors = []
    for d in d_values:
        for bias in biases:
            lyapunov, bar = relu_proposition_1_5(d, bias, bias)
            quadrature = RandomMLPKernel("relu", d, bias, bias, method="quadrature")
            errors.append(abs(quadrature.lambda_1 - lyapunov) / max(1.0, abs(lyapunov)))
            errors.append(abs(quadrature.lambda_bar - bar) / max(1.0, abs(bar)))
    return float(max(errors))


def compute_rows(p: Params) -> list[dict]:
    rows = []
    for activation in p.activation:
        for d in p.d:
            for bias in p.bias:
                kernel = RandomMLPKernel(activation, d, bias, bias)
                c = kernel.constants(p.beta)
                rows.append({
                    "activation": activation, "d": d, "bias": bias,
                    "K1": c.K1, "K1_prime": c.K1_prime, "lambda_1": c.lambda_1, "lambda_bar": c.lambda_bar,
                    "lambda_bar_prime": c.lambda_bar_prime, "u_star": c.u_star,
                    "coercive": c.coercive, "S1": c.S1,
                    "criterion": kernel.activation_criterion,
                    "in_paper": activation in PAPER_ACTIVATIONS,
                    "paper_lambda_bar_negative": paper_sign(activation, d, bias),
                })
    return rows


def _cell(row: dict) -> str:
    return f"{row['activation']}, d={row['d']}, bias={row['bias']:g}"


def _rows(data: xr.Dataset) -> list[dict]:
    """The table's cells from the dataset, in the order of :func:`compute_rows` (activation, d, bias)."""
    rows = []
    for activation in data.activation.values:
        for d in data.d.values:
            for bias in data.bias.values:
                cell = data.sel(activation=activation, d=d, bias=bias)
                paper = float(cell.paper_lambda_bar_negative)
                rows.append({
                    "activation": str(activation), "d": int(d), "bias": float(bias),
                    "lambda_1": float(cell.lambda_1), "lambda_bar": float(cell.lambda_bar),
                    "lambda_bar_prime": float(cell.lambda_bar_prime), "S1": bool(cell.S1),
                    "in_paper": str(activation) in PAPER_ACTIVATIONS,
                    "paper_lambda_bar_negative": None if math.isnan(paper) else paper == 1.0,
                })
    return rows


def lambda_bar_mismatches(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(cells the paper's table has, those where the sign of λ̄ differs from the paper)."""
    compared = [row for row in rows if row["paper_lambda_bar_negative"] is not None]
    return compared, [row for row in compared if (row["lambda_bar"] < 0) != row["paper_lambda_bar_negative"]]


def _unbiased(data: xr.Dataset) -> xr.Dataset:
    """Negative control: a bias that is never applied, every cell holding the bias-0 value of λ̄."""
    unbiased = data.lambda_bar.isel(bias=0, drop=True).broadcast_like(data.lambda_bar)
    return data.assign(lambda_bar=unbiased.transpose(*data.lambda_bar.dims))


CLAIMS = ClaimSet()


@CLAIMS.rule("ReLU closed forms of κ, κ', K(1), K'(1) match quadrature", Ref(REF.paper, REF.where + "; docs/theory/random_mlp.md §2.3"),
             control=lambda data: data.assign(relu_max_error=data.relu_max_error + 1e-8))  # a constant rounded to 8 digits
def _relu_closed_forms(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return less(float(data.relu_max_error), 1e-9,
                detail=f"max abs error over d = {p.d}, bias = {p.bias}, u on [-1, 1] incl. 1 - u, 1 + u down to 1e-12; "
                       "κ, κ' by polar quadrature split at the kinks, K(1), K'(1) by half-line Gauss-Laguerre")


@CLAIMS.rule("Prop. 1.5: λ₁ = -1/(2d) - (σ_U²+2σ_W²)(d-1)/4, λ̄ = 1/d - (σ_U²+2σ_W²)(d-3)/2 (ReLU)", REF,
             control=lambda data: data.assign(prop_1_5_max_error=data.prop_1_5_max_error + 1e-10))  # off in the 10th digit
def _proposition_1_5(data: xr.Dataset, p: Params, run: RunSettings) -> Verdict:
    return less(float(data.prop_1_5_max_error), 1e-12,
                detail="max |printed formula - definition with quadrature K(1), K'(1)| / max(1, |formula|) over d and bias")


@CLAIMS.rule("λ₁ < 0 everywhere in the table", REF,
             control=lambda data: data.assign(lambda_1=data.lambda_1 + 0.01))  # contraction 0.01 weaker: λ₁ ≈ -1/(2d) cells expand
def _lambda_1_negative(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    paper_rows = [row for row in _rows(data) if row["in_paper"]]
    if not paper_rows:
        return []
    worst = max(paper_rows, key=lambda row: row["lambda_1"])
    return [less(worst["lambda_1"], 0.0,
                 detail=f"max λ₁ over {len(paper_rows)} cells of the paper's activations, at {_cell(worst)}")]


@CLAIMS.rule("λ̄ < 0 for sigmoid everywhere; for relu, tanh, silu only with bias 0.1 and d ∈ {{64, 128}}",
             Ref(REF.paper, REF.where + "; docs/theory/random_mlp.md §5.2"), control=_unbiased)
def _lambda_bar_sign(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    compared, mismatches = lambda_bar_mismatches(_rows(data))
    if not compared:
        return []
    detail = (f"{len(compared)} cells compared; paper: λ̄ < 0 for sigmoid everywhere, for relu, tanh, silu only with "
              f"bias 0.1 and d in {{64, 128}}; mismatches: "
              + ("; ".join(f"{_cell(row)} (λ̄ = {row['lambda_bar']:.4g})" for row in mismatches) or "none"))
    return [verdict(len(mismatches), "0 mismatching cells", not mismatches, detail)]


@CLAIMS.rule("Thm 1.4 (ε = 0): λ̄'(β) < 0 wherever S1 holds", Ref("2604.26898", "Thm 1.4; docs/theory/random_mlp.md §4.4"),
             control=lambda data: data.assign(lambda_bar_prime=data.lambda_bar_prime + 0.3))  # decay 0.3 slower: weakest S1 cells stall
def _theorem_1_4(data: xr.Dataset, p: Params, run: RunSettings) -> list[Verdict]:
    s1_rows = [row for row in _rows(data) if row["S1"]]
    if not s1_rows:
        return []
    not_decaying = [row for row in s1_rows if not row["lambda_bar_prime"] < 0]
    return [verdict(len(not_decaying), "0 cells", not not_decaying,
                    detail=f"β = {p.beta:g}; {len(s1_rows)} S1 cells (GELU included); failing: "
                           + ("; ".join(_cell(row) for row in not_decaying) or "none"))]


def _table_panel(ax, values: np.ndarray, row_labels: list[str], col_labels: list[str], title: str,
                 highlight: np.ndarray | None = None) -> None:
    """Diverging sign-coloured table: blue < 0 (synchronising), red > 0; symmetric log scale."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 1.0
    small = float(finite[finite > 0].min()) if np.any(finite > 0) else 1e-3
    norm = mcolors.SymLogNorm(linthresh=max(small, 1e-4 * top), vmin=-top, vmax=top, base=10)
    image = ax.imshow(values, cmap="RdBu_r", norm=norm, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value = values[i, j]
            shade = abs(norm(value) - 0.5) > 0.3
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7.5, color="white" if shade else "black")
            if highlight is not None and highlight[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.2))
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=0)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_title(title)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image, norm


def _decade_ticks(norm: mcolors.SymLogNorm) -> list[float]:
    """0 and ±10^k for the decades above the linear threshold (no crowding around 0)."""
    low = math.ceil(math.log10(norm.linthresh) + 1e-9)
    high = math.floor(math.log10(norm.vmax) + 1e-9)
    decades = [10.0**k for k in range(low, high + 1)][-4:]
    return [-v for v in reversed(decades)] + [0.0] + decades


def table_figure(p: Params, data: xr.Dataset, mismatch: np.ndarray) -> Figure:
    columns = [(d, b) for d in p.d for b in p.bias]
    col_labels = [f"d={d}\nbias={b:g}" for d, b in columns]
    row_labels = [a if a in PAPER_ACTIVATIONS else f"{a} (not in paper)" for a in p.activation]

    def grid(name: str) -> np.ndarray:
        return np.asarray([[float(data[name].sel(activation=a, d=d, bias=b)) for d, b in columns] for a in p.activation])

    panels = [
        ("lambda_bar", "λ̄ = (d−1)K'(1) − (d−3)K(1)   (< 0: S1; boxed: sign differs from the paper)", mismatch),
        ("lambda_1", "λ₁ = ((d−3)/2)K'(1) − ((d−1)/2)K(1)   (top Lyapunov exponent)", None),
        ("lambda_bar_prime", f"λ̄'(β = {p.beta:g}) = −inf F   (< 0: " + r"$\mathbb{E}[E_\beta]$" + " decays exponentially)", None),
    ]
    with style():
        fig = new_figure((1.25 * len(columns) + 2.6, 1.0 + 1.05 * len(panels) * (0.45 * len(p.activation) + 0.9)))
        axes = fig.subplots(len(panels), 1)
        for ax, (name, title, highlight) in zip(np.atleast_1d(axes), panels):
            image, norm = _table_panel(ax, grid(name), row_labels, col_labels, title, highlight)
            bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02, ticks=_decade_ticks(norm))
            bar.ax.tick_params(labelsize=7)
        fig.suptitle("Random-MLP noise (2604.26898): blue = synchronising sign, red = not (σ_U = σ_W = bias)", fontsize=10)
    return settle(fig)


@register(
    "activation-table",
    title="K(1), K'(1), λ₁, λ̄, λ̄' of random-MLP noise per activation, d and bias",
    summary="K(1), K'(1), lambda_1, lambda_bar, lambda_bar'(beta) by quadrature for relu/silu/sigmoid/tanh/gelu, d in {5, 64, 128}, bias in {0, 0.1}",
    reference=REFERENCE,
    params=Params,
    quick={},
    claims=CLAIMS,
    variants=[{"beta": "4"}, {"d": "16,256"}, {"bias": "0.5"}],
)
def run(p: Params, ctx: RunContext) -> Result:
    rows = compute_rows(p)
    shape = (len(p.activation), len(p.d), len(p.bias))
    names = ("K1", "K1_prime", "lambda_1", "lambda_bar", "lambda_bar_prime", "u_star", "coercive", "S1")
    arrays = {name: np.asarray([row[name] for row in rows]).reshape(shape) for name in names}
    paper = np.asarray([np.nan if row["paper_lambda_bar_negative"] is None else float(row["paper_lambda_bar_negative"])
                        for row in rows]).reshape(shape)
    dims = ("activation", "d", "bias")
    data = xr.Dataset(
        {**{name: (dims, values) for name, values in arrays.items()}, "paper_lambda_bar_negative": (dims, paper),
         "relu_max_error": relu_closed_form_error(p.d, p.bias), "prop_1_5_max_error": proposition_1_5_error(p.d, p.bias)},
        coords={"activation": list(p.activation), "d": list(p.d), "bias": list(p.bias)},
        attrs={"beta": p.beta, "reference": REFERENCE},
    )
    known = np.isfinite(paper)
    mismatch = np.zeros(shape, dtype=bool)
    mismatch[known] = (arrays["lambda_bar"][known] < 0) != (paper[known] == 1.0)
    mismatch_2d = mismatch.reshape(len(p.activation), -1)
    first = rows[0]
    metrics = {
        **{name: first[name] for name in ("K1", "K1_prime", "lambda_1", "lambda_bar", "lambda_bar_prime", "coercive")},
        "table": [{key: value for key, value in row.items() if key != "criterion"} for row in rows],
        "criterion_agrees_with_lambda_bar": all(row["criterion"] == (row["lambda_bar"] < 0) for row in rows),
        "relu_max_error": float(data.relu_max_error), "prop_1_5_max_error": float(data.prop_1_5_max_error),
    }
    compared, mismatches = lambda_bar_mismatches(_rows(data))
    if compared:
        metrics["lambda_bar_mismatches"] = [_cell(row) for row in mismatches]
    return Result(
        metrics=metrics, data=data,
        figures={"activation_table": table_figure(p, data, mismatch_2d)},
    )
