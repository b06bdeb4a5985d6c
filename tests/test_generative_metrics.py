"""FPD and KPD (physnn.evaluation.generative_metrics) against their definitions, on Gaussians of known distance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from scipy.optimize import curve_fit
from scipy.stats import iqr

from physnn.evaluation.generative_metrics import fpd, frechet_distance, kpd, normalise_features, physics_distances


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def _with_moments(rng: np.random.Generator, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``n`` normal draws transformed so that their sample mean and covariance are exactly ``mean`` and ``cov``."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(0)
    white = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return white @ np.linalg.cholesky(cov).T + mean


def _closed_form(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), by eigendecompositions."""
    w, v = np.linalg.eigh(s1)
    root = v @ np.diag(np.sqrt(w)) @ v.T
    middle = np.linalg.eigvalsh(root @ s2 @ root)
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(middle).sum())


def test_frechet_distance_is_the_closed_form():
    rng = np.random.default_rng(0)
    s1, s2 = _spd(rng, 4), _spd(rng, 4)  # they do not commute
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=1e-9)
    # diagonal: |dmu|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    assert frechet_distance([0, 0], np.diag(a), [3, 4], np.diag(b)) == pytest.approx(25 + 4 + 1)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


def test_fpd_agrees_with_the_gaussians_distance_within_its_error():
    """Samples whose mean and covariance are exactly those of two Gaussians: FPD -> their closed-form distance."""
    rng = np.random.default_rng(1)
    s1, s2 = _spd(rng, 3), _spd(rng, 3)
    mu1, mu2 = np.zeros(3), np.array([0.3, -0.2, 0.1])
    truth = _closed_form(mu1, s1, mu2, s2)
    x, y = _with_moments(rng, 20000, mu1, s1), _with_moments(rng, 20000, mu2, s2)
    value, error = fpd(x, y, normalise=False)
    assert 0 < error < 0.02 * truth
    assert abs(value - truth) < 3 * error, (value, error, truth)
    same, same_error = fpd(x, _with_moments(rng, 20000, mu1, s1), normalise=False)
    assert same < 3 * same_error + 1e-4


def test_features_are_scaled_by_the_reference_maximum():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(500, 3)), rng.normal(size=(400, 3)) + 1
    x[:, 2] = 0  # an all-zero column stays as it is
    nx, ny = normalise_features(x, y)
    assert np.abs(nx[:, :2]).max(0) == pytest.approx([1, 1])
    assert ny == pytest.approx(y / np.r_[np.abs(x[:, :2]).max(0), 1])
    # so the distances do not depend on each feature's unit
    units = np.array([1e3, 1e-2, 1.0])
    assert fpd(x * units, y * units, num_batches=3)[0] == pytest.approx(fpd(x, y, num_batches=3)[0], rel=1e-6)
    assert kpd(x * units, y * units, batch_size=300)[0] == pytest.approx(kpd(x, y, batch_size=300)[0], rel=1e-6)


def test_kpd_is_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(3)
    cov = _spd(rng, 4)
    x, y = (rng.multivariate_normal(np.zeros(4), cov, size=10000) for _ in range(2))
    value, error = kpd(x, y, batch_size=1000)
    assert error > 0
    assert abs(value) < 3 * error, (value, error)
    shifted, shifted_error = kpd(x, y + np.array([1.0, 0, 0, 0]), batch_size=1000)  # by about one standard deviation
    assert shifted > 5 * shifted_error, (shifted, shifted_error)
    assert shifted > 20 * abs(value)


def _explicit_fpd(x, y, sizes, num_batches, seed):
    """JetNet 0.2.5's fpd, written out: np.cov of the drawn rows, the fit in 1/N."""
    rng = np.random.default_rng(seed)
    means = []
    for size in sizes:
        vals = []
        for _ in range(num_batches):
            a, b = x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)]
            covmean = np.real(linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False)))
            diff = a.mean(0) - b.mean(0)
            vals.append(diff @ diff + np.trace(np.cov(a, rowvar=False)) + np.trace(np.cov(b, rowvar=False))
                        - 2 * np.trace(covmean))
        means.append(np.mean(vals))
    params, cov = curve_fit(lambda n, p, q: p + q * n, 1 / sizes, means, bounds=([0, 0], [np.inf, np.inf]))
    return params[0], np.sqrt(cov[0, 0])


def _explicit_kpd(x, y, num_batches, batch_size, seed, degree=4):
    """JetNet 0.2.5's kpd, written out: the full kernel matrices of each draw."""
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        a, b = x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)]
        k = lambda p, q: (p @ q.T / x.shape[1] + 1.0) ** degree  # noqa: E731
        kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
        m = batch_size
        vals.append((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                    - 2 * kab.mean())
    return np.median(vals), iqr(vals, rng=(16.275, 83.725)) / 2


@pytest.mark.parametrize("moments", [True, False])
def test_draws_with_repeats_give_the_explicit_definition(moments, monkeypatch):
    """Drawing 300 of 80 showers repeats them: the weighted computation equals the written-out definition, with the
    kernel sums through moment tensors and through kernel matrices alike."""
    from physnn.evaluation import generative_metrics

    monkeypatch.setattr(generative_metrics, "MAX_MOMENT_SIZE", 1024 if moments else 0)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(80, 3)) + 5, rng.gamma(2.0, size=(90, 3)) + 4
    nx, ny = normalise_features(x, y)
    sizes = (1 / np.linspace(1 / 200, 1 / 500, 4)).astype("int32")
    want = _explicit_fpd(nx, ny, sizes, 5, seed=9)
    got = fpd(x, y, min_samples=200, max_samples=500, num_points=4, num_batches=5, seed=9)
    assert got == pytest.approx(want, rel=1e-6)
    assert kpd(x, y, num_batches=5, batch_size=300, seed=9) == pytest.approx(_explicit_kpd(nx, ny, 5, 300, 9),
                                                                             rel=1e-7)
    assert kpd(x, y, num_batches=5, batch_size=300, seed=9, degree=3) == pytest.approx(
        _explicit_kpd(nx, ny, 5, 300, 9, degree=3), rel=1e-7)


def test_physics_distances_as_jetnet_computes_them():
    """The same figures as the jetnet package itself (optional: it is not a dependency)."""
    gen_metrics = pytest.importorskip("jetnet.evaluation.gen_metrics")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6000, 4)) * [1, 2, 3, 4] + 10, rng.normal(size=(6000, 4)) * [1, 2, 3, 4] + 10.2
    ours = physics_distances(x, y)
    fpd_value, fpd_error = gen_metrics.fpd(x, y)
    kpd_value, kpd_error = gen_metrics.kpd(x, y)
    assert [ours["fpd"], ours["fpd_err"], ours["kpd"], ours["kpd_err"]] == pytest.approx(
        [fpd_value, fpd_error, kpd_value, kpd_error], rel=1e-6)
