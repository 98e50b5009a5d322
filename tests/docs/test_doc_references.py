"""Every reference to code in the prose resolves: docs survive a layout change.

The prose is ``README.md``, every page under ``docs/`` (the frozen result pages under
``docs/results/`` excepted: they record what a past run printed), and the docstrings and ``#``
comments of ``qeframe/``, ``plugins/``, ``benchmarks/``, ``tests/`` and the example plugin under
``docs/examples/``. A reference is

* a dotted name ``qeframe.a.b`` or ``qeframe_plugins.a.b``, optionally followed by attributes
  (``qeframe.io.atomic_write_json``, ``qeframe.learn.train.Trainer.fit``): the longest prefix must be an
  importable module and every remaining part an attribute of what comes before it;
* a repository path ``qeframe/….py``, ``plugins/….py``, ``tests/….py`` or ``benchmarks/….py``
  (optionally ``::test_name``): the file must exist (and define that name); a folder such as
  ``qeframe/evaluation/`` must exist;
* in a docstring or comment of ``qeframe/`` or ``plugins/``, a Sphinx role with a short target (:func:`name`, :meth:`Class.method`,
  :mod:`.sibling`): it must name something the reader finds from that module, as Sphinx would
  look it up: a name the module defines or imports (then its attributes), a member of one of the
  module's classes, a sibling in its package, or a fully dotted importable name (``os.replace``).

Resolution imports the modules named (the test process has imported most of them anyway), so the
whole check takes a few seconds. A reference that cannot resolve is reported with its file and line.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: ``qeframe.x.y`` / ``qeframe_plugins.x.y``, not inside a longer name or path (``src/qeframe.x``).
DOTTED = re.compile(r"(?<![\w./-])(?:qeframe|qeframe_plugins)(?:\.[A-Za-z_]\w*)+")
#: ``qeframe/….py`` and friends (repository-relative), with an optional pytest ``::name``.
PATH = re.compile(
    r"(?<![\w./-])(?:qeframe|plugins|tests|benchmarks)/(?:[\w.-]+/)*[\w.-]+\.py(?:::(\w+))?(?![\w/])"
)
#: A folder of the repository, ``qeframe/evaluation/`` (not a pattern such as ``tests/*/`` or ``<name>/``).
FOLDER = re.compile(r"(?<![\w./-])(?:qeframe|plugins|tests|benchmarks)/(?:[\w.-]+/)+(?![\w*<{\[])")


def references(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, reference)`` for every code reference in ``text`` (lines counted from 1)."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in DOTTED.finditer(line):
            yield number, match.group(0)
        for match in PATH.finditer(line):
            yield number, match.group(0)
        for match in FOLDER.finditer(line):
            yield number, match.group(0)


@cache
def _module(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and name.startswith(error.name):
            return None  # the module itself (or a parent) does not exist
        raise  # it exists but imports something missing: a real error, not a stale reference


def _declared_field(obj: object, name: str) -> bool:
    """Whether the class ``obj`` declares an instance attribute ``name`` without a class-level value."""
    if not isinstance(obj, type):
        return False
    return any(name in vars(klass).get("__annotations__", {}) for klass in obj.__mro__)


@cache
def problem(reference: str) -> str | None:
    """Why ``reference`` does not resolve, or ``None`` when it does."""
    if reference.endswith("/"):
        return None if (ROOT / reference).is_dir() else f"no folder {reference}"
    if "/" in reference:
        path, _, name = reference.partition("::")
        file = ROOT / path
        if not file.is_file():
            return f"no file {path}"
        if name and not re.search(
            rf"^\s*(?:async\s+)?(?:def|class)\s+{name}\b", file.read_text(), re.MULTILINE
        ):
            return f"{path} defines no {name}"
        return None
    parts = reference.split(".")
    for i in range(len(parts), 0, -1):
        obj = _module(".".join(parts[:i]))
        if obj is not None:
            break
    else:  # pragma: no cover - "qeframe" itself always imports
        return f"no module {parts[0]}"
    for j in range(i, len(parts)):
        if not hasattr(obj, parts[j]) and _declared_field(obj, parts[j]):
            return (
                None  # a dataclass / pydantic field or an annotated attribute: an instance's, not the class's
            )
        if not hasattr(obj, parts[j]):
            where = ".".join(parts[:j])
            return f"{where} has no attribute or submodule {parts[j]}"
        obj = getattr(obj, parts[j])
    return None


#: A Sphinx cross-reference role; group 1 is its target without ``~``/``!`` and a trailing ``()``.
ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj|const):`[~!]?([^`<>\s]+?)(?:\(\))?`")


def _module_name(path: Path) -> tuple[str, str]:
    """``(module, package)`` of a source file under ``qeframe/`` or ``plugins/`` (``qeframe_plugins``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = {"plugins": "qeframe_plugins"}.get(parts[0], parts[0])
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def _scope(tree: ast.Module, module: str, package: str) -> tuple[dict[str, str], set[str]]:
    """``({name: dotted target}, members)`` that short role targets of a module may name.

    Imports anywhere in the module (under ``TYPE_CHECKING`` or inside functions too) and its
    top-level definitions and assignments map to their dotted target; members are the names a bare
    target may be: the module's top-level names and the methods, nested classes, class attributes
    and ``self.x`` attributes of its classes.
    """
    names: dict[str, str] = {}
    members: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.ClassDef):
            for item in ast.walk(node):
                if (
                    isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and item is not node
                ):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
                elif (
                    isinstance(item, ast.Attribute)
                    and isinstance(item.value, ast.Name)
                    and item.value.id == "self"
                ):
                    members.add(item.attr)
    for node in tree.body:  # the module's own names: members too (a short target may name them)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(node.name)
            names[node.name] = f"{module}.{node.name}"
        for target in node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]:
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name):
                    members.add(name.id)
                    names[name.id] = f"{module}.{name.id}"
    return names, members


