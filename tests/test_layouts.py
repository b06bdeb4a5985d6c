"""Layouts made by ROOT: leaf lists, objects with members, classes uproot cannot read, friend trees.

Files are written by PyROOT the way physicists write them and read through physnn's public API
(``physnn.load``, ``physnn.stream``, ``physnn inspect``). Skipped where ROOT is not importable.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ROOT = pytest.importorskip("ROOT")

import physnn  # noqa: E402
from physnn.cli import app  # noqa: E402
from physnn.errors import BranchError, ConfigError, TreeError  # noqa: E402
from physnn.io.read import available_names, plan_chunks  # noqa: E402

runner = CliRunner()
N = 30

ROOT.gInterpreter.Declare("""
#ifndef PHYSNN_LAYOUT_CLASSES
#define PHYSNN_LAYOUT_CLASSES
class PhysnnHit { public: float e = 0; int id = 0; std::vector<float> cells; };
struct PhysnnDeep { std::vector<std::vector<PhysnnHit>> vv; };
class PhysnnInfo { public: int run = 0; float lumi = 0; std::vector<PhysnnHit> hits; };
#endif
""")


def _all(cfg: dict) -> physnn.TensorData:
    """Every entry in the training split, unstandardised, in file order."""
    cfg = {**cfg, "split": {"val": 0.0, "test": 0.0}, "standardize": {"method": "none"}}
    data = physnn.load(cfg).train
    assert np.all(np.diff(data.entry) > 0)
    return data


def _cli_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pos`` (leaf list x/F:y/F:z/F), ``jets`` (std::vector<TLorentzVector>), ``hit`` and ``trk.`` (split
    classes), ``n``."""
    path = tmp_path_factory.mktemp("layouts") / "layouts.root"
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("events", "events")
    pos = np.zeros(3, dtype=np.float32)
    n = np.zeros(1, dtype=np.int32)
    jets = ROOT.std.vector(ROOT.TLorentzVector)()
    hit = ROOT.PhysnnHit()
    track = ROOT.PhysnnHit()
    tree.Branch("pos", pos, "x/F:y/F:z/F")
    tree.Branch("n", n, "n/I")
    with warnings.catch_warnings():  # ROOT: "Using split mode on a class: TLorentzVector with a custom Streamer"
        warnings.simplefilter("ignore", RuntimeWarning)
        tree.Branch("jets", jets)
    tree.Branch("hit", hit)
    tree.Branch("trk.", track)  # a trailing dot: ROOT names the sub-branches trk.e, trk.id, trk.cells
    for i in range(N):
        pos[:] = (i, 2 * i, 3 * i - 10)
        n[0] = i % 3 + 1
        jets.clear()
        for k in range(n[0]):
            jets.push_back(ROOT.TLorentzVector(i + k, -k, 0.5 * k, 100.0 + 10 * i + k))
        hit.e, hit.id = 0.25 * i, i % 2
        track.e = -i
        hit.cells.clear()
        for k in range(i % 4):
            hit.cells.push_back(k)
        tree.Fill()
    tree.Write()
    f.Close()
    return path


@pytest.fixture(scope="module")
def unreadable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``e`` (float) next to classes uproot cannot deserialise: a memberwise std::vector<PhysnnHit>, PhysnnDeep."""
    path = tmp_path_factory.mktemp("odd") / "custom.root"
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("t", "t")
    e = np.zeros(1, dtype=np.float32)
    hits = ROOT.std.vector["PhysnnHit"]()
    deep = ROOT.PhysnnDeep()
    tree.Branch("e", e, "e/F")
    tree.Branch("hits", hits, 32000, 0)
    tree.Branch("deep", deep, 32000, 0)
    for i in range(N):
        e[0] = i
        hits.push_back(ROOT.PhysnnHit())
        tree.Fill()
    tree.Write()
    f.Close()
    return path


@pytest.fixture(scope="module")
def split_info(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``info``, a class split one level (``info.run``, ``info.lumi``, ``info.hits``) whose member ``info.hits``
    (a std::vector<PhysnnHit> written member-wise) uproot cannot deserialise, next to ``x``."""
    path = tmp_path_factory.mktemp("split") / "info.root"
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("events", "events")
    x = np.zeros(1, dtype=np.float32)
    info = ROOT.PhysnnInfo()
    tree.Branch("x", x, "x/F")
    tree.Branch("info", info, 32000, 1)
    for i in range(N):
        x[0], info.run, info.lumi = i, i, 0.5 * i
        info.hits.push_back(ROOT.PhysnnHit())
        tree.Fill()
    tree.Write()
    f.Close()
    return path


