"""The ``>>>`` examples in physnn's docstrings run (those marked ``+SKIP`` need files or a trained run)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from test_architecture import modules

import physnn

MODULES = sorted(name for name in modules() if not name.endswith("__main__"))


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    found = doctest.DocTestFinder(exclude_empty=True).find(module, extraglobs={"np": np, "physnn": physnn})
    return [test for test in found if test.examples and test.name.startswith(name)]


WITH_EXAMPLES = [name for name in MODULES if _examples(name)]


def test_the_examples_are_found():
    assert len(WITH_EXAMPLES) >= 10
    assert "physnn.physics.showers" in WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
