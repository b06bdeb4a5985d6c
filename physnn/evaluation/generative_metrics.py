"""FPD and KPD: the Fréchet and kernel physics distances of JetNet (Kansal et al., arXiv:2211.10295).

The definitions follow ``jetnet.evaluation.gen_metrics`` of JetNet 0.2.5
(``fpd``, ``kpd`` and their helpers) with its defaults, so the figures are
JetNet's (``tests/test_generative_metrics.py`` compares them when ``jetnet``
is installed; it is not a dependency: it pulls coffea, numba and energyflow):

- the features are first divided, column by column, by the largest absolute
  value of the *reference* sample (a column that is all zero is left as it is);
- **FPD**: the Fréchet distance between Gaussians fitted to the two samples,
  ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2)``, averaged over 20 random
  draws (with replacement) of N showers from each sample, for 10 values of
  N evenly spaced in 1/N between 20,000 and 50,000; a straight line fit in
  1/N (intercept and slope bounded to be >= 0) gives the value at N -> inf
  (the intercept) and its error;
- **KPD**: the unbiased estimate of the squared maximum mean discrepancy with
  JetNet's polynomial kernel ``k(x, y) = (x.y / d + 1)^4`` (degree 4, as
  JetNet's code has it; ``degree=3`` gives the KID kernel) on 10 draws (with
  replacement) of 5,000 showers from each sample; the value is the median,
  the error half the 16-84 % interquantile range.

JetNet's errors are those of the fit and of the spread over draws: they leave
out the finite size of the two samples, which biases both figures upwards
when the samples are smaller than the draws (repeated showers). Judge a
candidate against the floor of two reference samples of the same size
(:func:`shower_distances`, ``physnn compare --floor``), not against zero.

The draws repeat showers when a sample is smaller than the draw; each draw is
computed on its distinct showers, weighted by how often each was drawn, and
KPD's kernel sums through the samples' moment tensors (exact for a polynomial
kernel): the same numbers as JetNet's (up to rounding) in a fraction of the
time and memory.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import linalg
from scipy.optimize import curve_fit
from scipy.stats import iqr

from physnn.evaluation.conditions import particle_name
from physnn.evaluation.samples import ShowerSample, _high_level

#: Showers of a particle type each sample needs for that type's figures.
MIN_SHOWERS_PER_TYPE = 10


def normalise_features(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples divided, per column, by the reference's largest absolute value (JetNet's ``normalise``)."""
    scale = np.max(np.abs(reference), axis=0)
    scale[scale == 0] = 1
    return reference / scale, candidate / scale


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2)`` between two Gaussians (JetNet's stable version)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a constant feature makes the product singular (JetNet: disp=False)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():  # almost singular product
            offset = np.eye(len(sigma1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _draw(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``x[index]`` and how often each was drawn."""
    counts = np.bincount(index, minlength=len(x))
    drawn = np.flatnonzero(counts)
    return x[drawn], counts[drawn].astype(np.float64)


def _moments(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``N - 1``) of ``x[index]``."""
    rows, weights = _draw(x, index)
    mean = weights @ rows / weights.sum()
    centred = rows - mean
    cov = (centred * weights[:, None]).T @ centred / (weights.sum() - 1)
    return mean, cov


def fpd(reference: np.ndarray, candidate: np.ndarray, *, min_samples: int = 20_000, max_samples: int = 50_000,
        num_batches: int = 20, num_points: int = 10, normalise: bool = True, seed: int = 42) -> tuple[float, float]:
    """The Fréchet physics distance between two ``(N, features)`` samples, extrapolated to infinite N, and its error.

    Arguments and defaults as ``jetnet.evaluation.fpd`` (see the module's docstring).
    """
    x, y = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if normalise:
        x, y = normalise_features(x, y)
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    for size in sizes:
        values = []
        for _ in range(num_batches):
            first = _moments(x, rng.choice(len(x), size=size))
            second = _moments(y, rng.choice(len(y), size=size))
            values.append(frechet_distance(*first, *second))
        means.append(np.mean(values))
    params, cov = curve_fit(lambda n, a, b: a + b * n, 1 / sizes, means, bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(cov[0, 0]))


def _power(base: np.ndarray, degree: int) -> np.ndarray:
    """``base ** degree`` by repeated multiplication (numpy's general ``pow`` is several times slower)."""
    out = base.copy()
    for _ in range(degree - 1):
        out *= base
    return out


def _kernel_sum(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray, degree: int, block: int = 1024) -> float:
    """``sum_ij wa_i wb_j (a_i.b_j / d + 1)^degree``, a block of rows at a time."""
    total = 0.0
    for lo in range(0, len(a), block):
        kernel = _power(a[lo:lo + block] @ b.T / a.shape[1] + 1.0, degree)
        total += float(wa[lo:lo + block] @ kernel @ wb)
    return total


#: Largest ``d^ceil(degree / 2)`` for which the kernel sums go through moment tensors instead of kernel matrices.
MAX_MOMENT_SIZE = 1024


def _outer_power(a: np.ndarray, k: int) -> np.ndarray:
    """Row by row, the ``k``-fold outer product of ``a`` with itself, flattened: ``(n, d^k)``."""
    out = np.ones((len(a), 1))
    for _ in range(k):
        out = (out[:, :, None] * a[:, None, :]).reshape(len(a), -1)
    return out


def _poly_moments(a: np.ndarray, w: np.ndarray, degree: int) -> list[np.ndarray]:
    """``sum_i w_i a_i^(x k)`` for k = 0 .. degree, as ``d^ceil(k/2) x d^floor(k/2)`` matrices."""
    return [(_outer_power(a, -(-k // 2)) * w[:, None]).T @ _outer_power(a, k // 2) for k in range(degree + 1)]


def _kernel_sums(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray, degree: int) -> list[float]:
    """The weighted kernel sums over the pairs (x, x), (y, y) and (x, y).

    ``(u + 1)^p = sum_k C(p, k) u^k`` and ``sum_ij wa_i wb_j (a_i.b_j)^k`` is the inner product of the two samples'
    k-th moment tensors: the same sums as :func:`_kernel_sum`'s in O(n d^p) instead of O(n^2 d), while the
    tensors are small.
    """
    if x.shape[1] ** -(-degree // 2) > MAX_MOMENT_SIZE:
        return [_kernel_sum(x, wx, x, wx, degree), _kernel_sum(y, wy, y, wy, degree), _kernel_sum(x, wx, y, wy, degree)]
    mx, my = _poly_moments(x, wx, degree), _poly_moments(y, wy, degree)
    coef = [math.comb(degree, k) / x.shape[1] ** k for k in range(degree + 1)]
    return [sum(c * float(np.vdot(p, q)) for c, p, q in zip(coef, first, second, strict=True))
            for first, second in ((mx, mx), (my, my), (mx, my))]


def _mmd2_unbiased(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray, degree: int) -> float:
    """JetNet's unbiased MMD^2 of the draws (the diagonal of the draw's kernel matrix left out)."""
    m, n = wx.sum(), wy.sum()
    diag_x = wx @ _power(np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0, degree)
    diag_y = wy @ _power(np.einsum("ij,ij->i", y, y) / y.shape[1] + 1.0, degree)
    xx, yy, xy = _kernel_sums(x, wx, y, wy, degree)
    return (xx - diag_x) / (m * (m - 1)) + (yy - diag_y) / (n * (n - 1)) - 2 * xy / (m * n)


def kpd(reference: np.ndarray, candidate: np.ndarray, *, num_batches: int = 10, batch_size: int = 5_000,
        normalise: bool = True, seed: int = 42, degree: int = 4) -> tuple[float, float]:
    """The kernel physics distance between two ``(N, features)`` samples: the median over draws and its error.

    Arguments and defaults as ``jetnet.evaluation.kpd`` (see the module's docstring); ``degree`` is the
    polynomial kernel's (JetNet: 4).
    """
    x, y = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if normalise:
        x, y = normalise_features(x, y)
    values = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        first = _draw(x, rng.choice(len(x), size=batch_size))
        second = _draw(y, rng.choice(len(y), size=batch_size))
        values.append(_mmd2_unbiased(*first, *second, degree))
    return float(np.median(values)), float(iqr(values, rng=(16.275, 83.725)) / 2)


def physics_distances(reference: np.ndarray, candidate: np.ndarray, *, seed: int = 42) -> dict[str, float]:
    """FPD and KPD of two ``(N, features)`` samples with JetNet's defaults: ``fpd``, ``fpd_err``, ``kpd``,
    ``kpd_err``.

    For the floor, pass two independent reference samples (e.g. two simulator runs with different seeds):
    a candidate is as good as the reference where its figures are consistent with that floor.
    """
    value, error = fpd(reference, candidate, seed=seed)
    kernel, kernel_error = kpd(reference, candidate, seed=seed)
    return {"fpd": value, "fpd_err": error, "kpd": kernel, "kpd_err": kernel_error}


def shower_distances(reference: ShowerSample, candidate: ShowerSample, floor: ShowerSample | None = None, *,
                     seed: int = 42) -> dict[str, Any]:
    """FPD and KPD (:func:`physics_distances`) of two shower samples' high-level features, for ``physnn compare``.

    The features are every feature of :func:`physnn.physics.showers.high_level_features` (sorted by name) and
    ``ln E_inc``, of every shower read (not the classifier test's inputs, which take the energies relative to
    E_inc). With ``floor``, a
    second reference sample independent of the first (e.g. the same simulation with another seed), the same
    figures between the two references come as ``fpd_floor``, ``fpd_floor_err``, ``kpd_floor``, ``kpd_floor_err``:
    the candidate is as good as the reference where its figures are consistent with them. Where the samples name
    the particle type of each shower (``pdgid`` or ``label``), ``by_type`` holds the same per type (those with at
    least :data:`MIN_SHOWERS_PER_TYPE` showers in each sample).
    """
    samples = {"": candidate} | ({} if floor is None else {"_floor": floor})
    features = {suffix: _high_level(s) for suffix, s in samples.items()}
    ref = _high_level(reference)
    out: dict[str, Any] = _suffixed(ref, features, seed)
    if floor is not None:
        out["floor"] = floor.path
    types = {suffix: s.particle_types() for suffix, s in samples.items()}
    ref_types = reference.particle_types()
    if ref_types is None or any(t is None or t[0] != ref_types[0] for t in types.values()):
        return out
    branch, of_ref = ref_types
    by_type = {}
    for value in np.unique(of_ref):
        masks = {suffix: t[1] == value for suffix, t in types.items() if t is not None}
        if min([int((of_ref == value).sum()), *(int(m.sum()) for m in masks.values())]) >= MIN_SHOWERS_PER_TYPE:
            by_type[particle_name(branch, value)] = _suffixed(
                ref[of_ref == value], {k: features[k][m] for k, m in masks.items()}, seed)
    if by_type:
        out["by_type"] = by_type
    return out


def _suffixed(reference: np.ndarray, others: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    """:func:`physics_distances` of ``reference`` with each of ``others``, the keys given each one's suffix."""
    out = {}
    for suffix, other in others.items():
        out |= {f"{key[:3]}{suffix}{key[3:]}": value  # fpd_floor, fpd_floor_err
                for key, value in physics_distances(reference, other, seed=seed).items()}
    return out