def _write_flat(path: Path, tree: str, columns: dict[str, np.ndarray], friend: tuple[str, str] | None = None) -> None:
    """A TTree of ``name/F`` branches; ``friend=(tree, file)`` saves an AddFriend with it."""
    f = ROOT.TFile(str(path), "RECREATE")
    t = ROOT.TTree(tree, tree)
    buffers = {name: np.zeros(1, dtype=np.float32) for name in columns}
    for name, buf in buffers.items():
        t.Branch(name, buf, f"{name}/F")
    for i in range(len(next(iter(columns.values())))):
        for name, buf in buffers.items():
            buf[0] = columns[name][i]
        t.Fill()
    if friend is not None:
        t.AddFriend(*friend)
    t.Write()
    f.Close()


# --- leaf lists and objects with members -------------------------------------------------------------------------


def test_leaf_list_members_are_scalars_observers_weights_and_define_inputs(layouts):
    data = _all({"files": str(layouts), "scalars": ["pos.x", "pos.y"], "weight": "hit.e",
                 "observers": ["pos.z"], "define": {"r": "hypot(pos.x, pos.y)"}, "targets": ["r"],
                 "selection": "pos.z > -5 && hit.id == 0"})
    kept = [i for i in range(N) if 3 * i - 10 > -5 and i % 2 == 0]
    np.testing.assert_array_equal(data.entry, kept)
    np.testing.assert_array_equal(data.inputs["scalars"].numpy(), np.array([[i, 2 * i] for i in kept], np.float32))
    np.testing.assert_allclose(data.target.numpy()[:, 0], np.hypot(kept, 2 * np.array(kept)), rtol=1e-6)
    np.testing.assert_array_equal(data.weight.numpy(), 0.25 * np.array(kept, np.float32))
    np.testing.assert_array_equal(np.asarray(data.observers["pos.z"]), 3 * np.array(kept) - 10)


def test_vector_of_tlorentzvector_members_are_a_sequence(layouts):
    data = _all({"files": str(layouts), "label": "hit.id", "define": {"lead_e": "jets.fE[0]"},
                 "targets": ["lead_e"], "sequence": {"features": ["jets.fE", "jets.fP.fX", "jets.fP.fY"],
                                                     "max_length": 3}, "scalars": ["n", "hit.e", "trk.e"]})
    seq, mask = data.inputs["sequence"].numpy(), data.inputs["mask"].numpy()
    np.testing.assert_array_equal(mask.sum(1), [i % 3 + 1 for i in range(N)])
    for i in range(N):
        k = np.arange(i % 3 + 1)
        np.testing.assert_array_equal(seq[i, k], np.stack([100.0 + 10 * i + k, i + k, -k], axis=1))
    np.testing.assert_array_equal(data.target.numpy()[:, 0], 100.0 + 10 * np.arange(N))
    np.testing.assert_array_equal(data.label.numpy(), np.arange(N) % 2)
    np.testing.assert_array_equal(data.inputs["scalars"].numpy()[:, 2], -np.arange(N))


def test_a_branch_with_members_named_whole_is_one_line_naming_its_members(layouts, tmp_path):
    with pytest.raises(BranchError, match=r"'pos' holds a record.*pos\.x, pos\.y, pos\.z"):
        _all({"files": str(layouts), "scalars": ["pos"]})
    with pytest.raises(BranchError, match=r"'jets' holds a record.*: jets\.fP\.fX, jets\.fP\.fY, jets\.fP\.fZ, "
                                          r"jets\.fE$"):
        _all({"files": str(layouts), "sequence": {"features": ["jets"]}})
    with pytest.raises(BranchError, match=r"'hit' holds a record.*hit\.e, hit\.id, hit\.cells"):
        _all({"files": str(layouts), "scalars": ["hit"]})
    with pytest.raises(BranchError, match=r"'trk' holds a record.*name one of them: trk\.e, trk\.id, trk\.cells"):
        _all({"files": str(layouts), "scalars": ["trk"]})
    config = tmp_path / "d.yaml"
    config.write_text(f"files: {layouts}\nscalars: [pos.w]\n")
    assert "no branch 'pos.w' (did you mean" in _cli_error(["load", str(config)])


