"""Mutual-information estimators for per-layer information-plane analyses (docs/theory/master_pde.md §6.3).

All values are in **nats**. Samples are rows: ``x`` of shape ``(N, p)``, ``t`` of shape ``(N, q)``
(flatten tokens × features first), discrete labels ``(N,)`` of integers. Every estimator
returns an :class:`Estimate` (value, standard error, sample size, name). Distances are computed
densely (``N × N``), fine for ``N`` up to a few thousand.

**Why several estimators** (docs/theory/master_pde.md §6.3, caveat): for a deterministic network on continuous
inputs, ``I(X; T_l)`` is infinite (injective layers) or a constant; finite, decreasing values
appear only through noise or discretisation, and each estimator is a *different quantity*:

* :func:`gaussian_noise_mi` -- Kolchinsky & Tracey (2017) pairwise-distance bounds for the
  noisy representation ``T + σξ`` with ``X`` uniform over the ``N`` samples (the data set is the
  population, as in Saxe et al. 2018). With ``D_ij = |t_i - t_j|``:
  ``I_upper(X; T_σ) = -mean_i log mean_j exp(-D_ij² / (2σ²))`` (KL kernel) and
  ``I_lower = -mean_i log mean_j exp(-D_ij² / (8σ²))`` (Bhattacharyya kernel) bracket the exact
  mutual information of that mixture; both lie in ``[0, log N]``. ``I(T_σ; Y)`` =
  ``H(T_σ) - Σ_c p_c H(T_σ | c)`` with the same kernel for every term (their "estimate"; the
  difference of bounds is no bound). Caveat: ``T_l + σξ`` and ``T_{l+1} + σξ'`` are *not* a Markov
  chain (the noise is not propagated), so the data-processing inequality need not hold for these
  numbers even though it holds for the noise-free ``T_l``.
* :func:`ksg_mi` -- Kraskov, Stögbauer & Grassberger (2004), estimator 1 (max-norm), for two
  continuous variables; :func:`knn_label_mi` -- Ross (2014) for a continuous ``T`` and discrete
  ``Y``. Consistent; biased towards 0 when the true MI is large or the dimension high (k-NN
  distances concentrate).
* :func:`binned_mi` -- plug-in discrete entropies after binning each coordinate into ``bins``
  equal-width bins over the data range (Shwartz-Ziv & Tishby 2017). ``I(X; T_bin) = H(T_bin)``
  (``T_bin`` is a function of ``X``), saturating at ``log N`` once all samples fall in distinct
  cells; plug-in entropies are biased low by about ``(cells - 1) / (2N)``.
* :func:`probe_mi` -- variational lower bound ``I(T; Y) >= H(Y) - CE``, ``CE`` the held-out
  cross-entropy of a logistic-regression probe (Barber & Agakov); exact for the Bayes
  classifier, below the truth otherwise, up to sampling error.

Standard errors: KSG, Ross, the pairwise bounds and the probe are means of per-sample terms
(kept in ``Estimate.terms``, so that two estimates on the same samples can be compared by the
s.e. of their paired differences); the reported s.e. is the standard deviation of those terms
over ``sqrt(N)``. It ignores the
dependence between terms (each uses the whole sample) and is therefore approximate;
``tests/test_information.py`` measures each estimator's bias against closed-form Gaussian
values and records it in ``docs/master_pde.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, logsumexp

from tokenswarm.runtime.optional import require
from tokenswarm.stats import mean_se

__all__ = [
    "Estimate",
    "gaussian_mi",
    "gaussian_channel_mi",
    "binary_mixture_mi",
    "ksg_mi",
    "knn_label_mi",
    "gaussian_noise_mi",
    "binned_mi",
    "probe_mi",
    "entropy_of_labels",
]


@dataclass(frozen=True)
class Estimate:
    """An MI estimate in nats: ``value ± se`` from ``n`` samples by ``method``.

    ``terms`` holds the per-sample terms whose mean is ``value`` (``None`` for plug-in
    estimators), so that two estimates on the same samples can be compared by a paired s.e.
    """

    value: float
    se: float
    n: int
    method: str
    terms: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """Value, s.e., sample size and method (the per-sample terms are left out)."""
        return {"value": self.value, "se": self.se, "n": self.n, "method": self.method}


def _matrix(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (N,) or (N, p), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _labels(y, n: int) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    _, codes = np.unique(labels, return_inverse=True)
    return codes


# ---------------------------------------------------------------------------------------
# Closed forms (for validation)
# ---------------------------------------------------------------------------------------


def gaussian_mi(covariance, x_dims: int) -> float:
    """``I(X; Y)`` of a joint Gaussian with covariance ``[[Σ_xx, Σ_xy], [Σ_yx, Σ_yy]]`` (``X`` first)."""
    cov = np.asarray(covariance, dtype=np.float64)
    _, logdet = np.linalg.slogdet(cov)
    _, logdet_x = np.linalg.slogdet(cov[:x_dims, :x_dims])
    _, logdet_y = np.linalg.slogdet(cov[x_dims:, x_dims:])
    return 0.5 * (logdet_x + logdet_y - logdet)


def gaussian_channel_mi(covariance, noise_std: float) -> float:
    """``I(X; X + σξ) = ½ log det(I + Σ/σ²)`` for ``X ~ N(0, Σ)``, ``ξ ~ N(0, I)``."""
    cov = np.atleast_2d(np.asarray(covariance, dtype=np.float64))
    _, logdet = np.linalg.slogdet(np.eye(cov.shape[0]) + cov / noise_std**2)
    return 0.5 * logdet


def binary_mixture_mi(separation: float, std: float = 1.0) -> float:
    """``I(T; Y)`` for ``Y`` uniform on ``{0, 1}``, ``T | Y ~ N(±separation/2, std²)`` (1-D quadrature).

    ``I = H(T) - H(T|Y) = log 2 - E[log(1 + exp(-|LLR|))]``-type integral, evaluated on a fine grid.
    """
    mu = separation / 2
    grid = np.linspace(-mu - 12 * std, mu + 12 * std, 200_001)
    log_p0 = -0.5 * ((grid + mu) / std) ** 2
    log_p1 = -0.5 * ((grid - mu) / std) ** 2
    log_norm = -math.log(std * math.sqrt(2 * math.pi))
    p0 = np.exp(log_p0 + log_norm)
    # I = Σ_y ½ ∫ p_y log(p_y / p_mix)
    log_mix = np.logaddexp(log_p0, log_p1) - math.log(2)
    integrand = 0.5 * p0 * (log_p0 - log_mix) + 0.5 * np.exp(log_p1 + log_norm) * (log_p1 - log_mix)
    return float(np.trapezoid(integrand, grid))


def entropy_of_labels(labels) -> float:
    """Plug-in entropy of discrete labels (nats)."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


