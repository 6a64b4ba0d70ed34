"""Every module of the graphs package imports on its own, and module imports form no cycle.

The import graph is read from the source with ``ast`` (every ``import`` and
``from ... import`` of a ``graphs`` module, at any depth, type-checking
blocks included), so a cycle is caught even where a lazy import would hide
it at run time.  The service must not import the batch library at all.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import networkx as nx
import pytest

import graphs

ROOT = Path(graphs.__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(graphs.__path__, "graphs."))


def _module_file(name: str) -> Path:
    path = ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imported(name: str, tree: ast.AST, prefix: str) -> set[str]:
    """Modules under ``prefix`` that ``tree`` imports (``from a import b`` counts ``a.b`` if a module)."""
    known = {*MODULES, "graphs"}
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == prefix}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != prefix:
                continue
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            out |= subs or {node.module}
    return out - {name}


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for name in MODULES:
        g.add_node(name)
        tree = ast.parse(_module_file(name).read_text(encoding="utf-8"))
        g.add_edges_from((name, dep) for dep in _imported(name, tree, "graphs"))
    return g


def test_every_module_is_listed_and_has_all() -> None:
    assert {"graphs.events.jsonl", "graphs.features.nodes", "graphs.scorers.anomaly",
            "graphs.workload.simulate", "graphs.report.html"} <= set(MODULES)
    for name in MODULES:
        tree = ast.parse(_module_file(name).read_text(encoding="utf-8"))
        assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Name)}
        assert "__all__" in assigned, name


@pytest.mark.parametrize("name", [m for m in MODULES if not m.startswith("graphs.spark")])
def test_module_imports(name: str) -> None:
    module = importlib.import_module(name)
    # A package's __all__ may name its submodules, which exist once imported.
    missing = [n for n in module.__all__ if not hasattr(module, n)
               and not (hasattr(module, "__path__") and importlib.import_module(f"{name}.{n}"))]
    assert missing == [], name


def test_no_import_cycles() -> None:
    g = import_graph()
    assert g.number_of_edges() > 30  # the graph was really read
    assert list(nx.simple_cycles(g)) == []


def test_a_cycle_would_be_found() -> None:
    a = ast.parse("from graphs.scorers.score import ScoreResult")
    b = ast.parse("import graphs.report.html")
    g = nx.DiGraph([("graphs.report.html", d) for d in _imported("graphs.report.html", a, "graphs")])
    g.add_edges_from(("graphs.scorers.score", d) for d in _imported("graphs.scorers.score", b, "graphs"))
    assert sorted(map(sorted, nx.simple_cycles(g))) == [["graphs.report.html", "graphs.scorers.score"]]


def test_the_service_never_imports_the_batch_library() -> None:
    service = ROOT / "riskservice"
    offenders = []
    for path in sorted(service.rglob("*.py")):
        if path.name == "__main__.py":  # the CLI runs the batch job; its imports are inside the commands
            continue
        deps = _imported(path.stem, ast.parse(path.read_text(encoding="utf-8")), "graphs")
        if deps:
            offenders.append((str(path.relative_to(ROOT)), sorted(deps)))
    assert offenders == []