def test_inspect_lists_members_as_their_own_rows(layouts):
    (tree,) = physnn.inspect(layouts)
    rows = {r.name: r for r in tree.branches}
    assert {"pos", "jets", "hit", "trk", "trk."}.isdisjoint(rows)
    assert rows["trk.e"].role == "scalar"
    assert (rows["pos.x"].type, rows["pos.x"].role) == ("float32", "scalar")
    assert (rows["jets.fE"].role, rows["jets.fP.fX"].role) == ("sequence", "sequence")
    assert rows["jets.fE"].collection == "jets"
    assert (rows["hit.e"].role, rows["hit.cells"].role) == ("scalar", "sequence")
    result = runner.invoke(app, ["inspect", str(layouts)])
    assert result.exit_code == 0, result.output
    assert any(line.split("│")[1:4] and [c.strip() for c in line.split("│")[1:4]] == ["pos.x", "float32", "scalar"]
               for line in result.output.splitlines()), result.output


def test_members_of_rntuple_records_are_columns_too(tmp_path):
    import awkward as ak
    import uproot

    path = tmp_path / "records.root"
    records = ak.Array({"pos": [{"x": float(i), "y": -float(i)} for i in range(N)],
                        "jets": [[{"pt": 10.0 * i + k} for k in range(i % 3)] for i in range(N)]})
    with uproot.recreate(path) as f:
        f.mkrntuple("nt", records)
    data = _all({"files": str(path), "scalars": ["pos.y"], "define": {"lead": "max(jets.pt)"},
                 "selection": "num(jets.pt) > 0", "targets": ["lead"]})
    kept = [i for i in range(N) if i % 3]
    np.testing.assert_array_equal(data.inputs["scalars"].numpy()[:, 0], -np.array(kept))
    np.testing.assert_array_equal(data.target.numpy()[:, 0], [10.0 * i + i % 3 - 1 for i in kept])
    (tree,) = physnn.inspect(path)
    assert [r.name for r in tree.branches] == ["pos.x", "pos.y", "jets.pt"]


# --- branches uproot cannot deserialise ----------------------------------------------------------------------------


def test_inspect_names_unreadable_branches_and_lists_the_others(unreadable):
    (tree,) = physnn.inspect(unreadable)
    rows = {r.name: r for r in tree.branches}
    assert rows["e"].role == "scalar"
    assert rows["hits"].role == rows["deep"].role == "unreadable"
    assert "memberwise" in rows["hits"].note
    assert "PhysnnDeep" in rows["deep"].note
    result = runner.invoke(app, ["inspect", str(unreadable)])
    assert result.exit_code == 0, result.output
    assert "unreadable" in result.output
    assert "truncated" not in result.output


def test_reading_an_unreadable_branch_is_one_line_that_does_not_blame_the_file(unreadable, tmp_path):
    assert len(_all({"files": str(unreadable), "scalars": ["e"]})) == N  # the other branches read fine
    for name in ("hits.e", "deep.vv.e"):
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"files: {unreadable}\nscalars: [e]\nobservers: [{name}]\n")
        line = _cli_error(["load", str(config)])
        branch = name.split(".")[0]
        assert f"branch {branch!r}" in line, line
        assert "cannot be read" in line, line
        assert "truncated" not in line, line
        assert "corrupt" not in line, line


def test_an_unreadable_member_of_a_split_class_is_named_not_its_parent(split_info, tmp_path):
    """Issue 29: inspect listed ``info`` as unreadable (its readable members info.run and info.lumi beside it),
    and reading the member blamed ``branch 'info'``: the row and the message name ``info.hits``."""
    (tree,) = physnn.inspect(split_info)
    rows = {r.name: r for r in tree.branches}
    assert "info" not in rows
    assert rows["info.hits"].role == "unreadable"
    assert "memberwise" in rows["info.hits"].note
    assert (rows["info.run"].role, rows["info.lumi"].role, rows["x"].role) == ("scalar",) * 3
    config = tmp_path / "d.yaml"
    config.write_text(f"files: {split_info}\nscalars: [x, info.run]\nobservers: [info.hits.e]\n")
    line = _cli_error(["load", str(config)])
    assert "branch 'info.hits' (std::vector<PhysnnHit>) cannot be read" in line, line
    assert len(_all({"files": str(split_info), "scalars": ["x", "info.run", "info.lumi"]})) == N


@pytest.mark.parametrize("name", ["jets", "jets.fP"])
def test_a_record_named_whole_names_the_columns_that_read(layouts, name):
    """Issue 29: ``jets`` (std::vector<TLorentzVector>) pointed at ``jets.fP``, itself a record that is refused; the
    hint names the numbers inside (``jets.fP.fX`` ...), and each of them reads as a sequence feature."""
    with pytest.raises(BranchError, match=f"'{re.escape(name)}' holds a record") as err:
        _all({"files": str(layouts), "sequence": {"features": [name]}})
    named = str(err.value).split(": ")[-1].split(", ")
    assert sorted(named) == (["jets.fE"] if name == "jets" else []) + ["jets.fP.fX", "jets.fP.fY", "jets.fP.fZ"]
    data = _all({"files": str(layouts), "sequence": {"features": named, "max_length": 3}})
    assert data.inputs["sequence"].shape == (N, 3, len(named))