# ---------------------------------------------------------------------------------------
# k-nearest-neighbour estimators
# ---------------------------------------------------------------------------------------


def _chebyshev(a: np.ndarray) -> np.ndarray:
    return np.abs(a[:, None, :] - a[None, :, :]).max(-1)


def _euclidean(a: np.ndarray) -> np.ndarray:
    squared = (a**2).sum(1)
    d2 = squared[:, None] + squared[None, :] - 2 * a @ a.T
    return np.sqrt(np.clip(d2, 0, None))


def ksg_mi(x, y, k: int = 3) -> Estimate:
    """Kraskov–Stögbauer–Grassberger estimator 1 of ``I(X; Y)`` (max-norm in the joint space).

    ``I = ψ(k) + ψ(N) - mean_i[ψ(n_x,i + 1) + ψ(n_y,i + 1)]``, ``n_x,i`` the number of points
    strictly closer than the ``k``-th joint neighbour in the ``x`` marginal.
    """
    xs, ys = _matrix(x, "x"), _matrix(y, "y")
    n = xs.shape[0]
    if ys.shape[0] != n:
        raise ValueError(f"x and y need the same number of samples, got {n} and {ys.shape[0]}")
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N), got k={k}, N={n}")
    dx, dy = _chebyshev(xs), _chebyshev(ys)
    joint = np.maximum(dx, dy)
    np.fill_diagonal(joint, np.inf)
    eps = np.partition(joint, k - 1, axis=1)[:, k - 1]
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    nx = (dx < eps[:, None]).sum(1)
    ny = (dy < eps[:, None]).sum(1)
    terms = digamma(k) + digamma(n) - digamma(nx + 1) - digamma(ny + 1)
    value, se = mean_se(terms)
    return Estimate(value, se, n, f"ksg(k={k})", terms)


