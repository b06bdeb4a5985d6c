"""``skhep_testdata:NAME`` names a file of the scikit-hep-testdata package, as the real-data configs do."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import InputFileError, MissingDependency
from physnn.io.files import expand_files

runner = CliRunner()


def test_a_testdata_name_is_the_packages_file(skhep_cache):
    assert expand_files("skhep_testdata:uproot-HZZ.root") == [str(skhep_cache / "uproot-HZZ.root")]
    arrays = physnn.read("skhep_testdata:uproot-HZZ.root", ["NMuon"], tree="events")
    assert len(arrays["NMuon"]) == 2421


def test_a_name_is_kept_where_paths_are_made_absolute_or_relative(tmp_path):
    """A config file's paths are relative to it and a run stores them absolute; a package's file name is no path."""
    from physnn.config import relative_to
    from physnn.io.files import absolute_file

    assert relative_to(tmp_path, "skhep_testdata:uproot-HZZ.root") == "skhep_testdata:uproot-HZZ.root"
    assert absolute_file("skhep_testdata:uproot-HZZ.root") == "skhep_testdata:uproot-HZZ.root"
    assert absolute_file("x.root") == str(tmp_path.cwd() / "x.root")


def test_without_the_package_one_line_names_the_pip_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "skhep_testdata", None)  # import fails as if not installed
    with pytest.raises(MissingDependency, match=r"pip install 'physnn\[testdata\]'"):
        expand_files("skhep_testdata:uproot-HZZ.root")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["load", "physnn:data/hzz_leptons.yaml"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:")
    assert "pip install 'physnn[testdata]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_name_gets_the_close_ones():
    pytest.importorskip("skhep_testdata")
    with pytest.raises(InputFileError, match=r"no file 'uproot-HZ\.root' \(did you mean 'uproot-HZZ\.root'"):
        expand_files("skhep_testdata:uproot-HZ.root")


def test_a_failed_download_is_one_line(monkeypatch, tmp_path):
    package = pytest.importorskip("skhep_testdata")

    def offline(name, *args, **kwargs):
        raise ConnectionError(f"Max retries exceeded with url: .../{name}\nmore")

    monkeypatch.setattr(package, "data_path", offline)
    with pytest.raises(InputFileError, match=r"^skhep_testdata:uproot-HZZ\.root: scikit-hep-testdata could not get "
                                             r"uproot-HZZ\.root \(ConnectionError: Max retries exceeded"):
        expand_files("skhep_testdata:uproot-HZZ.root")