def test_read_errors_are_diagnosed_from_the_exception():
    from physnn.io.files import describe_read_error

    assert "truncated or corrupt" in describe_read_error("a.root", OSError("expected Chunk of length 100"))
    assert "truncated or corrupt" in describe_read_error("a.root", __import__("zlib").error("incorrect data"))
    for err in (NotImplementedError("memberwise serialization"), TypeError("odd")):
        text = describe_read_error("a.root", err)
        assert text.startswith("a.root: ")
        assert "truncated" not in text
        assert "corrupt" not in text


# --- friend trees ------------------------------------------------------------------------------------------------


@pytest.fixture
def friend_pair(tmp_path: Path) -> Path:
    """``data/main.root:t`` (x) and ``data/weights.root:w`` (weight, cls), entry-aligned."""
    folder = tmp_path / "data"
    folder.mkdir()
    x = np.arange(N, dtype=np.float32)
    _write_flat(folder / "main.root", "t", {"x": x})
    _write_flat(folder / "weights.root", "w", {"weight": 0.5 * x + 1, "cls": x % 2})
    return folder


def test_a_friend_from_the_config_feeds_weight_label_observer_and_define(friend_pair, tmp_path):
    config = tmp_path / "cfg" / "d.yaml"
    config.parent.mkdir()
    config.write_text("files: ../data/main.root\nfriends: {tree: w, files: ../data/weights.root}\n"
                      "scalars: [x]\nweight: weight\nlabel: w.cls\nobservers: [w.weight]\n"
                      "define: {xw: x * w.weight}\ntargets: [xw]\nselection: w.cls == 1\n"
                      "split: {val: 0, test: 0}\nstandardize: {method: none}\n")
    data = physnn.load(config).train
    kept = np.arange(1, N, 2)
    np.testing.assert_array_equal(np.sort(data.entry), kept)
    order = np.argsort(data.entry)
    np.testing.assert_array_equal(data.weight.numpy()[order], 0.5 * kept + 1)
    np.testing.assert_array_equal(data.target.numpy()[order, 0], kept * (0.5 * kept + 1))
    np.testing.assert_array_equal(np.asarray(data.observers["w.weight"])[order], 0.5 * kept + 1)


def test_a_friend_is_read_over_the_same_entries_when_streaming(friend_pair):
    cfg = {"files": str(friend_pair / "main.root"), "scalars": ["x"], "weight": "weight",
           "friends": [{"tree": "w", "files": str(friend_pair / "weights.root")}],
           "entry_start": 3, "standardize": {"method": "none"}}
    transform = physnn.fit(cfg)
    parts = list(physnn.stream(cfg, transform, split=None, step_size=4))
    assert len(parts) > 3
    x = np.concatenate([p.inputs["scalars"].numpy()[:, 0] for p in parts])
    weight = np.concatenate([p.weight.numpy() for p in parts])
    np.testing.assert_array_equal(x, np.arange(3, N))
    np.testing.assert_array_equal(weight, 0.5 * x + 1)


def test_a_friend_with_other_entry_counts_is_one_line_naming_both(friend_pair, tmp_path):
    _write_flat(friend_pair / "short.root", "w", {"weight": np.ones(N - 2, np.float32)})
    config = tmp_path / "d.yaml"
    config.write_text(f"files: {friend_pair / 'main.root'}\nscalars: [x]\nweight: weight\n"
                      f"friends: [{{tree: w, files: {friend_pair / 'short.root'}}}]\n")
    line = _cli_error(["load", str(config)])
    assert "short.root:w has 28 entries" in line, line
    assert "main.root:t has 30" in line, line
    with pytest.raises(ConfigError, match=r"friends\[0\]: 2 friend file\(s\) for 1 data file"):
        physnn.load({"files": str(friend_pair / "main.root"), "scalars": ["x"],
                     "friends": {"tree": "w", "files": [str(friend_pair / "weights.root")] * 2}})