def role_problem(target: str, module: str, package: str, names: dict[str, str], members: set[str]) -> bool:
    """Whether the short role ``target`` written in ``module`` names nothing (see the module docstring)."""
    if target.startswith("."):
        candidates = [package + target, module + target]
    else:
        head, _, rest = target.partition(".")
        if (head in members and not rest) or hasattr(builtins, head):
            return False
        candidates = [target, f"{package}.{target}" if package else target]
        if head in names:
            candidates.append(names[head] + (f".{rest}" if rest else ""))
    return all(problem(c) is not None for c in candidates)


def stale_roles(path: Path) -> list[str]:
    """``"file:line: role"`` for every short role target of a Python source that names nothing."""
    source = path.read_text(encoding="utf-8")
    module, package = _module_name(path)
    names, members = _scope(ast.parse(source), module, package)
    out = []
    for first, chunk in _prose_ranges(source):
        for number, line in enumerate(chunk.splitlines()):
            for match in ROLE.finditer(line):
                target = match.group(1)
                if not target.startswith(("qeframe.", "qeframe_plugins.")) and role_problem(
                    target, module, package, names, members
                ):
                    out.append(f"{path.relative_to(ROOT)}:{first + number}: {match.group(0)}")
    return sorted(set(out))


def _prose_ranges(source: str) -> Iterator[tuple[int, str]]:
    """``(first line, text)`` of every docstring and ``#`` comment of a Python source."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                first, last = body[0].lineno, body[0].end_lineno or body[0].lineno
                yield first, "\n".join(lines[first - 1 : last])
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def stale_references(path: Path) -> list[str]:
    """``"file:line: reference (why)"`` for every reference in one prose source that does not resolve."""
    text = path.read_text(encoding="utf-8")
    chunks = _prose_ranges(text) if path.suffix == ".py" else [(1, text)]
    out = []
    for first, chunk in chunks:
        for number, reference in references(chunk):
            why = problem(reference)
            if why is not None:
                out.append(f"{path.relative_to(ROOT)}:{first + number - 1}: {reference} ({why})")
    return sorted(set(out))


def _sources() -> list[Path]:
    pages = [ROOT / "README.md"] + sorted(
        p for p in (ROOT / "docs").rglob("*.md") if "results" not in p.relative_to(ROOT / "docs").parts
    )
    folders = ("qeframe", "plugins", "benchmarks", "tests", "docs/examples")
    here = Path(__file__).resolve()  # its docstrings describe the patterns with placeholders
    code = sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if p != here)
    return pages + code


SOURCES = _sources()


def test_sources_are_found():
    names = {str(p.relative_to(ROOT)) for p in SOURCES}
    assert {"README.md", "docs/concepts.md", "qeframe/io.py", "plugins/families/haar.py"} <= names
    assert not any(n.startswith("docs/results/") for n in names)


def test_finds_and_rejects_stale_references():
    """The check can fail: made-up references are found and reported; real ones pass."""
    text = (
        "See :func:`qeframe.io.atomic_write_json` and ``qeframe.quantum.cuts``; the old\n"
        "``qeframe.store.Store`` moved, ``qeframe.io.no_such_helper`` never existed, and\n"
        "qeframe/train.py, tests/test_store.py and plugins/families/haar.py::no_such_test\n"
        "are gone while plugins/families/haar.py and qeframe_plugins.families.haar stay.\n"
        "Paths inside others do not count: src/qeframe/x.py, docs/examples/qeframe.toml.\n"
        "Folders: qeframe/evaluation/ is there, qeframe/eval/ is not; tests/*/ is a pattern.\n"
    )
    found = list(references(text))
    assert found == [
        (1, "qeframe.io.atomic_write_json"),
        (1, "qeframe.quantum.cuts"),
        (2, "qeframe.store.Store"),
        (2, "qeframe.io.no_such_helper"),
        (3, "qeframe/train.py"),
        (3, "tests/test_store.py"),
        (3, "plugins/families/haar.py::no_such_test"),
        (4, "qeframe_plugins.families.haar"),
        (4, "plugins/families/haar.py"),
        (6, "qeframe/evaluation/"),
        (6, "qeframe/eval/"),
    ]
    bad = {ref for _, ref in found if problem(ref) is not None}
    assert bad == {
        "qeframe.store.Store",
        "qeframe.io.no_such_helper",
        "qeframe/train.py",
        "tests/test_store.py",
        "plugins/families/haar.py::no_such_test",
        "qeframe/eval/",
    }
    assert problem("qeframe.io.no_such_helper") == "qeframe.io has no attribute or submodule no_such_helper"


def test_finds_references_in_docstrings_and_comments_only(tmp_path, monkeypatch):
    source = tmp_path / "mod.py"
    source.write_text(
        '"""Module docstring naming qeframe.nowhere."""\n'
        "import os  # comment naming qeframe/nowhere.py\n"
        "NAME = 'qeframe.in_a_string_not_prose'\n"
        "def f():\n"
        '    """Uses qeframe.io.atomic_write_json and qeframe.io.gone."""\n',
        encoding="utf-8",
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert stale_references(source) == [
        "mod.py:1: qeframe.nowhere (qeframe has no attribute or submodule nowhere)",
        "mod.py:2: qeframe/nowhere.py (no file qeframe/nowhere.py)",
        "mod.py:5: qeframe.io.gone (qeframe.io has no attribute or submodule gone)",
    ]


def test_finds_short_role_targets_that_name_nothing(tmp_path, monkeypatch):
    """Short Sphinx targets resolve from the module's own names, its classes and its package."""
    package = tmp_path / "qeframe" / "data"
    package.mkdir(parents=True)
    source = package / "fake.py"
    source.write_text(
        '"""Uses :func:`atomic_write_json`, :func:`helper`, :meth:`go`, :func:`os.replace`,\n'
        ":mod:`.store`, :func:`open_dataset` (moved to reader), :func:`~store.no_such` and :class:`Gone`.\n"
        '"""\n'
        "from qeframe.io import atomic_write_json\n"
        "def helper():\n"
        "    pass\n"
        "class Thing:\n"
        "    def go(self):\n"
        "        pass\n",
        encoding="utf-8",
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert stale_roles(source) == [
        "qeframe/data/fake.py:2: :class:`Gone`",
        "qeframe/data/fake.py:2: :func:`open_dataset`",
        "qeframe/data/fake.py:2: :func:`~store.no_such`",
    ]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_references_resolve(source):
    stale = stale_references(source)
    assert not stale, (
        "references to code that does not exist (moved? use `git grep` to find it):\n" + "\n".join(stale)
    )


#: The package modules, whose short role targets are looked up from the module (``__main__`` would run).
CODE = [
    p
    for p in SOURCES
    if p.suffix == ".py"
    and p.relative_to(ROOT).parts[0] in ("qeframe", "plugins")
    and p.name != "__main__.py"
]


@pytest.mark.parametrize("source", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_short_role_targets_resolve(source):
    stale = stale_roles(source)
    assert not stale, (
        "Sphinx roles naming nothing this module defines, imports or reaches (moved? write the full "
        "dotted name, e.g. :func:`~qeframe.data.reader.open_dataset`):\n" + "\n".join(stale)
    )
