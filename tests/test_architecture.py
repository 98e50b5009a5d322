"""The layout's rules, read from the imports of every module of ``qeframe/`` (``ast``, not importing).

Every ``import`` and ``from ... import`` counts, at module level and inside functions alike, except
those under ``if TYPE_CHECKING:`` (never executed). The rules:

* no import cycle between the modules of ``qeframe/``, and none between its subpackages;
* the core never imports the built-in plugins (``qeframe_plugins``): they come through the
  entry-point door like any third-party plugin;
* ``qeframe.quantum`` (the math) imports nothing from qeframe but ``qeframe.errors``;
* every import goes down the layers of :data:`LAYERS` (or stays within its subpackage).
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "qeframe"

#: Lower layers never import higher ones. The longest matching prefix decides a module's layer;
#: ``qeframe`` itself (version, ``hookimpl``, lazy names) sits at the bottom and imports nothing.
LAYERS: dict[str, int] = {
    "qeframe": 0,
    "qeframe.errors": 0,
    "qeframe.quantum": 1,
    "qeframe.io": 1,  # atomic writes, the user-matrix loader (validated by qeframe.quantum)
    "qeframe.plugin": 2,  # hookspecs, interfaces, registry, labels, progress displays
    "qeframe.config": 3,
    "qeframe.data": 4,
    "qeframe.learn": 5,
    "qeframe.evaluation": 6,
    "qeframe.detector": 7,  # the notebook API: a trained run as a detector
    "qeframe.experiment": 7,  # run_experiment / run_many
    "qeframe.cli": 8,
    "qeframe.testing": 9,  # pytest fixtures for plugin authors (as numpy.testing): they drive the CLI
}


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import node outside ``if TYPE_CHECKING:`` blocks, with whether it runs at import time
    (module or class level) rather than inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    yield from walk(other, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, not in_function
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, inner)

    yield from walk(tree, False)


def import_graph(
    root: Path, package: str
) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """``(all edges, module-level edges, external imports)`` of the modules under ``root``.

    Edges go from a module to the modules of ``package`` it imports: ``from a.b import c`` is an
    edge to ``a.b.c`` when that is a module, else to ``a.b``; relative imports are resolved.
    External imports are the top-level names of everything else each module imports.
    """
    modules = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    eager: dict[str, set[str]] = {m: set() for m in modules}
    external: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, at_import_time in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target == package or target.startswith(package + "."):
                    while target not in modules:  # `import pkg.sub.name` of a name inside a module
                        target = target.rsplit(".", 1)[0]
                    if target != name:
                        edges[name].add(target)
                        if at_import_time:
                            eager[name].add(target)
                else:
                    external[name].add(target.split(".")[0])
    return edges, eager, external


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def subpackage(module: str, package: str = "qeframe") -> str:
    """``qeframe.learn.train`` -> ``qeframe.learn``; top-level modules stand for themselves."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def subpackage_graph(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for src, targets in edges.items():
        a = subpackage(src)
        graph.setdefault(a, set()).update(b for t in targets if (b := subpackage(t)) != a)
    return graph


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def layering_violations(edges: Mapping[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every import of a higher layer, outside the importer's own subpackage."""
    return [
        f"{src} (layer {layer(src)}) -> {dst} (layer {layer(dst)})"
        for src, targets in sorted(edges.items())
        for dst in sorted(targets)
        if subpackage(src) != subpackage(dst) and layer(dst) > layer(src)
    ]


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT, "qeframe")


def test_every_module_is_read(graph):
    edges, _, _ = graph
    assert {"qeframe.quantum.random", "qeframe.plugin.interfaces", "qeframe.experiment.single"} <= set(edges)
    assert "qeframe.learn.train" in edges["qeframe.experiment.single"]  # function-level imports count
    assert len(edges) == len(list(ROOT.rglob("*.py")))


def test_no_import_cycle_between_modules(graph):
    edges, eager, _ = graph
    assert find_cycle(eager) is None, "module-level import cycle"
    assert find_cycle(edges) is None, "import cycle (function-level imports included)"


def test_no_import_cycle_between_subpackages(graph):
    edges, _, _ = graph
    assert find_cycle(subpackage_graph(edges)) is None


def test_the_core_never_imports_the_builtin_plugins(graph):
    _, _, external = graph
    offenders = sorted(m for m, names in external.items() if "qeframe_plugins" in names)
    assert offenders == []


def test_quantum_imports_only_errors_from_qeframe(graph):
    edges, _, _ = graph
    outside = {
        f"{src} -> {dst}"
        for src, targets in edges.items()
        if src.startswith("qeframe.quantum")
        for dst in targets
        if not dst.startswith("qeframe.quantum") and dst != "qeframe.errors"
    }
    assert outside == set()


def test_builtin_plugins_use_only_the_plugin_door():
    """``plugins/`` is the model for third-party plugins: it needs the interfaces, the numerics and
    the errors (and ``qeframe.hookimpl``), never the trainer, the store or the command line."""
    allowed = ("qeframe.errors", "qeframe.quantum", "qeframe.plugin")  # and `from qeframe import hookimpl`
    outside = set()
    for path in sorted((ROOT.parent / "plugins").rglob("*.py")):
        for node, _ in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.startswith("qeframe.") and not any(
                    name == a or name.startswith(a + ".") for a in allowed
                ):
                    outside.add(f"{path.relative_to(ROOT.parent)}: {name}")
    assert outside == set()


def test_imports_go_down_the_layers(graph):
    edges, _, _ = graph
    assert set(map(subpackage, edges)) <= {subpackage(p) for p in LAYERS}, "a new room needs a layer"
    assert layering_violations(edges) == []


# --------------------------------------------------------------------------------------------------
# the checker itself can fail


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


def test_a_synthetic_cycle_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/x.py": "from pkg.b.y import f\n",
            "b/__init__.py": "",
            "b/y.py": "def f():\n    from ..a import x\n    return x\n",  # relative, inside a function
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a.x\n",
        },
    )
    edges, eager, _ = import_graph(root, "pkg")
    assert edges["pkg.b.y"] == {"pkg.a.x"} and eager["pkg.b.y"] == set()
    assert edges["pkg.c"] == set()  # TYPE_CHECKING imports do not count
    assert find_cycle(edges) == ["pkg.a.x", "pkg.b.y", "pkg.a.x"]
    assert find_cycle(eager) is None
    assert find_cycle(subpackage_graph(edges)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_a_synthetic_layering_violation_and_plugin_import_are_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "quantum/ops.py": "import qeframe_plugins.families\nfrom pkg.learn import train\n",
            "learn/train.py": "from pkg.errors import QeframeError\n",
            "errors.py": "",
        },
    )
    edges, _, external = import_graph(root, "pkg")
    assert "qeframe_plugins" in external["pkg.quantum.ops"]
    renamed = {
        s.replace("pkg", "qeframe"): {t.replace("pkg", "qeframe") for t in d} for s, d in edges.items()
    }
    assert layering_violations(renamed) == ["qeframe.quantum.ops (layer 1) -> qeframe.learn.train (layer 5)"]