def test_a_friend_saved_with_the_tree_by_root_is_read_and_inspected(friend_pair, tmp_path, monkeypatch):
    x = np.arange(N, dtype=np.float32)
    monkeypatch.chdir(friend_pair)  # ROOT opens the friend from the working folder and saves its name as given
    _write_flat(friend_pair / "with_friend.root", "t", {"x": x}, friend=("w", "weights.root"))
    monkeypatch.chdir(tmp_path)  # physnn finds it next to the data file
    data = _all({"files": str(friend_pair / "with_friend.root"), "scalars": ["x"], "weight": "w.weight"})
    np.testing.assert_array_equal(data.weight.numpy(), 0.5 * x + 1)
    chunk, obj = next(plan_chunks(friend_pair / "with_friend.root", None, []))
    assert {"x", "weight", "w.weight", "w.cls"} <= available_names(chunk, obj)  # what predictions may carry
    trees = {t.name: t for t in physnn.inspect(friend_pair / "with_friend.root")}
    rows = {r.name: r.role for r in trees["t"].branches}
    assert rows == {"x": "scalar", "w.weight": "scalar", "w.cls": "scalar"}
    result = runner.invoke(app, ["inspect", str(friend_pair / "with_friend.root")])
    assert result.exit_code == 0, result.output
    assert "friend trees saved with it: w" in result.output
    (friend_pair / "weights.root").unlink()  # the friend is gone: its branches are not, silently
    with pytest.raises(BranchError, match=r"no branch 'w\.weight'.*friend tree 'w'.*cannot be found"):
        _all({"files": str(friend_pair / "with_friend.root"), "scalars": ["x"], "weight": "w.weight"})
    assert len(_all({"files": str(friend_pair / "with_friend.root"), "scalars": ["x"]})) == N


def test_a_friend_tree_in_the_same_file(tmp_path):
    path = tmp_path / "both.root"
    f = ROOT.TFile(str(path), "RECREATE")
    for name, values in (("t", np.arange(N)), ("labels", np.arange(N) % 3)):
        tree = ROOT.TTree(name, name)
        buf = np.zeros(1, dtype=np.float32)
        tree.Branch("v" if name == "t" else "y", buf, f"{'v' if name == 't' else 'y'}/F")
        for value in values:
            buf[0] = value
            tree.Fill()
        tree.Write()
    f.Close()
    data = _all({"files": str(path), "tree": "t", "friends": [{"tree": "labels"}], "scalars": ["v"],
                 "label": "labels.y"})
    np.testing.assert_array_equal(data.label.numpy(), np.arange(N) % 3)
    with pytest.raises(TreeError, match="no TTree or RNTuple named 'lables'"):
        _all({"files": str(path), "tree": "t", "friends": [{"tree": "lables"}], "scalars": ["v"]})


# --- predictions keep member and friend columns ------------------------------------------------------------------

TINY_GRU = {"name": "gru", "params": {"hidden_size": 4, "head": [{"type": "dropout", "rate": 0.1}]}}


def test_predictions_keep_member_and_friend_truth_and_observers(layouts, tmp_path):
    import uproot

    x = np.arange(N, dtype=np.float32)
    _write_flat(tmp_path / "w.root", "w", {"weight": 0.5 * x + 1, "cls": x % 2})
    data = {"files": str(layouts), "sequence": {"features": ["jets.fE"], "max_length": 4}, "scalars": ["pos.x"],
            "targets": ["w.weight"], "observers": ["pos.z", "hit.e", "cls"],
            "friends": {"tree": "w", "files": str(tmp_path / "w.root")}, "split": {"val": 0.2, "test": 0.2}}
    cfg = {"data": data, "model": TINY_GRU, "task": {"kind": "regression"},
           "train": {"epochs": 1, "batch_size": 8, "seed": 1, "early_stopping": {"patience": None}}}
    run = physnn.train(cfg, out=tmp_path / "run", progress=False).run_dir

    def columns(path: Path) -> dict[str, np.ndarray]:
        with uproot.open(path) as f:
            return f[f.keys(filter_classname="TTree", cycle=False)[0]].arrays(library="np")

    physnn.predict(run, out=tmp_path / "p.root")  # the training files, with their friends
    got = columns(tmp_path / "p.root")
    assert {"pos.z", "hit.e", "cls", "w.weight"} <= set(got), sorted(got)
    np.testing.assert_array_equal(got["pos.z"], 3 * x - 10)
    np.testing.assert_array_equal(got["hit.e"], 0.25 * x)
    np.testing.assert_array_equal(got["cls"], x % 2)
    np.testing.assert_array_equal(got["w.weight"], 0.5 * x + 1)
    # other files: the training friend files belong to the training files, so their columns are not guessed
    physnn.predict(run, layouts, out=tmp_path / "q.root")
    got = columns(tmp_path / "q.root")
    assert {"pos.z", "hit.e"} <= set(got), sorted(got)
    assert not {"cls", "w.weight"} & set(got)
    assert "w.weight_pred" in got
