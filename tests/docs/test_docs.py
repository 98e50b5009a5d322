"""The documentation stays in step with the code (datasette's trick).

* Every hook in ``qeframe/plugin/hookspecs.py`` has a heading in ``docs/writing-plugins.md`` with its exact
  signature, and the page documents no hook that does not exist.
* Every plugin module declared in a ``[project.entry-points.qeframe]`` table (qeframe's built-ins
  and the example package) exists and has a module docstring.
* ``mkdocs.yml`` lists every page, relative links resolve, and the tables of cut names and of
  provenance codes in the docs match :mod:`qeframe.quantum.cuts` and :mod:`qeframe.plugin.labels`.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from qeframe.plugin.labels import PROVENANCE
from qeframe.quantum.cuts import cut_names

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLE = DOCS / "examples" / "qeframe-example-family"
NOT_PAGES: set[str] = set()


def hookspec_signatures() -> dict[str, str]:
    """``{hook name: "name(params) -> return"}`` exactly as written in ``qeframe/plugin/hookspecs.py``."""
    tree = ast.parse((ROOT / "qeframe" / "plugin" / "hookspecs.py").read_text(encoding="utf-8"))
    signatures = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d).split("(")[0] == "hookspec" for d in node.decorator_list
        ):
            returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
            signatures[node.name] = f"{node.name}({ast.unparse(node.args)}){returns}"
    return signatures


def documented_hook_headings() -> dict[str, str]:
    """``{hook name: heading text}`` for the Markdown headings of ``docs/writing-plugins.md`` that name a hook."""
    text = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    headings = {}
    for match in re.finditer(r"^#{2,4}\s+`?(qeframe_\w+)(.*?)`?\s*$", text, re.MULTILINE):
        headings[match.group(1)] = f"{match.group(1)}{match.group(2)}"
    return headings


def test_hookspecs_are_found():
    assert "qeframe_register_families" in hookspec_signatures()


@pytest.mark.parametrize("hook", sorted(hookspec_signatures()))
def test_hook_documented_with_exact_signature(hook):
    signature = hookspec_signatures()[hook]
    headings = documented_hook_headings()
    assert hook in headings, (
        f"docs/writing-plugins.md has no heading for the hook {hook}; add: ### `{signature}`"
    )
    assert headings[hook] == signature, (
        f"docs/writing-plugins.md documents {headings[hook]!r}, but qeframe/plugin/hookspecs.py says {signature!r}"
    )


def test_no_documented_hook_is_missing_from_hookspecs():
    extra = sorted(set(documented_hook_headings()) - set(hookspec_signatures()))
    assert not extra, f"docs/writing-plugins.md documents hooks that qeframe/plugin/hookspecs.py lacks: {extra}"


# ------------------------------------------------------------------------------- plugin docstrings


def _plugin_modules(pyproject: Path) -> list[tuple[str, str, Path]]:
    """``(entry point, module, source file)`` for the ``qeframe`` entry points of one project."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    package_dir: dict[str, str] = data.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    out = []
    for ep_name, value in data["project"]["entry-points"]["qeframe"].items():
        module = value.split(":")[0]
        parts = module.split(".")
        base, rest = pyproject.parent, parts
        for i in range(len(parts), 0, -1):  # the longest mapped package prefix
            prefix = ".".join(parts[:i])
            if prefix in package_dir:
                base, rest = pyproject.parent / package_dir[prefix], parts[i:]
                break
        path = base.joinpath(*rest)
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        out.append((ep_name, module, source))
    return out


PLUGIN_MODULES = _plugin_modules(ROOT / "pyproject.toml") + _plugin_modules(EXAMPLE / "pyproject.toml")


def test_entry_points_are_found():
    names = {ep for ep, _, _ in PLUGIN_MODULES}
    assert "labeler.negativity" in names and "family.werner_ghz" in names


@pytest.mark.parametrize(
    ("entry_point", "module", "source"), PLUGIN_MODULES, ids=[ep for ep, _, _ in PLUGIN_MODULES]
)
def test_plugin_module_has_docstring(entry_point, module, source):
    assert source.is_file(), (
        f"entry point {entry_point} names the module {module}, but {source.relative_to(ROOT)} does not exist"
    )
    docstring = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8")))
    assert docstring and docstring.strip().splitlines()[0].strip(), (
        f"plugin module {module} ({source.relative_to(ROOT)}) has no module docstring; "
        "give the mathematics, shapes, conventions and references"
    )


# ------------------------------------------------------------------------------------------ pages


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if p.name not in NOT_PAGES)


def test_mkdocs_nav_lists_every_page():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.findall(r"^\s*-\s*[^:\n]+:\s*(\S+\.md)\s*$", config, re.MULTILINE)
    assert nav, "mkdocs.yml has no nav entries"
    missing_files = [n for n in nav if not (DOCS / n).is_file()]
    assert not missing_files, f"mkdocs.yml lists pages that do not exist: {missing_files}"
    unlisted = [str(p.relative_to(DOCS)) for p in _pages() if str(p.relative_to(DOCS)) not in nav]
    assert not unlisted, f"pages missing from the mkdocs.yml nav: {unlisted}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        assert resolved.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor and resolved.suffix == ".md":
            slugs = {
                _slug(h)
                for h in re.findall(r"^#+\s+(.*?)\s*$", resolved.read_text(encoding="utf-8"), re.MULTILINE)
            }
            assert anchor in slugs, f"{page.relative_to(ROOT)} links to {target}: no heading with that anchor"


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension gives a heading."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s-]+", "-", text).strip("-")


@pytest.mark.parametrize("n_qubits", [2, 3, 4])
def test_conventions_cut_table_matches_code(n_qubits):
    text = (DOCS / "conventions.md").read_text(encoding="utf-8")
    row = re.search(rf"^\|\s*{n_qubits}\s*\|(.*)\|\s*$", text, re.MULTILINE)
    assert row, f"docs/conventions.md has no cut-table row for n = {n_qubits}"
    documented = re.findall(r"(\d+): `([^`]+)`", row.group(1))
    assert [int(i) for i, _ in documented] == list(range(len(documented)))
    assert [name for _, name in documented] == cut_names(n_qubits)


def test_concepts_provenance_table_matches_code():
    text = (DOCS / "concepts.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([a-z0-9-]+)`\s*\|", text, re.MULTILINE)
    assert [(int(c), name) for c, name in rows] == list(enumerate(PROVENANCE)), (
        "the provenance table in docs/concepts.md must list qeframe.plugin.labels.PROVENANCE in code order"
    )


def test_backbone_walkthrough_code_runs_and_trains():
    """The backbone plugin printed in docs/writing-plugins.md is real code: register it, build it
    for 3 qubits, and take one optimisation step."""
    import types

    import torch

    from qeframe.plugin.registry import Registry

    text = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    section = text.split("## Walk-through: a backbone plugin", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    module = types.ModuleType("doc_dense_backbone")
    exec(compile(code, "docs/writing-plugins.md", "exec"), module.__dict__)  # noqa: S102 - our own docs
    reg = Registry.load(entry_points=False, plugins=[("backbone.dense", module)])
    backbone = reg.create("backbone", "dense", {"width": 32, "layers": 2})
    model = backbone.build(3)
    x = torch.randn(4, 2, 8, 8)
    logits = model(x)
    assert logits.shape == (4, 3)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(4, 3))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
