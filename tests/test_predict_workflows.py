"""Predicting on files physicists bring (issue 16): other branch names (``--map``) and predictions that join
back to the input in ROOT (``--aligned``, ``AddFriend``, an RDataFrame join of the selected-only output)."""

from __future__ import annotations

import array
import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from conftest import TINY_CNN
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import BranchError, ConfigError

runner = CliRunner()
N = 400
#: the run's branch -> the new file's branch
MAP = {"img": "calo_img", "e": "energy", "nhits": "n_hits", "label": "truth", "w": "evt_w", "runnum": "RunNumber"}
CUT = "RunNumber >= 2 && energy > 3"  # a selection in the new file's names


@pytest.fixture(scope="module")
def columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    label = rng.integers(0, 2, N).astype(np.int32)
    img = rng.normal(size=(N, 8, 8)).astype(np.float32)
    img[:, 2:6, 2:6] += 1.5 * label[:, None, None]
    return {"img": img, "e": rng.uniform(0, 10, N).astype(np.float32),
            "nhits": rng.integers(0, 6, N).astype(np.int32), "label": label,
            "w": rng.uniform(0.5, 1.5, N).astype(np.float32), "runnum": (np.arange(N) // 100).astype(np.int32)}


@pytest.fixture(scope="module")
def run(columns, tmp_path_factory):
    """A tiny CNN trained with an image, a defined scalar, a training selection, a weight and observers."""
    folder = tmp_path_factory.mktemp("workflows")
    path = folder / "train.root"
    with uproot.recreate(path) as f:
        f.mktree("tree", {k: (v.dtype, v.shape[1:]) for k, v in columns.items()})
        f["tree"].extend(columns)
    data = {"files": str(path), "tree": "tree", "images": {"branches": ["img"]}, "define": {"e2": "e * 2 + nhits"},
            "scalars": ["e2"], "selection": "nhits >= 1", "label": "label", "weight": "w",
            "observers": ["runnum", "e"]}
    cfg = {"data": data, "model": TINY_CNN, "task": {"kind": "classification"},
           "train": {"epochs": 1, "batch_size": 64, "seed": 1, "early_stopping": {"patience": None}}}
    result = physnn.train(cfg, out=folder / "run", progress=False)
    return result.run_dir, path


@pytest.fixture(scope="module")
def new_file(columns, tmp_path_factory) -> Path:
    """The same events written by PyROOT, as a physicist would, under other branch names and tree ``showers``."""
    ROOT = pytest.importorskip("ROOT")
    path = tmp_path_factory.mktemp("new") / "new.root"
    f = ROOT.TFile.Open(str(path), "RECREATE")
    t = ROOT.TTree("showers", "new showers")
    img = array.array("f", [0.0] * 64)
    buffers = {name: array.array(code, [0]) for name, code in
               (("energy", "f"), ("n_hits", "i"), ("truth", "i"), ("evt_w", "f"), ("RunNumber", "i"))}
    t.Branch("calo_img", img, "calo_img[8][8]/F")
    for name, buf in buffers.items():
        t.Branch(name, buf, f"{name}/{'F' if buf.typecode == 'f' else 'I'}")
    for i in range(N):
        img[:] = array.array("f", columns["img"][i].ravel())
        for old, new in MAP.items():
            if new in buffers:
                buffers[new][0] = columns[old][i].item()
        t.Fill()
    t.Write()
    f.Close()
    return path


def test_map_reads_every_branch_the_run_uses_under_its_new_name(run, new_file, columns):
    run_dir, train_file = run
    ref = physnn.predict(run_dir, train_file)
    res = physnn.predict(run_dir, new_file, mapping=MAP)
    np.testing.assert_allclose(res.arrays["prob"], ref.arrays["prob"], rtol=1e-6, atol=1e-7)
    assert set(res.arrays) == set(ref.arrays)  # the outputs keep the run's names: label, w, runnum, e
    assert not {"truth", "evt_w", "RunNumber", "energy"} & set(res.arrays)
    np.testing.assert_array_equal(res.arrays["label"], columns["label"])
    np.testing.assert_array_equal(res.arrays["true_class"], columns["label"])
    np.testing.assert_array_equal(res.arrays["runnum"], columns["runnum"])
    np.testing.assert_array_equal(res.arrays["w"], columns["w"])
    np.testing.assert_array_equal(res.arrays["in_selection"], columns["nhits"] >= 1)  # training cut, new names
    assert res.meta["mapping"] == MAP
    assert (res.meta["label"], res.meta["weight"]) == ("label", "w")
    assert set(np.unique(res.arrays["split"])) == {-1}  # another file: no training split


def test_map_on_the_command_line_repeatable_and_comma_separated(run, new_file, tmp_path):
    run_dir, train_file = run
    out = tmp_path / "p.root"
    result = runner.invoke(app, ["predict", str(run_dir), str(new_file), "--map", "img=calo_img,e=energy",
                                 "--map", "nhits=n_hits", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ref = physnn.predict(run_dir, train_file)
    with uproot.open(out) as f:
        got = f["predictions"].arrays(library="np")
        meta = json.loads(str(f["physnn_meta"]))
    np.testing.assert_allclose(got["score"], ref.arrays["score"], rtol=1e-6, atol=1e-7)
    assert "label" not in got  # not mapped: absent in this file, like any missing truth
    assert "runnum" not in got
    assert meta["mapping"] == {"img": "calo_img", "e": "energy", "nhits": "n_hits"}


def test_map_errors_are_one_line(run, new_file, tmp_path):
    run_dir, _ = run
    with pytest.raises(BranchError, match=r"new\.root:showers: no branch 'img'"):
        physnn.predict(run_dir, new_file)  # without a map: the usual missing-branch error
    with pytest.raises(ConfigError, match=r"--map image=calo_img: the run reads no branch 'image' "
                                          r"\(did you mean 'img'\?\); its branches: img, label, w, runnum, e, nhits$"):
        physnn.predict(run_dir, new_file, mapping={"image": "calo_img"})
    with pytest.raises(ConfigError, match=r"--map: 'img' and 'e' both map to 'calo_img'"):
        physnn.predict(run_dir, new_file, mapping=["img=calo_img, e=calo_img"])
    with pytest.raises(BranchError, match=r"new\.root:showers: no branch 'calo_imgs'"):
        physnn.predict(run_dir, new_file, mapping={**MAP, "img": "calo_imgs"})
    with pytest.raises(ConfigError, match=r"--map 'img': expected OLD=NEW"):
        physnn.predict(run_dir, new_file, mapping=["img"])
    with pytest.raises(ConfigError, match=r"--map e2=x: 'e2' is a column the run defines"):
        physnn.predict(run_dir, new_file, mapping={"e2": "x"})
    with pytest.raises(ConfigError, match=r"--map e=nhits: the run also reads 'nhits'"):
        physnn.predict(run_dir, new_file, mapping={"e": "nhits"})
    out = tmp_path / "p.root"
    result = runner.invoke(app, ["predict", str(run_dir), str(new_file), "--map", "image=calo_img", "--out", str(out)])
    assert result.exit_code == 2
    assert "the run reads no branch 'image'" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_aligned_output_has_every_entry_with_selected_and_fills(run, new_file, columns):
    run_dir, train_file = run
    cut = (columns["runnum"] >= 2) & (columns["e"] > 3)
    only = physnn.predict(run_dir, new_file, mapping=MAP, selection=CUT, step_size=50)
    np.testing.assert_array_equal(only.arrays["entry"], np.flatnonzero(cut))  # the default: selected entries only
    assert "selected" not in only.arrays
    res = physnn.predict(run_dir, new_file, mapping=MAP, selection=CUT, step_size=50, aligned=True)
    a = res.arrays
    assert (res.events, res.entries) == (int(cut.sum()), N)
    np.testing.assert_array_equal(a["entry"], np.arange(N))
    assert a["selected"].dtype == bool
    np.testing.assert_array_equal(a["selected"], cut)
    for key in ("prob", "score", "e"):  # floats: NaN outside the selection
        assert np.isnan(a[key][~cut]).all()
        np.testing.assert_array_equal(a[key][cut], only.arrays[key])
    for key in ("pred", "true_class", "label", "runnum", "in_selection"):  # integers: -1 outside
        assert (a[key][~cut] == -1).all()
        np.testing.assert_array_equal(a[key][cut], only.arrays[key])
    # on a training file every entry keeps its training split, selected or not
    full = physnn.predict(run_dir, train_file)
    al = physnn.predict(run_dir, train_file, selection="runnum >= 2 && e > 3", step_size=50, aligned=True)
    np.testing.assert_array_equal(al.arrays["split"], full.arrays["split"])
    assert set(np.unique(full.arrays["split"])) == {0, 1, 2}
    # without a selection an aligned output is the usual one, all selected
    plain = physnn.predict(run_dir, train_file, aligned=True)
    assert plain.arrays["selected"].all()
    np.testing.assert_array_equal(plain.arrays["prob"], full.arrays["prob"])


@pytest.fixture(scope="module")
def root_outputs(run, new_file, tmp_path_factory) -> Path:
    """In one folder: new.root, and its predictions with a selection, selected only (preds.root) and aligned."""
    run_dir, _ = run
    folder = tmp_path_factory.mktemp("join")
    (folder / "new.root").symlink_to(new_file)
    maps = [f"--map={k}={v}" for k, v in MAP.items()]
    for extra, out in (([], "preds.root"), (["--aligned"], "aligned.root")):
        result = runner.invoke(app, ["predict", str(run_dir), str(folder / "new.root"), *maps, "--selection", CUT,
                                     *extra, "--out", str(folder / out)])
        assert result.exit_code == 0, result.output
    assert "aligned with the input: 400 entries" in result.output
    return folder


def test_aligned_output_is_a_friend_of_the_input_in_root(root_outputs, monkeypatch):
    ROOT = pytest.importorskip("ROOT")
    monkeypatch.chdir(root_outputs)
    with uproot.open("aligned.root") as f:
        assert f["predictions"]["selected"].typename == "bool"
    # README: t->AddFriend("nn=predictions", "aligned.root")
    f = ROOT.TFile.Open("new.root")
    t = f.Get("showers")
    assert t.AddFriend("nn=predictions", "aligned.root")
    friend_entry = ROOT.TTreeFormula("friend_entry", "nn.entry", t)
    selected = ROOT.TTreeFormula("selected", "nn.selected", t)
    cut = ROOT.TTreeFormula("cut", CUT, t)
    assert t.GetEntries() == N
    for i in range(N):
        t.GetEntry(i)
        assert friend_entry.EvalInstance() == i
        assert bool(selected.EvalInstance()) == bool(cut.EvalInstance())
    assert t.Draw("nn.score", "nn.selected && energy > 3", "goff") == t.GetEntries(CUT) > 0  # README's Draw
    assert t.GetEntries(f"nn.selected != ({CUT})") == 0
    f.Close()


@pytest.mark.slow  # ROOT compiles the RDataFrame macro: ~10 s
def test_selected_only_output_joins_with_rdataframe_as_the_readme_says(root_outputs, monkeypatch, columns):
    ROOT = pytest.importorskip("ROOT")
    monkeypatch.chdir(root_outputs)
    with uproot.open("aligned.root") as f:
        aligned = f["predictions"].arrays(["selected", "score"], library="np")
    keep = aligned["selected"]
    # README: join.C, the RDataFrame join through entry (single-threaded)
    Path("join.C").write_text(JOIN_C)
    ROOT.gROOT.Macro("join.C")
    with uproot.open("joined.root") as g:
        joined = g["joined"].arrays(["energy", "score"], library="np")
    np.testing.assert_array_equal(joined["score"], aligned["score"][keep])
    np.testing.assert_array_equal(joined["energy"], columns["e"][keep])
    # README: the same join in PyROOT
    scope = {"ROOT": ROOT}
    exec(JOIN_PY, scope)
    got = scope["df"].AsNumpy(["energy", "score"])
    np.testing.assert_array_equal(got["score"], aligned["score"][keep])
    np.testing.assert_array_equal(got["energy"], columns["e"][keep])


#: the README's snippets, as written there
JOIN_C = r"""
void join() {
   ROOT::RDataFrame pred("predictions", "preds.root");
   auto entry = pred.Take<Long64_t>("entry");
   auto score = pred.Take<float>("score");
   ROOT::RDataFrame df("showers", "new.root");
   std::vector<float> score_of(*df.Count(), std::nanf(""));   // NaN: not predicted
   for (std::size_t i = 0; i < entry->size(); ++i) score_of[(*entry)[i]] = (*score)[i];
   df.Define("score", [&](ULong64_t i) { return score_of[i]; }, {"rdfentry_"})
     .Filter("!std::isnan(score)")
     .Snapshot("joined", "joined.root");
}
"""
JOIN_PY = """
pred = ROOT.RDataFrame("predictions", "preds.root").AsNumpy(["entry", "score"])
cols = ROOT.RDataFrame("showers", "new.root").AsNumpy(["energy"])
joined = {name: values[pred["entry"]] for name, values in cols.items()} | {"score": pred["score"]}
df = ROOT.RDF.FromNumpy(joined)
"""


def test_evaluate_judges_only_the_selected_rows_of_an_aligned_file(reg_run, showers_file, tmp_path):
    out = tmp_path / "aligned.root"
    res = physnn.predict(reg_run.run_dir, showers_file, selection="energy > 20", aligned=True, out=out)
    assert res.entries > res.events > 0
    judged = physnn.evaluate(out, split="all", plots=False, n_boot=10)
    assert judged.figures["events"] == res.events  # not the NaN rows outside the selection
    assert np.isfinite(judged.figures["regression"]["energy"]["rmse"])


def test_the_readme_holds_the_snippets_tested_here():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert JOIN_C.strip() in readme
    assert JOIN_PY.strip() in readme
    assert 't->AddFriend("nn=predictions", "aligned.root");' in readme
    assert 't->Draw("nn.score", "nn.selected && energy > 3");' in readme


def test_rename_expression_renames_branches_only():
    from physnn.inference.branch_map import rename_expression

    swapped = rename_expression("max(a) > 1e3 && b[0] != a || !c", {"a": "b", "b": "a", "max": "m"})
    assert swapped == "max(b) > 1e3 && a[0] != b || !c"  # a swap, functions and numbers untouched
    with pytest.raises(ConfigError, match=r"--map a=jet\.pt: 'a' is used in the expression"):
        rename_expression("a > 1", {"a": "jet.pt"})
