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


# -- images: what a log colour scale or a histogram range cannot show is said -------------------------------
def _showers(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:8, :8] - 3.5
    core = np.exp(-(xx**2 + yy**2) / 3)
    energy = rng.uniform(1, 50, n)
    return np.stack([core * energy[:, None, None] * f / core.sum() for f in (0.7, 0.3)], 1)


def test_the_denoising_panels_count_the_negative_cells_the_log_scale_cannot_show():
    truth = _showers(6)
    noisy = truth + np.random.default_rng(1).normal(0, 0.05, truth.shape)  # a readout keeps cells of both signs
    denoised = np.clip(noisy, 0, None)
    fig = plots.denoising_figure(noisy, denoised, truth, events=3)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 9
    for ax in panels:
        title = ax.get_title()
        what = title.split("\n")[0].rsplit(", ", 1)[1]  # "event 3, noisy" -> noisy
        idx = int(title.split(",")[0].split()[1])
        picture = {"noisy": noisy, "denoised": denoised, "truth": truth}[what][idx].sum(0)
        negative = int((picture < 0).sum())
        if negative:
            assert f"{negative} {'cell' if negative == 1 else 'cells'} < 0" in title, title
        else:
            assert "< 0" not in title, title
    assert "lowest colour" in fig.get_suptitle()
    plt.close(fig)


def test_the_energy_ratio_counts_what_lies_at_zero_and_in_the_edge_bins():
    truth = _showers(40)
    denoised = truth.copy()
    denoised[:5] = 0.0  # five events where nothing is left: E_sum = 0, the spike at 0
    noisy = truth * 1.0
    noisy[5:8] *= -0.2  # three negative sums, clipped into the first bin
    noisy[8:10] *= 3.0  # two beyond 2, clipped into the last bin
    truth[10] = 0.0  # no true energy: no ratio
    fig = plots.energy_ratio_figure(noisy, denoised, truth)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    denoised_text = next(t for t in legend if t.startswith("denoised"))
    noisy_text = next(t for t in legend if t.startswith("noisy"))
    assert "5 at 0" in denoised_text, denoised_text
    assert "3 below 0" in noisy_text, noisy_text
    assert "2 above 2" in noisy_text, noisy_text
    assert "below" not in denoised_text, denoised_text
    assert "above" not in denoised_text, denoised_text
    assert "1 event without true energy" in ax.get_title(), ax.get_title()
    drawn = {p.get_label().split(":")[0]: p.get_data().values for p in ax.patches if p.get_label()}
    assert drawn["denoised"][0] == 5  # the spike at 0 is the five events the legend counts
    assert drawn["noisy input"][0] == 3
    assert drawn["noisy input"][-1] == 2
    assert drawn["noisy input"].sum() == drawn["denoised"].sum() == 39  # every event with true energy drawn
    plt.close(fig)


def test_the_feature_histograms_say_the_edge_bins_hold_the_under_and_overflow():
    rng = np.random.default_rng(2)
    ref = {"e_ratio": rng.normal(1, 0.1, 2000)}
    cand = {"e_ratio": np.r_[rng.normal(1, 0.1, 1900), np.full(100, 5.0)]}  # a tail beyond the range
    fig = plots.features_figure(["e_ratio"], ref, cand, {"e_ratio": 0.1})
    title = fig.legends[0].get_title().get_text()
    assert "edge bins" in title, title
    plt.close(fig)


# -- what is shown is defined --------------------------------------------------------------------------------
def test_the_mc_dropout_categories_are_defined_by_the_rule_the_code_uses():
    from physnn.evaluation.html_report import caption
    from physnn.evaluation.summary import summary_rows

    # the rule: certain when the score ± 2σ band lies on one side of 0.5
    score, std = np.array([0.3, 0.3, 0.7, 0.7]), np.array([0.09, 0.11, 0.09, 0.11])
    assert metrics.mc_categories(score, std).tolist() == [0, 2, 1, 2]
    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(200), np.ones(200)].astype(int)
    p1 = np.clip(np.r_[rng.uniform(0, 0.6, 200), rng.uniform(0.4, 1, 200)], 0, 1)
    fig = metrics.classification(y, np.c_[1 - p1, p1], prob_std=np.c_[0.05 + 0 * p1, 0.05 + 0 * p1], n_boot=0)
    rows = dict(summary_rows({"events": 400, "split": "test", "classification": fig}))
    definition = next(value for name, value in rows.items() if "MC" in name and "categor" in name)
    for words in ("score ± 2σ", "one side of 0.5", "T passes"):
        assert words in definition, definition
        assert words in caption("mc_scores.png"), caption("mc_scores.png")


