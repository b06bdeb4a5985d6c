"""The layout physnn promises: layers that import only downwards, no import cycles, small units.

Every ``import`` in ``physnn/`` counts: module level, inside functions and
under ``TYPE_CHECKING``. The layers, lowest first::

    base (errors, fmt, _version, prefetch) < extras < io < config
      < data, simulation, physics (siblings: none imports another)
      < models < training < inference < evaluation < api < the package (its names are the api's)
      < demo < cli < __main__

A module may import its own package and any lower layer.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "physnn"

#: Layer rank of each top-level module or package of physnn.
RANKS = {"_version": 0, "errors": 0, "fmt": 0, "prefetch": 0, "extras": 0.5, "io": 1, "config": 2,
         "data": 3, "simulation": 3, "physics": 3, "models": 4, "training": 5, "inference": 6, "evaluation": 7,
         "api": 8, "": 9, "demo": 9.5, "cli": 10, "__main__": 11}


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of physnn by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import of physnn in ``path``, wherever it stands; ``from a import b``
    imports ``a.b`` when that is a module, else ``a``."""
    known = modules()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names if alias.name.startswith("physnn"))
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; physnn imports absolutely"
            if node.module and node.module.startswith("physnn"):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                yield from ((node.lineno, name) for name in names if name in known)
                if not all(name in known for name in names):
                    yield node.lineno, node.module


def unit(module: str) -> str:
    """The top-level module or package under physnn (``""`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer():
    assert {unit(m) for m in modules()} <= set(RANKS), "a new top-level module needs a place in RANKS"


def test_layers_import_only_downwards():
    known = modules()
    wrong = []
    for name, path in known.items():
        here = unit(name)
        for line, target in imports(path):
            if target not in known:  # `from physnn.x import name`: the name, not a module
                continue
            there = unit(target)
            if there != here and (RANKS[there] > RANKS[here] or RANKS[there] == RANKS[here]):
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: {here or 'physnn'} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules():
    known = modules()
    graph = {name: set() for name in known}
    for name, path in known.items():
        for _line, target in imports(path):
            # a package's __init__ re-exports; importing it is not importing each of its modules
            if target in known and target != name and not (name == "physnn" or target == "physnn"):
                graph[name].add(target)
    assert cycles(graph) == []


def test_cycles_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_package_is_a_regular_package_and_typed():
    folders = {p.parent for p in ROOT.rglob("*.py")}
    assert all((folder / "__init__.py").is_file() for folder in folders), "a namespace package"
    assert (ROOT / "py.typed").is_file()


def test_optional_packages_are_imported_only_by_extras():
    """onnx, onnxscript, onnxruntime and dask come through physnn.extras, which names the pip install."""
    optional = ("onnx", "onnxscript", "onnxruntime", "dask", "dask_awkward")
    wrong = []
    for name, path in modules().items():
        if name == "physnn.extras":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{name}:{node.lineno} imports {m}" for m in found if m.split(".")[0] in optional]
    assert not wrong


def test_a_missing_optional_package_names_its_install(monkeypatch):
    import sys

    import pytest

    from physnn import extras
    from physnn.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "dask_awkward", None)  # import fails as if not installed
    with pytest.raises(MissingDependency, match=r"physnn scan needs the dask_awkward package: "
                                                r"pip install 'physnn\[dask\]'"):
        extras.dask()


def _distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503): ``"scikit-learn>=1.3"`` -> ``"scikit-learn"``."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9._-]+)", requirement).group(1)).lower()


def _split_requires(requires: list[str]) -> tuple[set[str], set[str]]:
    """(core, optional) distributions of a wheel's ``Requires-Dist`` lines: those under an ``extra ==`` marker
    are optional (physnn's own extras left out)."""
    core: set[str] = set()
    optional: set[str] = set()
    for requirement in requires:
        (optional if re.search(r"\bextra\s*==", requirement) else core).add(_distribution(requirement))
    return core, optional - {"physnn"}


def declared_dependencies() -> tuple[set[str], set[str]]:
    """(core, optional) distributions physnn declares: from pyproject.toml, or on Python 3.10 (no tomllib, and
    no new dependency to parse TOML) from the installed physnn's metadata, which pip wrote from it."""
    import importlib.metadata

    import pytest

    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            return _split_requires(importlib.metadata.requires("physnn") or [])
        except importlib.metadata.PackageNotFoundError:
            pytest.skip("Python 3.10 has no tomllib and physnn is not installed: no dependency list to read")
    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_distribution(r) for r in project["dependencies"]}
    optional = {_distribution(r) for extra in project["optional-dependencies"].values() for r in extra} - {"physnn"}
    return core, optional


def test_every_third_party_import_is_a_core_dependency():
    """``pip install physnn`` (no extras) must be enough: each package physnn imports, anywhere, is a core
    dependency in pyproject.toml, or an optional one that only :mod:`physnn.extras` loads. A package that comes
    along with another (click with dask, annotated_types with pydantic) is not declared and breaks a bare
    install when that other one drops it."""
    import importlib.metadata
    import sys

    core, optional = declared_dependencies()
    providers = importlib.metadata.packages_distributions()  # top-level module -> its distributions
    wrong = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for top in {m.split(".")[0] for m in found} - {"physnn", "__future__"} - set(sys.stdlib_module_names):
                allowed = core | optional if name == "physnn.extras" else core
                if not allowed & {_distribution(d) for d in providers.get(top, [])}:
                    wrong.append(f"{name}:{node.lineno} imports {top}, not a core dependency in pyproject.toml "
                                 f"(installed by {providers.get(top, 'nothing')})")
    assert not wrong, "\n".join(wrong)


def test_the_dependency_check_runs_without_tomllib(monkeypatch):
    """requires-python is >=3.10 and tomllib is 3.11's: without it the declared list comes from the metadata."""
    import sys

    monkeypatch.setitem(sys.modules, "tomllib", None)  # import fails as on Python 3.10
    test_every_third_party_import_is_a_core_dependency()


def test_requires_dist_lines_split_into_core_and_optional():
    requires = ["torch>=2.1", "scikit-learn>=1.3", 'onnx>=1.16; extra == "onnx"',
                "physnn[onnx,dask]; extra == 'dev'",
                "ROOT; (platform_system == 'Linux' and python_version >= '3.10') and extra == 'dev'"]
    assert _split_requires(requires) == ({"torch", "scikit-learn"}, {"onnx", "root"})


def test_distribution_names_are_normalised():
    assert _distribution("scikit-learn>=1.3") == "scikit-learn"
    assert _distribution("PyYAML>=6") == _distribution("pyyaml") == "pyyaml"
    assert _distribution("ROOT; platform_system == 'Linux'") == "root"


#: Modules and functions allowed over the limits, with their size: none today (the inference commands share one
#: pipeline, the trainer, the streaming planner and the simulator are split into named steps).
MODULE_LINES, FUNCTION_LINES = 450, 80
OVER: dict[str, int] = {}


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring (a numpy docstring of a public function is documentation,
    not logic): from the signature to the last line."""
    first = node.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
        first.value.value, str)
    return node.end_lineno - node.lineno + 1 - ((first.end_lineno - first.lineno + 1) if docstring else 0)


def test_modules_and_functions_are_small():
    big = []
    for _name, path in modules().items():
        rel = str(path.relative_to(ROOT.parent))
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > OVER.get(rel, MODULE_LINES):
            big.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = function_lines(node)
                if n > OVER.get(f"{rel}:{node.name}", FUNCTION_LINES):
                    big.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not big, "over the size limits:\n" + "\n".join(big)
