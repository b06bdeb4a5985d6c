"""Figures that cannot mislead: reference curves read right where the viewer reads them (in the axis coordinates
of a log axis), and every value clipped or left out of a figure is said in it.

Each test reads the drawn data back from the matplotlib objects, as the eye reads the picture.
"""

from __future__ import annotations

import numpy as np
import pytest

from physnn.evaluation import metrics, plots
from physnn.evaluation.plots_common import plt


def _read(line, x: float, *, logx: bool = False, logy: bool = False) -> float:
    """The y a viewer reads off a drawn line at ``x``: straight segments in the axis coordinates (log where the
    axis is log), as matplotlib draws them."""
    xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    fx = np.log10 if logx else (lambda v: v)
    fy = np.log10 if logy else (lambda v: v)
    value = np.interp(fx(x), fx(xs), fy(ys))
    return float(10**value if logy else value)


def _line(ax, label: str):
    found = [line for line in ax.get_lines() if line.get_label() == label]
    assert found, f"no line {label!r} in {[line.get_label() for line in ax.get_lines()]}"
    return found[0]


def test_the_random_roc_reads_eps_s_equal_eps_b_on_the_log_panel():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(3000), np.ones(3000)].astype(int)
    score = np.r_[rng.normal(0, 1, 3000), rng.normal(1.4, 1, 3000)]  # AUC ~ 0.84
    roc = metrics.roc_with_band(y, score, n_boot=10)
    fig = plots.roc_figure(roc)
    linear, zoom, rejection = fig.axes[:3]
    assert zoom.get_xscale() == "log"
    for eps_b in (1e-3, 1e-2, 0.1):
        assert _read(_line(zoom, "random"), eps_b, logx=True) == pytest.approx(eps_b, rel=0.02), eps_b
        assert _read(_line(linear, "random"), eps_b) == pytest.approx(eps_b, rel=0.02), eps_b
    assert rejection.get_yscale() == "log"
    for eps in (0.2, 0.5, 0.9):  # the rejection panel: random is 1/ε_B = 1/ε_S
        assert _read(_line(rejection, "random"), eps, logy=True) == pytest.approx(1 / eps, rel=0.02), eps
    plt.close(fig)
