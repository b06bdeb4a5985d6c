"""Bad input: one clear line naming the file/tree/branch/key, exit code 2, nothing half-written."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import BranchError, ConfigError, DataError, InputFileError, OutputError, TreeError

runner = CliRunner()


def cli_error(args: list[str]) -> str:
    """Run the CLI, check it failed cleanly with exit code 2, return the message."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = result.output.strip()
    assert text.startswith("error:"), text
    assert len(text.splitlines()) == 1, text
    return text


def write_yaml(path, text: str):
    path.write_text(text)
    return str(path)


def test_missing_file(tmp_path):
    msg = cli_error(["inspect", str(tmp_path / "nope.root")])
    assert "nope.root: no such file" in msg


def test_glob_without_match(tmp_path):
    with pytest.raises(InputFileError, match="matches no file"):
        physnn.load({"files": str(tmp_path / "*.root"), "scalars": "x"})


def test_not_a_root_file(tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("this is not ROOT\n" * 20)
    msg = cli_error(["inspect", str(path)])
    assert "not a ROOT file" in msg
    assert "notes.root" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.root"
    path.touch()
    assert "the file is empty" in cli_error(["inspect", str(path)])


def test_truncated_file(tmp_path, showers_file):
    path = tmp_path / "truncated.root"
    data = showers_file.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    cfg = write_yaml(tmp_path / "d.yaml", f"files: {path}\nimages: {{branches: [image]}}\nlabel: label\n")
    msg = cli_error(["load", cfg])
    assert "truncated.root" in msg
    assert "truncated or corrupt" in msg


def test_no_tree(tmp_path):
    path = tmp_path / "hist.root"
    with uproot.recreate(path) as f:
        f["h"] = np.histogram(np.arange(10), bins=5)
    with pytest.raises(TreeError, match=r"hist\.root: no TTree or RNTuple"):
        physnn.load({"files": str(path), "scalars": "x"})


def test_ambiguous_and_misspelt_tree(tmp_path):
    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        f["signal"] = {"x": np.arange(5.0)}
        f["background"] = {"x": np.arange(5.0)}
    cfg = write_yaml(tmp_path / "d.yaml", f"files: {path}\nscalars: [x]\n")
    msg = cli_error(["load", cfg])
    assert "several trees" in msg
    assert "'signal'" in msg
    with pytest.raises(TreeError, match="did you mean 'signal'"):
        physnn.load({"files": str(path), "tree": "signl", "scalars": "x"})


def test_missing_branch_suggests(showers_file, tmp_path):
    cfg = write_yaml(tmp_path / "d.yaml", f"files: {showers_file}\nimages: {{branches: [imag]}}\n")
    msg = cli_error(["load", cfg])
    assert "showers.root:showers: no branch 'imag' (did you mean 'image'?)" in msg


def test_wrong_shape(write_root):
    path = write_root({"cells": np.zeros((5, 64), np.float32)})
    expected = r"branch 'cells' has shape \[64\] per event, which does not fit shape \[5, 5\]"
    with pytest.raises(BranchError, match=expected):
        physnn.load({"files": str(path), "images": {"branches": "cells", "shape": [5, 5]}})


def test_jagged_where_fixed_expected(events_file):
    with pytest.raises(BranchError, match=r"branch 'part_pt' is jagged.*give shape"):
        physnn.load({"files": str(events_file), "images": {"branches": "part_pt"}})
    with pytest.raises(BranchError, match="expected 16 for shape"):
        physnn.load({"files": str(events_file), "images": {"branches": "part_pt", "shape": [4, 4]}})


def test_scalar_where_sequence_expected(events_file):
    with pytest.raises(BranchError, match="branch 'mass' holds one number per event, expected a jagged"):
        physnn.load({"files": str(events_file), "sequence": {"features": ["part_pt", "mass"]}})


def test_jagged_where_scalar_expected(events_file):
    with pytest.raises(BranchError, match="expected one number per event as a scalar"):
        physnn.load({"files": str(events_file), "scalars": ["part_pt"]})


def test_nan_in_inputs_cli(write_root, tmp_path):
    img = np.zeros((10, 4, 4), np.float32)
    img[2, 1, 1] = np.nan
    path = write_root({"img": img})
    cfg = write_yaml(tmp_path / "d.yaml", f"files: {path}\nimages: {{branches: [img]}}\n")
    msg = cli_error(["load", cfg])
    assert "branch 'img' has 1 NaN/inf values in 1 events" in msg
    result = runner.invoke(app, ["load", cfg, "--set", "nonfinite=drop"])
    assert result.exit_code == 0, result.output
    assert "dropped 1 with NaN/inf" in result.output


def test_empty_selection(showers_file):
    with pytest.raises(DataError, match="the selection 'energy > 1000' keeps no event of 600"):
        physnn.load({"files": str(showers_file), "images": {"branches": "image"}, "selection": "energy > 1000"})


def test_unknown_config_key(tmp_path, showers_file):
    cfg = write_yaml(tmp_path / "d.yaml", f"files: {showers_file}\nimages: {{branches: [image]}}\nlable: label\n")
    msg = cli_error(["load", cfg])
    assert "d.yaml: unknown key 'lable' (did you mean 'label'?)" in msg
    nested = write_yaml(tmp_path / "n.yaml", f"files: {showers_file}\nimages: {{branches: [image]}}\n"
                                             "split: {seeed: 3}\n")
    assert "unknown key 'split.seeed' (did you mean 'seed'?)" in cli_error(["load", nested])


def test_bad_config_values(tmp_path):
    assert "missing required key 'files'" in cli_error(["load", write_yaml(tmp_path / "a.yaml", "scalars: [x]\n")])
    assert "not valid YAML" in cli_error(["load", write_yaml(tmp_path / "b.yaml", "files: [a\n")])
    assert "no such config file" in cli_error(["load", str(tmp_path / "missing.yaml")])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        physnn.load({"files": "x.root", "scalars": "x"}, overrides=["seed"])


def test_bad_simulator_options(tmp_path):
    out = str(tmp_path / "s.root")
    assert "unknown particle 'kaon'" in cli_error(["simulate", "showers", "--out", out, "--particles", "e-,kaon"])
    assert "--energy" in cli_error(["simulate", "showers", "--out", out, "--energy", "a:b"])
    assert "--compression 'gzip'" in cli_error(["simulate", "showers", "--out", out, "--compression", "gzip"])
    assert not (tmp_path / "s.root").exists()


def test_output_exists_requires_overwrite(tmp_path):
    out = tmp_path / "s.root"
    assert runner.invoke(app, ["simulate", "events", "-n", "10", "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    msg = cli_error(["simulate", "events", "-n", "20", "--out", str(out)])
    assert "the output exists; pass --overwrite" in msg
    assert out.read_bytes() == before
    result = runner.invoke(app, ["simulate", "events", "-n", "20", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0
    with uproot.open(out) as f:
        assert f["events"].num_entries == 20


def test_output_folder_missing_is_created_but_not_a_file(tmp_path):
    """Issue 16: missing parent folders are created (README commands in a fresh folder); a file in the way is
    one line."""
    result = runner.invoke(app, ["simulate", "events", "-n", "20", "--out", str(tmp_path / "no" / "such" / "s.root")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "no" / "such" / "s.root").is_file()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert "is a file, not a folder" in cli_error(["simulate", "events", "--out", str(blocker / "s.root")])
    assert "is a directory" in cli_error(["simulate", "events", "--out", str(tmp_path)])


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    from physnn import api
    from physnn.simulation import iter_showers

    def broken(n, cfg=None, *, seed=0):
        it = iter_showers(n, cfg, seed=seed)
        yield next(it)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(api, "iter_showers", broken)
    out = tmp_path / "s.root"
    with pytest.raises(RuntimeError, match="disk on fire"):
        physnn.simulate("showers", out, events=5000)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_failure_keeps_old_file(tmp_path, monkeypatch, showers_file):
    from physnn import api

    out = tmp_path / "s.root"
    shutil.copy(showers_file, out)
    before = out.read_bytes()

    def broken(n, cfg=None, *, seed=0):
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr(api, "iter_showers", broken)
    with pytest.raises(KeyboardInterrupt):
        physnn.simulate("showers", out, events=10, overwrite=True)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.root"]


def test_output_error_type(tmp_path):
    (tmp_path / "x.root").write_text("")
    with pytest.raises(OutputError):
        physnn.simulate("events", tmp_path / "x.root", events=5)


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.2, 0.5, 0.9])
def test_inspect_and_load_of_a_file_cut_anywhere_is_one_line(showers_file, tmp_path, fraction):
    """Issue 16: a file truncated at any byte: one line naming it, exit 2, never a traceback."""
    data = showers_file.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[:max(1, int(len(data) * fraction))])
    config = tmp_path / "data.yaml"
    config.write_text(f"files: {cut}\nimages: {{branches: [image]}}\n")
    for args in (["inspect", str(cut)], ["load", str(config)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert str(cut) in lines[0]
        assert "Traceback" not in result.output


def test_a_file_without_a_tree_says_what_it_holds(tmp_path):
    import uproot

    path = tmp_path / "hist.root"
    with uproot.recreate(path) as f:
        f["h"] = np.histogram(np.arange(10))
    msg = cli_error(["inspect", str(path)])
    assert "no TTree or RNTuple in the file; it holds TH1D 'h'" in msg


def test_an_unforeseen_error_is_one_line_with_a_hint_and_debug_shows_it(monkeypatch, showers_file):
    from physnn import api

    def broken(*args, **kwargs):
        raise ValueError("something physnn did not foresee")

    monkeypatch.setattr(api, "inspect", broken)
    monkeypatch.setenv("PHYSNN_DEBUG", "0")  # restored after the test, also when --debug sets it
    result = runner.invoke(app, ["inspect", str(showers_file)])
    assert result.exit_code == 2
    assert "unexpected ValueError: something physnn did not foresee" in result.output
    assert "--debug" in result.output
    assert "Traceback" not in result.output
    debug = runner.invoke(app, ["--debug", "inspect", str(showers_file)])
    assert isinstance(debug.exception, ValueError)


def _small_tree_files(tmp_path):
    """A TTree and an RNTuple file written by uproot, a hundred entries each."""
    ttree, rntuple = tmp_path / "ttree.root", tmp_path / "rntuple.root"
    with uproot.recreate(ttree) as f:
        f.mktree("t", {"x": np.float32, "v": "var * float32"})
        f["t"].extend({"x": np.arange(100, dtype=np.float32), "v": [[1.0] * (i % 3) for i in range(100)]})
    with uproot.recreate(rntuple) as f:
        f["t"] = {"x": np.arange(100, dtype=np.float32), "y": np.arange(100)}
    return ttree, rntuple


def test_a_file_cut_inside_its_tree_header_says_truncated_or_corrupt(tmp_path):
    """Issue 29: a file cut inside the tree's streamed header (the RNTuple's here) said "unexpected OSError:
    expected Chunk of length 148"; every cut after the file's header is "truncated or corrupt", naming the file,
    for inspect and for reading (the check is where physnn opens a file)."""
    cut = tmp_path / "cut.root"
    for whole in _small_tree_files(tmp_path):
        data = whole.read_bytes()
        header_of_t = uproot.open(whole).key("t").data_cursor.index  # where the tree object's bytes start
        for end in sorted({*range(header_of_t, header_of_t + 60, 5), *range(100, len(data), len(data) // 40)}):
            cut.write_bytes(data[:end])
            for call in (physnn.inspect, lambda p: physnn.load({"files": str(p), "tree": "t", "scalars": ["x"]})):
                with pytest.raises(InputFileError, match="truncated or corrupt") as err:
                    call(cut)
                assert str(cut) in str(err.value), (whole.name, end)
    cut.write_bytes(data[:header_of_t + 20])
    assert f"{cut}: the file is truncated or corrupt" in cli_error(["inspect", str(cut)])


def test_an_output_folder_that_cannot_be_created_is_one_line(tmp_path, showers_file):
    """Issue 29: "unexpected FileNotFoundError" (or NotADirectoryError, OSError) when an output folder cannot be
    made; every writer (ROOT outputs, run folders, report folders) says "cannot create output folder ..."."""
    import os
    import re

    from conftest import run_config

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    long_name = tmp_path / ("x" * 300)  # longer than a file name may be
    msg = cli_error(["simulate", "showers", "-n", "50", "-o", str(long_name / "s.root")])
    assert f"cannot create output folder {long_name}: File name too long" in msg
    if os.access("/proc", os.W_OK):  # as root /proc looks writable, yet no folder can be made in it
        msg = cli_error(["simulate", "showers", "-n", "50", "-o", "/proc/physnn-test/s.root"])
        assert "cannot create output folder /proc/physnn-test: No such file or directory" in msg
    is_a_file = f": {re.escape(str(blocker))} is a file, not a folder"
    with pytest.raises(OutputError, match=f"cannot create output folder {re.escape(str(blocker / 'run'))}{is_a_file}"):
        physnn.train(run_config(showers_file, epochs=1), out=blocker / "run", progress=False)
    with pytest.raises(OutputError, match=f"cannot create output folder {re.escape(str(blocker / 'cmp'))}{is_a_file}"):
        physnn.compare(showers_file, showers_file, out=blocker / "cmp", classifier=(), plots=False)
    assert "cannot create output folder" in cli_error(["compare", str(showers_file), str(showers_file),
                                                       "-o", str(long_name / "cmp"), "--classifier", "none"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_an_rntuple_with_damaged_header_or_footer_is_one_line(tmp_path):
    """uproot reads an RNTuple's header and footer only when asked for its entries: damaged bytes there were an
    "unexpected AssertionError/DeserializationError"; they are said where the tree is opened, naming the file."""
    _, rntuple = _small_tree_files(tmp_path)
    data = rntuple.read_bytes()
    damaged = tmp_path / "damaged.root"
    anchor = uproot.open(rntuple)["t"]
    start = anchor.member("fSeekHeader")
    end = anchor.member("fSeekFooter") + anchor.member("fNBytesFooter")
    said = []
    for offset in range(start, end, 8):
        damaged.write_bytes(data[:offset] + b"\xff\xff\xff\xff" + data[offset + 4:])
        said.append(_what_inspect_says(damaged))  # anything but an InputFileError fails the test
    assert all(str(damaged) in text for text in said if text)
    assert sum("truncated or corrupt" in (text or "") for text in said) > len(said) / 2


def _what_inspect_says(path) -> str | None:
    """The InputFileError of physnn.inspect(path), or None when it reads the file."""
    try:
        physnn.inspect(path)
    except InputFileError as err:
        return str(err)
    return None


def test_inspect_shows_a_type_with_brackets_as_written(monkeypatch):
    """A std::bitset member reads as ``[var * bool, parameters={"__array__": "bitset"}]``: rich took the brackets
    for markup and the type cell came out empty; names, types and notes are shown as text."""
    from physnn import api
    from physnn.io.inspect import BranchInfo, TreeInfo

    tree = TreeInfo("f.root", "events", "TTree", 3, 3, branches=[
        BranchInfo("info.trig", '[var * bool, parameters={"__array__": "bitset"}]', "sequence",
                   lengths={"median": 16, "q95": 16, "max": 16}),
        BranchInfo("info.hits", "std::vector<Hit>", "unreadable", note="uproot cannot [bold]read[/bold] it")])
    monkeypatch.setattr(api, "inspect", lambda files, probe: [tree])
    result = runner.invoke(app, ["inspect", "f.root"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert '[var * bool, parameters={"__array__": "bitset"}]' in result.output
    assert "uproot cannot [bold]read[/bold] it" in result.output


def test_a_bitset_member_is_typed_var_bool():
    """What uproot reads for a std::bitset member: its type without awkward's parameters."""
    import awkward as ak

    from physnn.io.inspect import _describe

    bits = ak.with_parameter(ak.Array([[True, False, True], [False, False, True]]), "__array__", "bitset")
    row = _describe("info.trig", bits)
    assert (row.type, row.role, row.lengths["max"]) == ("var * bool", "sequence", 3)