def knn_label_mi(t, labels, k: int = 3) -> Estimate:
    """Ross (2014) k-NN estimator of ``I(T; Y)`` for continuous ``T`` and discrete ``Y`` (Euclidean).

    For sample ``i`` of class ``c`` (``N_c`` samples): ``d_i`` = distance to its ``k``-th nearest
    neighbour within class ``c`` (``k`` capped at ``N_c - 1``), ``m_i`` = number of samples of
    any class within ``d_i``; ``I = ψ(N) - <ψ(N_c)> + <ψ(k)> - <ψ(m_i)>``. Classes with one
    sample are dropped (Ross's convention).
    """
    ts = _matrix(t, "t")
    n = ts.shape[0]
    codes = _labels(labels, n)
    distances = _euclidean(ts)
    np.fill_diagonal(distances, np.inf)
    counts = np.bincount(codes)
    keep = counts[codes] > 1
    terms = []
    for i in np.nonzero(keep)[0]:
        same = codes == codes[i]
        same[i] = False
        k_i = min(k, int(same.sum()))
        radius = np.partition(distances[i, same], k_i - 1)[k_i - 1]
        m_i = int((distances[i] <= radius).sum())
        terms.append(digamma(n) - digamma(counts[codes[i]]) + digamma(k_i) - digamma(m_i))
    terms = np.asarray(terms)
    value, se = mean_se(terms)
    return Estimate(value, se, int(keep.sum()), f"knn-label(k={k})", terms)


# ---------------------------------------------------------------------------------------
# Noise (pairwise-distance) bounds
# ---------------------------------------------------------------------------------------


def _pairwise_terms(squared: np.ndarray, scale: float) -> np.ndarray:
    """``-log mean_j exp(-D_ij² / scale)`` per row ``i``."""
    m = squared.shape[1]
    return -(logsumexp(-squared / scale, axis=1) - math.log(m))


def gaussian_noise_mi(t, sigma: float, labels=None, *, kernel: str = "kl") -> dict[str, Estimate]:
    """Pairwise-distance estimates for ``T_σ = T + σξ`` with ``X`` uniform over the samples.

    Returns ``{"x_upper": I(X;T_σ) KL upper bound, "x_lower": Bhattacharyya lower bound}`` and,
    if ``labels`` are given, ``"y"``: ``I(T_σ; Y)`` with the ``kernel`` (``"kl"`` or
    ``"bhattacharyya"``) used for ``H(T_σ)`` and every ``H(T_σ | c)``.
    """
    ts = _matrix(t, "t")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    n = ts.shape[0]
    squared = _euclidean(ts) ** 2
    upper = _pairwise_terms(squared, 2 * sigma**2)
    lower = _pairwise_terms(squared, 8 * sigma**2)
    out = {"x_upper": Estimate(*mean_se(upper), n, f"kl-pairwise(sigma={sigma:g})", upper),
           "x_lower": Estimate(*mean_se(lower), n, f"bhattacharyya-pairwise(sigma={sigma:g})", lower)}
    if labels is not None:
        codes = _labels(labels, n)
        scale = {"kl": 2 * sigma**2, "bhattacharyya": 8 * sigma**2}[kernel]
        # per-sample term: [-log mean_j K_ij] - [-log mean_{j in c(i)} K_ij]; averaging over i gives
        # H_est(T) - Σ_c p_c H_est(T|c) (the H(T|X) constants cancel)
        terms = _pairwise_terms(squared, scale)
        for c in np.unique(codes):
            rows = codes == c
            terms[rows] -= _pairwise_terms(squared[np.ix_(rows, rows)], scale)
        out["y"] = Estimate(*mean_se(terms), n, f"{kernel}-pairwise(sigma={sigma:g})", terms)
    return out