# -- digits: a value beside its error is rounded by the PDG rule --------------------------------------------
def _places(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def _same_decimals(text: str) -> bool:
    value, error = (part.strip().split()[0] for part in text.split("±"))
    return _places(value) == _places(error)


def test_a_small_bias_is_shown_with_its_error_not_as_bare_digits():
    from physnn.evaluation.summary import bin_table, fit_line, group_line, regression_rows
    from physnn.fmt import with_error

    rng = np.random.default_rng(11)
    true = rng.uniform(1, 100, 1200)
    pred = true + 0.003 + rng.normal(0, 1, true.size) * 0.3 * np.sqrt(true)
    groups = np.repeat([11, 22], 600)
    r = metrics.regression(true, pred, kind="energy", unit="GeV", baselines={"sum": true * rng.normal(1, 0.05, 1200)})
    assert r["bias_err"] == pytest.approx(r["sigma"] / np.sqrt(1200), rel=0.5)
    rows = dict(regression_rows("energy", r))
    assert rows["energy bias"] == f"{with_error(r['bias'], r['bias_err'])} GeV"
    assert _same_decimals(rows["energy bias"]), rows["energy bias"]
    assert "±" in rows["energy resolution σ (robust)"]
    assert _same_decimals(rows["energy resolution σ (robust)"])
    if r["fit"] and r["fit"]["accepted"]:
        assert fit_line(r["fit"]).count("±") == 2, fit_line(r["fit"])
    columns, cells = bin_table("energy", r)
    bias = columns.index("bias [GeV]")
    assert all("±" in row[bias] and _same_decimals(row[bias]) for row in cells), [row[bias] for row in cells]
    by = metrics.regression_by(true, pred, groups, kind="energy", unit="GeV")
    assert all("bias" in line and "±" in line.split("bias")[1].split(",")[0]
               for line in (group_line(g, "GeV", True) for g in by.values()))
    fig = plots.residuals_figure("energy", true, pred, r)
    corner = "\n".join(t.get_text() for t in fig.axes[0].texts)
    assert f"bias {with_error(r['bias'], r['bias_err'])} GeV" in corner, corner
    plt.close(fig)


def test_each_group_has_its_own_pull_width():
    """Issue 30's goal 'pull width per type <= 1.2' is read from ``evaluate --by pdgid``: each group carries the pull
    width of its own events (an error bar right on the mixture can be 2x too narrow for one type)."""
    rng = np.random.default_rng(3)
    true = rng.uniform(1, 100, 2000)
    groups = np.repeat([11, 211], 1000)
    std = np.full(true.size, 1.0)
    pred = true + rng.normal(0, np.where(groups == 11, 1.0, 2.0))  # the pions' spread is twice their error bar
    by = metrics.regression_by(true, pred, groups, std=std, kind="energy", unit="GeV")
    assert by["11"]["pull_std"] == pytest.approx(1.0, abs=0.1)
    assert by["211"]["pull_std"] == pytest.approx(2.0, abs=0.2)
    assert by["211"]["pull_std_err"] > 0


def test_the_pulls_show_their_mean_and_width_with_errors():
    from physnn.evaluation.summary import regression_rows

    rng = np.random.default_rng(12)
    true = rng.uniform(1, 100, 900)
    std = np.full(true.size, 2.0)
    pred = true + rng.normal(0, 2.1, true.size)
    r = metrics.regression(true, pred, std=std)
    fig = plots.pulls_figure("energy", true, pred, std, r)
    corner = fig.axes[0].texts[0].get_text()
    mean, width = corner.split("\n")[:2]
    assert "±" in mean, corner
    assert "±" in width, corner
    assert "±" in dict(regression_rows("energy", r))["energy pull std"]
    plt.close(fig)


def test_the_bias_in_and_out_of_the_training_domain_carries_its_error():
    from physnn.evaluation.coverage import coverage_by_domain
    from physnn.evaluation.summary import coverage_rows

    rng = np.random.default_rng(13)
    true = rng.uniform(1, 100, 500)
    pred = true + 0.004 + rng.normal(0, 1, 500)
    domain = coverage_by_domain(true, pred, np.arange(500) < 450, std=np.ones(500))
    rows = dict(coverage_rows("energy", {"unit": "GeV", "domain": domain}))
    for key in ("energy in the training domain", "energy out of the training domain"):
        bias = rows[key].split("bias ")[1].split(",")[0]
        assert "±" in bias, rows[key]
        assert _same_decimals(bias), bias


def test_the_feature_ratio_marks_the_bins_beyond_its_axis():
    rng = np.random.default_rng(3)
    ref = {"e_ratio": rng.normal(1, 0.1, 5000)}
    cand = {"e_ratio": np.r_[rng.normal(1, 0.1, 4000), rng.normal(1.2, 0.02, 1000)]}  # bins near 1.2: ratio >> 2
    fig = plots.features_figure(["e_ratio"], ref, cand, {"e_ratio": 0.1})
    top, ratio = fig.axes[0], fig.axes[1]
    drawn = ratio.patches[0].get_data()
    values, edges = drawn.values, drawn.edges
    beyond = (values > ratio.get_ylim()[1]) | (np.isnan(values) & (top.patches[1].get_data().values > 0))
    assert beyond.any()  # the case this test is about
    marks = [line for line in ratio.get_lines() if line.get_marker() == "^"]
    assert marks, "no mark for the ratios above the axis"
    centres = 0.5 * (edges[1:] + edges[:-1])
    np.testing.assert_allclose(np.sort(marks[0].get_xdata()), np.sort(centres[beyond]))
    assert "triangles: above 2" in fig.legends[0].get_title().get_text()
    plt.close(fig)


def test_generated_showers_count_the_negative_cells_per_layer():
    images = _showers(2)
    images[0, 1, :2, :3] = -0.01  # a signed readout: six negative cells in layer 1 of the first row
    fig = plots.generated_samples_figure(images, ["energy = 10 GeV", "energy = 50 GeV"])
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["layer 0", "layer 1, 6 cells < 0", "layer 0", "layer 1"]
    assert "lowest colour" in fig.get_suptitle()
    plt.close(fig)
