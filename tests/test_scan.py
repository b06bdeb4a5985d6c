"""physnn scan: exact statistics over many files with uproot.dask, against numpy on the whole arrays."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import ConfigError

pytest.importorskip("dask_awkward")


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan")
    physnn.simulate("events", folder / "a_1.root", events=700, seed=1)
    physnn.simulate("events", folder / "a_2.root", events=500, seed=2)
    return folder


def test_scan_matches_numpy_over_all_files(two_files):
    rows = {r.name: r for r in physnn.scan(str(two_files / "a_*.root"), branches=["part_pt", "mass", "n_part"],
                                           step_size=150)}  # several partitions per file
    arrays = [uproot.open(two_files / f"a_{i}.root")["events"].arrays(["part_pt", "mass"]) for i in (1, 2)]
    counts = np.concatenate([np.asarray(uproot.open(two_files / f"a_{i}.root")["events"]["n_part"].array())
                             for i in (1, 2)])
    pt = np.concatenate([ak.to_numpy(ak.flatten(a["part_pt"])) for a in arrays])
    mass = np.concatenate([np.asarray(a["mass"]) for a in arrays])
    assert rows["part_pt"].kind == "jagged"
    assert rows["part_pt"].entries == 1200
    assert rows["part_pt"].lengths["max"] == counts.max()
    assert rows["part_pt"].lengths["median"] == np.quantile(counts, 0.5, method="inverted_cdf")
    assert rows["part_pt"].lengths["q95"] == np.quantile(counts, 0.95, method="inverted_cdf")
    assert rows["part_pt"].lengths["mean"] == pytest.approx(counts.mean())
    assert rows["part_pt"].maximum == pytest.approx(pt.max())
    assert rows["part_pt"].mean == pytest.approx(pt.mean(), rel=1e-6)
    assert rows["mass"].kind == "scalar"
    assert rows["mass"].minimum == pytest.approx(mass.min())
    assert rows["n_part"].nonfinite == 0


def test_scan_counts_nonfinite_values_and_images(write_root):
    image = np.ones((40, 2, 3), dtype=np.float32)
    image[3, 0, 0] = np.nan
    image[7, 1, 2] = np.inf
    path = write_root({"image": image, "e": np.arange(40, dtype=np.float64)})
    rows = {r.name: r for r in physnn.scan(path, scheduler="synchronous")}
    assert rows["image"].kind == "array"
    assert rows["image"].nonfinite == 2
    assert rows["image"].mean == pytest.approx(1.0)
    assert rows["e"].maximum == 39


def test_scan_cli_and_errors(two_files, tmp_path):
    res = CliRunner().invoke(app, ["scan", str(two_files / "a_1.root"), "--branches", "part_pt,mass",
                                   "--workers", "2"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "700 entries" in res.output
    assert "part_pt" in res.output
    res = CliRunner().invoke(app, ["scan", str(tmp_path / "none_*.root")])
    assert res.exit_code == 2
    assert "matches no file" in res.output
    res = CliRunner().invoke(app, ["scan", str(two_files / "a_1.root"), "--scheduler", "slurm"])
    assert res.exit_code == 2
    with pytest.raises(ConfigError, match="no branch matches"):
        physnn.scan(two_files / "a_1.root", branches=["nothing_*"])


def test_scan_reads_a_real_rntuple(real_dir):
    path = real_dir / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
    rows = {r.name: r for r in physnn.scan(path, branches=["Muon_pt", "nMuon"], scheduler="synchronous")}
    counts = np.asarray(uproot.open(path)["Events"].arrays(["nMuon"])["nMuon"])
    assert rows["Muon_pt"].entries == 1000
    assert rows["Muon_pt"].lengths["max"] == counts.max()
    assert rows["nMuon"].mean == pytest.approx(counts.mean())