# ---------------------------------------------------------------------------------------
# Binning
# ---------------------------------------------------------------------------------------


def _plugin_entropy(codes: np.ndarray) -> float:
    _, counts = np.unique(codes, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def binned_mi(t, labels=None, *, bins: int = 30) -> dict[str, Estimate]:
    """Plug-in estimates after equal-width binning of every coordinate over the data range.

    Returns ``"x"``: ``I(X; T_bin) = H(T_bin)`` (``X`` uniform over the samples, ``T`` a function
    of ``X``) and, with ``labels``, ``"y"``: ``I(T_bin; Y) = H(T_bin) - Σ_c p_c H(T_bin | c)``.
    Standard errors are not available for plug-in entropies here (reported as NaN).
    """
    ts = _matrix(t, "t")
    n = ts.shape[0]
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    low, high = ts.min(), ts.max()
    width = (high - low) / bins if high > low else 1.0
    codes = np.clip(np.floor((ts - low) / width), 0, bins - 1).astype(np.int64)
    h_t = _plugin_entropy(codes)
    out = {"x": Estimate(h_t, float("nan"), n, f"binning(bins={bins})")}
    if labels is not None:
        y = _labels(labels, n)
        conditional = sum((y == c).mean() * _plugin_entropy(codes[y == c]) for c in np.unique(y))
        out["y"] = Estimate(h_t - conditional, float("nan"), n, f"binning(bins={bins})")
    return out


# ---------------------------------------------------------------------------------------
# Variational (probe) lower bound
# ---------------------------------------------------------------------------------------


def probe_mi(t_train, y_train, t_test, y_test, *, regularization: float = 1.0, max_iter: int = 2000) -> Estimate:
    """``I(T; Y) >= H(Y) - CE_test`` with a multinomial logistic-regression probe.

    ``H(Y)`` is the plug-in label entropy of the test set; ``CE`` the mean held-out
    cross-entropy (nats) of the probe's probabilities mixed with a uniform distribution over the
    ``K`` labels seen (weight ``1/(N_train + K)``, so unseen test labels stay finite).
    Features are standardised with the training statistics.
    ``regularization`` is scikit-learn's ``C`` (inverse L2 strength).
    """
    LogisticRegression = require(  # noqa: N806 - scikit-learn's class
        "sklearn.linear_model", package="scikit-learn", extra="sklearn", purpose="the logistic-regression probe"
    ).LogisticRegression

    train, test = _matrix(t_train, "t_train"), _matrix(t_test, "t_test")
    ytr = np.asarray(y_train.detach().cpu() if hasattr(y_train, "detach") else y_train)
    yte = np.asarray(y_test.detach().cpu() if hasattr(y_test, "detach") else y_test)
    mean, std = train.mean(0), train.std(0) + 1e-12
    probe = LogisticRegression(C=regularization, max_iter=max_iter)
    probe.fit((train - mean) / std, ytr)
    probs = probe.predict_proba((test - mean) / std)
    # Mix in a uniform distribution over every label seen (train or test) with weight
    # 1/(N_train + K): a test label absent from training gets a finite cross-entropy, and any
    # predictive distribution still gives a valid lower bound (CE >= H(Y|T)).
    labels = np.union1d(probe.classes_, np.unique(yte))
    weight = 1.0 / (len(ytr) + len(labels))
    column = {c: i for i, c in enumerate(probe.classes_)}
    seen = np.array([column.get(c, -1) for c in yte])
    p_true = np.where(seen >= 0, probs[np.arange(len(yte)), np.maximum(seen, 0)], 0.0)
    ce_terms = -np.log((1 - weight) * p_true + weight / len(labels))
    _, counts = np.unique(yte, return_counts=True)
    p = counts / counts.sum()
    h_y = float(-(p * np.log(p)).sum())
    ce, se = mean_se(ce_terms)
    return Estimate(h_y - ce, se, len(yte), f"logistic-probe(C={regularization:g})", h_y - ce_terms)
