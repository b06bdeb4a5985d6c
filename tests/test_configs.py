"""Every YAML shipped in configs/ validates, so the documented examples stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from physnn.config import DataConfig, load_config
from physnn.simulation import ShowerConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_data_configs_validate(path):
    cfg = load_config(path, DataConfig)
    assert cfg.files


def test_simulator_config_validates():
    cfg = load_config(CONFIGS / "simulate" / "calorimeter.yaml", ShowerConfig)
    assert cfg == ShowerConfig()  # the documented file holds the defaults


@pytest.mark.parametrize("name", ["cms_dimuon_rntuple.yaml", "hzz_leptons.yaml", "th2_images.yaml"])
def test_real_data_configs_load(name, skhep_cache, tmp_path, monkeypatch):
    """From any folder, through scikit-hep-testdata (its cache filled from ../shared/data/real: no download)."""
    import physnn

    monkeypatch.chdir(tmp_path)
    data = physnn.load(f"physnn:data/{name}")
    assert len(data.train) > 0


def test_targets_accept_names_or_a_mapping_of_units_and_kinds():
    from physnn.config import TargetSpec

    base = {"files": "x.root", "scalars": ["a"]}
    listed = DataConfig.model_validate({**base, "targets": ["energy", "eta"]})
    assert listed.targets == ["energy", "eta"]
    assert listed.target_specs == {"energy": TargetSpec(), "eta": TargetSpec()}  # generic, no unit
    mapped = DataConfig.model_validate({**base, "targets": {"energy": {"unit": "GeV", "kind": "energy"},
                                                            "mass": {"unit": "GeV", "kind": "mass"}, "eta": None}})
    assert mapped.targets == ["energy", "mass", "eta"]
    assert mapped.target_specs["energy"] == TargetSpec(unit="GeV", kind="energy")
    assert mapped.target_specs["mass"].kind == "mass"
    assert mapped.target_specs["eta"] == TargetSpec()
    for cfg in (listed, mapped):  # run configs are stored and validated again
        assert DataConfig.model_validate(cfg.model_dump()) == cfg
        assert DataConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    dumped = mapped.model_dump()
    dumped["targets"] = []  # what predict does on files without the truth
    assert DataConfig.model_validate(dumped).target_specs == {}


@pytest.mark.parametrize(("targets", "expected"), [
    ({"energy": {"unti": "GeV"}}, "unknown key 'targets.energy.unti' (did you mean 'unit'?)"),
    ({"energy": {"kind": "energie"}}, "targets.energy.kind: Input should be"),
])
def test_a_bad_target_spec_is_one_line_naming_the_key(targets, expected, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from physnn.cli import app
    from physnn.errors import ConfigError

    with pytest.raises(ConfigError, match="config: "):
        load_config({"files": "x.root", "scalars": ["a"], "targets": targets}, DataConfig)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"files": "x.root", "scalars": ["a"], "targets": targets}))
    result = CliRunner().invoke(app, ["load", str(path)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert expected in result.output


def test_new_targets_on_a_stored_config_bring_their_own_specs():
    from physnn.config import TargetSpec

    stored = DataConfig.model_validate({"files": "x.root", "scalars": ["a"],
                                        "targets": {"energy": {"unit": "GeV", "kind": "energy"}}})
    renamed = load_config(stored, DataConfig, ["targets=[mass]"])
    assert renamed.target_specs == {"mass": TargetSpec()}
    declared = load_config(stored, DataConfig, ["targets={mass: {unit: GeV, kind: mass}}"])
    assert declared.targets == ["mass"]
    assert declared.target_specs == {"mass": TargetSpec(unit="GeV", kind="mass")}
    assert load_config(stored, DataConfig, ["target_specs.energy.unit=MeV"]).target_specs["energy"] == TargetSpec(
        unit="MeV", kind="energy")


@pytest.mark.parametrize(("path", "target", "kind"), [
    ("train/energy.yaml", "energy", "energy"), ("train/events_mass.yaml", "mass", "mass"),
    ("data/showers.yaml", "energy", "energy"), ("data/events.yaml", "mass", "mass")])
def test_shipped_configs_declare_what_their_targets_are(path, target, kind):
    import yaml

    data = yaml.safe_load((CONFIGS / path).read_text())
    cfg = DataConfig.model_validate(data.get("data", data) if path.startswith("train") else data)
    assert cfg.targets == [target]
    assert cfg.target_specs[target].kind == kind
    assert cfg.target_specs[target].unit == "GeV"


def test_plotting_is_a_core_dependency():
    """Issue 16: evaluate is core and draws figures, so matplotlib and mplhep install with physnn itself."""
    import re
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ]", d)[0] for d in project["dependencies"]}
    assert {"matplotlib", "mplhep"} <= names


def test_shipped_shower_cnns_share_one_feature_extractor():
    """The README's transfer example (epi -> energy, --freeze features) needs the same extractor in both."""
    from physnn.demo import energy_config, epi_config
    from physnn.training.config import load_run_config

    def features(source):
        return load_run_config(source).model.params["features"]  # validated: every layer option spelled out

    epi = features(CONFIGS / "train" / "epi.yaml")
    assert epi == features(CONFIGS / "train" / "energy.yaml")
    assert epi == features(epi_config("showers.root")) == features(energy_config("showers.root"))  # the demo's


def test_readme_transfer_from_epi_to_energy_runs(showers_file, tmp_path, monkeypatch):
    """``physnn train configs/train/energy.yaml --out runs/e --init-from runs/epi --freeze features``."""
    from typer.testing import CliRunner

    from physnn.cli import app

    monkeypatch.chdir(tmp_path)
    files = f"data.files={showers_file}"
    runner = CliRunner()
    first = runner.invoke(app, ["train", str(CONFIGS / "train" / "epi.yaml"), "--out", "runs/epi",
                                "--set", files, "--set", "train.epochs=1", "--set", "train.device=cpu"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["train", str(CONFIGS / "train" / "energy.yaml"), "--out", "runs/e",
                                 "--init-from", "runs/epi", "--freeze", "features",
                                 "--set", files, "--set", "train.epochs=1"])
    assert second.exit_code == 0, second.output
    assert (tmp_path / "runs" / "e" / "best.pt").is_file()


def test_photon_pi0_configs_flip_in_eta_and_phi_and_use_residual_blocks():
    """The benchmark's and the demo's photon/π0 CNNs: residual blocks at full resolution, flipped training images."""
    from physnn.demo import photon_config
    from physnn.training.config import load_run_config

    for source in (CONFIGS / "train" / "gamma_pi0.yaml", photon_config("gamma_pi0.root")):
        cfg = load_run_config(source)
        assert cfg.data.augment.flip == ["eta", "phi"]
        layers = [layer["type"] for layer in cfg.model.params["features"]]
        assert layers[:3] == ["conv", "residual", "pool"]
        assert layers.count("residual") == 2
