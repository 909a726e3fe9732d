"""Claims as functions of a run's saved data.

A claim is a statement of a paper, checked against what a run measured. Each experiment
declares its claims as *rules*: a title, the paper references, and a function of the saved
dataset (plus the parameters and run settings) that returns one or more verdicts::

    CLAIMS = ClaimSet()

    @CLAIMS.rule("particles follow the equiangular ODE", Ref("2312.10794", "Thm 6.8"))
    def _follow_ode(data, p, run):
        deviation = float(abs(data.rho - data.rho_ode).max())
        return less(deviation, 1e-8, detail="max_t |rho - rho_ODE|")

and registers ``claims=CLAIMS``. The registry evaluates the rules on the dataset the run
returned (and saves); ``tokenswarm check DIR`` evaluates them again on ``data.zarr`` as read
back from disk and compares the two (:func:`tokenswarm.io.check.check_run`). Because the
rules are declared statically, ``tokenswarm list --paper ID`` lists every claim of a paper
without running anything.

A verdict is ``pass``, ``fail`` or ``inconclusive`` (``passed`` true, false or ``None``):
a claim whose measurement cannot decide it at the chosen size says so, with the reason in
``detail``, instead of failing.

A rule's title may hold ``{placeholders}`` filled per verdict (``labels={"d": 8}``), so one
rule can judge a claim at several parameter values: ``"d = {d} boundary follows the ODE"``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenswarm.io.refs import PAPER_ID, Ref, parse_references
from tokenswarm.io.results import Claim, _as_float, _plain

if TYPE_CHECKING:
    import xarray

__all__ = [
    "Ref",
    "parse_references",
    "ClaimSet",
    "Rule",
    "RunSettings",
    "Verdict",
    "verdict",
    "less",
    "greater",
    "between",
    "close",
    "inconclusive",
    "equivalent",
    "PAPER_ID",
]

def _refs(refs: Sequence[Ref | str]) -> tuple[Ref, ...]:
    out: list[Ref] = []
    for ref in refs:
        out.extend([ref] if isinstance(ref, Ref) else parse_references(ref))
    if not out:
        raise ValueError("a claim needs at least one reference")
    return tuple(out)


@dataclass(frozen=True)
class RunSettings:
    """The run settings a rule may depend on (precision, quick size), from the run or its files."""

    dtype: str = "float64"
    quick: bool = False
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunSettings:
        """Read the settings stored next to the parameters in ``result.json`` / the dataset."""
        return cls(dtype=str(params.get("dtype", "float64")), quick=bool(params.get("quick", False)),
                   seed=int(params.get("seed", 0)), device=str(params.get("device", "cpu")))


@dataclass(frozen=True)
class Verdict:
    """One judgement of a rule: what was measured, the criterion, and the outcome."""

    measured: Any
    expected: str | float
    passed: bool | None
    detail: str = ""
    labels: Mapping[str, Any] = field(default_factory=dict)


def verdict(measured: Any, expected: str | float, passed: bool | None, detail: str = "",
            labels: Mapping[str, Any] | None = None) -> Verdict:
    """A verdict whose criterion the caller evaluated (statistical tests, structural checks)."""
    return Verdict(_plain(measured), expected, None if passed is None else bool(passed), detail, labels or {})


def inconclusive(measured: Any, expected: str | float, reason: str,
                 labels: Mapping[str, Any] | None = None) -> Verdict:
    """Neither pass nor fail: the measurement cannot decide at this size; ``reason`` says why."""
    return Verdict(_plain(measured), expected, None, reason, labels or {})


def less(measured: Any, bound: float, detail: str = "", labels: Mapping[str, Any] | None = None) -> Verdict:
    """Passes when ``measured < bound`` (a NaN measurement fails)."""
    value = _as_float(measured)
    return Verdict(value, f"< {bound:g}", bool(value < bound), detail, labels or {})


def greater(measured: Any, bound: float, detail: str = "", labels: Mapping[str, Any] | None = None) -> Verdict:
    """Passes when ``measured > bound`` (a NaN measurement fails)."""
    value = _as_float(measured)
    return Verdict(value, f"> {bound:g}", bool(value > bound), detail, labels or {})


def between(measured: Any, low: float, high: float, detail: str = "",
            labels: Mapping[str, Any] | None = None) -> Verdict:
    """Passes when ``low <= measured <= high`` (a NaN measurement fails)."""
    value = _as_float(measured)
    return Verdict(value, f"in [{low:g}, {high:g}]", bool(low <= value <= high), detail, labels or {})


def close(measured: Any, target: float, rtol: float | None = None, atol: float | None = None,
          detail: str = "", labels: Mapping[str, Any] | None = None) -> Verdict:
    """Passes when ``|measured - target| <= atol + rtol * |target|`` (one tolerance at least)."""
    if rtol is None and atol is None:
        raise ValueError("close(): give rtol, atol or both; a hidden default would decide silently")
    value = _as_float(measured)
    tolerance = (atol or 0.0) + (rtol or 0.0) * abs(target)
    return Verdict(value, f"{target:.6g} ± {tolerance:.2g}", bool(abs(value - target) <= tolerance),
                   detail, labels or {})


def equivalent(estimate: float, se: float, dof: int, target: float, tolerance: float, *, level: float = 0.95,
               detail: str = "", labels: Mapping[str, Any] | None = None) -> Verdict:
    """A statistical claim ``estimate ≈ target`` decided by an equivalence test at ``level``.

    Pass when the Student-t interval lies inside ``target ± tolerance``, fail when it lies
    outside, inconclusive when it straddles an edge; the detail then says roughly how many
    times more draws would decide (the interval shrinks like ``1/sqrt(draws)``).
    """
    from tokenswarm.stats import equivalence

    decision = equivalence(estimate, se, dof, target, tolerance, level)
    low, high = decision[1], decision[2]
    text = f"{level:.0%} t-interval [{low:.4g}, {high:.4g}] (s.e. {se:.3g}, {dof} dof)"
    if decision.status == "inconclusive" and math.isfinite(high - low):
        margin = abs(abs(estimate - target) - tolerance)
        factor = ((high - low) / 2 / margin) ** 2 if margin > 0 else math.inf
        text += f"; too few draws to decide: about {factor:.2g}x as many would" if math.isfinite(factor) else \
            "; the estimate sits on the band's edge: no sample size decides"
    return Verdict(_plain(estimate), f"{target:g} ± {tolerance:g} (interval inside)", decision.passed,
                   f"{detail}; {text}" if detail else text, labels or {})


RuleFunction = Callable[["xarray.Dataset", Any, RunSettings], "Verdict | Iterable[Verdict] | None"]


@dataclass(frozen=True)
class Rule:
    """One claim of an experiment: title (a template), references and its judging function."""

    title: str
    refs: tuple[Ref, ...]
    judge: RuleFunction
    control: Callable[[xarray.Dataset], xarray.Dataset] | None = None

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.title) if name)

    def evaluate(self, data: xarray.Dataset, params: Any, run: RunSettings) -> list[Claim]:
        outcome = self.judge(data, params, run)
        verdicts = [] if outcome is None else [outcome] if isinstance(outcome, Verdict) else list(outcome)
        claims = []
        for item in verdicts:
            if not isinstance(item, Verdict):
                raise TypeError(f"claim rule {self.title!r} returned {type(item).__name__}, not a Verdict")
            missing = set(self.placeholders) - set(item.labels)
            if missing:
                raise ValueError(f"claim rule {self.title!r}: verdict lacks labels {sorted(missing)}")
            claims.append(Claim(self.title.format(**item.labels), "; ".join(map(str, self.refs)), item.measured,
                                item.expected, item.passed, item.detail, refs=self.refs))
        return claims

    def to_json_dict(self) -> dict[str, Any]:
        name = self.title if self.placeholders else self.title.format()  # "e^{{-beta/2}}" -> "e^{-beta/2}"
        return {"name": name, "reference": "; ".join(map(str, self.refs)),
                "refs": [ref.to_json_dict() for ref in self.refs]}


class ClaimSet:
    """The claims of one experiment, in the order they are reported."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def rule(self, title: str, *refs: Ref | str,
             control: Callable[[xarray.Dataset], xarray.Dataset] | None = None) -> Callable[[RuleFunction], RuleFunction]:
        """Decorator adding ``judge(data, params, run) -> Verdict | [Verdict, ...]`` as a claim.

        ``control`` is the claim's negative control: it turns a run's dataset into one on which
        the claim must fail (data of a model that breaks the claim); ``tests/test_claims.py``
        checks that every verdict of the rule then fails, so the claim is shown to be able to fail.
        """
        parsed = _refs(refs)

        def decorator(judge: RuleFunction) -> RuleFunction:
            self.rules.append(Rule(title, parsed, judge, control))
            return judge

        return decorator

    def evaluate(self, data: xarray.Dataset, params: Any, run: RunSettings) -> list[Claim]:
        """Every rule's claims, in declaration order."""
        return [claim for rule in self.rules for claim in rule.evaluate(data, params, run)]

    @property
    def papers(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for rule in self.rules:
            for ref in rule.refs:
                seen.setdefault(ref.paper, None)
        return tuple(seen)

    def __len__(self) -> int:
        return len(self.rules)


def same_measurement(saved: Any, recomputed: Any, rtol: float = 1e-12) -> bool:
    """Two JSON measurements agree: numbers to ``rtol`` (``None``/NaN equal), the rest exactly."""
    if isinstance(saved, list) and isinstance(recomputed, list):
        return len(saved) == len(recomputed) and all(map(same_measurement, saved, recomputed))
    numbers = (int, float)
    if isinstance(saved, numbers) and isinstance(recomputed, numbers) and not isinstance(saved, bool):
        return math.isclose(saved, recomputed, rel_tol=rtol, abs_tol=0.0) or saved == recomputed
    return saved == recomputed
