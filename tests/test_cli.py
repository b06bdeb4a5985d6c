"""The command line: version, help, simulate, inspect, load, demo; light imports."""

from __future__ import annotations

import subprocess
import sys

import uproot
from typer.testing import CliRunner

from physnn import __version__
from physnn.cli import app

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"physnn {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "inspect", "load", "demo"):
        assert command in result.output


def test_cli_import_does_not_load_torch_or_uproot():
    code = ("import sys, physnn, physnn.cli; "
            "print(any(m in sys.modules for m in ('torch', 'uproot', 'awkward')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_python_m_physnn():
    out = subprocess.run([sys.executable, "-m", "physnn", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"physnn {__version__}"


def test_simulate_commands(tmp_path):
    out = tmp_path / "s.root"
    result = runner.invoke(app, ["simulate", "showers", "-n", "30", "--out", str(out), "--particles", "e-,pi+",
                                 "--energy", "10:20", "--set", "height=8", "--set", "width=8", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 30 showers" in result.output
    with uproot.open(out) as f:
        t = f["showers"]
        assert t["image"].typename == "float[3][8][8]"
        energy = t["energy"].array(library="np")
        pdg = t["pdgid"].array(library="np")
    assert energy.min() >= 10
    assert energy.max() <= 20
    assert set(pdg) <= {11, 211}
    ev = tmp_path / "e.root"
    result = runner.invoke(app, ["simulate", "events", "-n", "50", "--out", str(ev), "--mass", "91",
                                 "--set", "signal_fraction=1", "--set", "width=0"])
    assert result.exit_code == 0, result.output
    with uproot.open(ev) as f:
        assert (f["events"]["mass"].array(library="np") == 91).all()


def test_simulator_config_file(tmp_path):
    cfg = tmp_path / "calo.yaml"
    cfg.write_text("layers_x0: [5, 20]\nheight: 10\nwidth: 12\n")
    out = tmp_path / "s.root"
    result = runner.invoke(app, ["simulate", "showers", "-n", "5", "--out", str(out), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    with uproot.open(out) as f:
        assert f["showers"]["image"].typename == "float[2][10][12]"


def test_inspect_table(showers_file, events_file):
    result = runner.invoke(app, ["inspect", str(showers_file), str(events_file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "showers.root:showers" in result.output
    assert "3x24x24" in result.output
    assert "sequence" in result.output
    assert "part_pt" in result.output
    # the simulator's readout, from physnn_meta (the events file has none)
    assert result.output.count("readout: ") == 1
    assert "readout: noise 0.01 GeV per cell; cells with |E| > 0.03 GeV (3σ) kept, noise of both signs" in result.output


def test_load_command(tmp_path, events_file):
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"files: {events_file}\nlabel: label\nsequence:\n  features: [part_pt, part_eta]\n"
                   "  sort_by: part_pt\n")
    result = runner.invoke(app, ["load", str(cfg), "--set", "sequence.max_length=20"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "sequences padded to 20 (config)" in result.output
    assert "classes: 0=0, 1=1" in result.output


def test_tables_are_not_cut_when_the_output_is_not_a_terminal(showers_file, tmp_path, monkeypatch):
    """A log file has no width: a long path must stay on one line (grep finds it), not cut or wrapped at 80."""
    import shutil

    from typer.testing import CliRunner

    from physnn.cli import app

    monkeypatch.delenv("COLUMNS", raising=False)
    deep = tmp_path / ("a_rather_long_folder_name_for_a_production_campaign_" * 2) / "showers_with_a_long_name.root"
    deep.parent.mkdir(parents=True)
    shutil.copy(showers_file, deep)
    result = CliRunner().invoke(app, ["inspect", str(deep)])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert str(deep) in result.output
