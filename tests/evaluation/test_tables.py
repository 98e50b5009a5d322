"""Rendering of results (:mod:`qeframe.evaluation.tables`) and ``qeframe results render|show``.

Golden snippets for a tiny ``results.json``: test sets and their families are rows, predictors are
columns, every predictor has its column, every accuracy table names its label convention and every
convention-free table says so; the shipped results pages are what the renderer makes of their
``results.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from qeframe.evaluation.metrics import CONVENTIONS
from qeframe.evaluation.tables import (
    BOTH_CONVENTIONS,
    comparison_tables,
    predictor_names,
    print_results,
    results_markdown,
    results_tables,
)

ROOT = Path(__file__).resolve().parents[2]
PREDICTORS = ["model", "gated", "ppt", "ccnr"]


def _acc(per_cut, counts=(4, 4, 4), excluded=(0, 0, 0)):
    valid = [a for a in per_cut if a is not None]
    return {
        "per_cut": list(per_cut),
        "mean": sum(valid) / len(valid) if valid else None,
        "counts": list(counts),
        "excluded": list(excluded),
    }


def _rows(values, **kw):
    """``{predictor: accuracy block}`` with every cut at the given accuracy."""
    return {p: _acc([v] * 3, **kw) for p, v in zip(PREDICTORS, values) if v is not None}


def _detection(recall, fpr, abstention, n_ent, n_sep, n_ppt):
    return {
        "recall": recall,
        "fpr": fpr,
        "abstention": abstention,
        "n_ppt_entangled": n_ent,
        "n_ppt_separable": n_sep,
        "n_ppt": n_ppt,
        "by_provenance": {},
    }


def tiny_results() -> dict:
    """Two test sets: ``pure`` with families ``sep`` and ``ent`` and all four predictors; ``upb``
    with one family and no ``ccnr`` row (its cells must read ``—``)."""
    pure = {
        "cuts": ["1|23", "2|13", "3|12"],
        "n_samples": 4,
        "paper": _rows([0.75, 1.0, 1.0, 0.5]),
        "correct": _rows([0.75, 1.0, 1.0, 0.5]),
        "families": {
            "sep": {c: _rows([1.0, 1.0, 1.0, 1.0], counts=(2, 2, 2)) for c in CONVENTIONS},
            "ent": {c: _rows([0.5, 1.0, 1.0, 0.0], counts=(2, 2, 2)) for c in CONVENTIONS},
        },
        "ppt_cuts": {c: _rows([1.0, 1.0, 1.0, 1.0], counts=(2, 2, 2)) for c in CONVENTIONS},
        "npt_cuts": {c: _rows([0.5, 1.0, 1.0, 0.0], counts=(2, 2, 2)) for c in CONVENTIONS},
        "ppt_detection": {
            "model": _detection(None, 0.0, 0.0, 0, 6, 6),
            "gated": _detection(None, 0.0, 1 / 6, 0, 6, 6),
            "ppt": _detection(None, 0.0, 0.0, 0, 6, 6),
            "ccnr": _detection(None, 0.0, 0.0, 0, 6, 6),
        },
        "label_certainty": {
            "proved_share": 1.0,
            "proved_share_per_cut": [1.0] * 3,
            "by_provenance": {"npt": 12},
        },
    }
    upb = {
        "cuts": ["1|23", "2|13", "3|12"],
        "n_samples": 2,
        "paper": _rows([0.5, 0.0, 0.0, None], counts=(2, 2, 2)),
        "correct": _rows([0.5, 1.0, 1.0, None], counts=(2, 2, 2)),
        "families": {"upb": {c: _rows([0.5, 0.0, 0.0], counts=(2, 2, 2)) for c in CONVENTIONS}},
        "ppt_cuts": {c: _rows([0.5, 0.0, 0.0], counts=(2, 2, 2)) for c in CONVENTIONS},
        "npt_cuts": {c: {p: _acc([None] * 3, counts=(0, 0, 0)) for p in PREDICTORS[:3]} for c in CONVENTIONS},
    }
    return {"pure": pure, "upb": upb}


def _lines(lines: list[str]) -> str:
    return "\n".join(lines)


def _section(md: str, title: str) -> str:
    """The lines of the table under ``## title`` (heading included, up to the blank line after it)."""
    lines = md.splitlines()
    start = lines.index(f"## {title}")
    end = lines.index("", start + 2)
    return "\n".join(lines[start:end])


def test_summary_table_golden():
    md = results_markdown(tiny_results(), "Results of tiny")
    assert _section(md, "Mean per-cut accuracy (%), convention 'paper'") == _lines(
        [
            "## Mean per-cut accuracy (%), convention 'paper'",
            "",
            "| test dataset | model | gated | ppt | ccnr |",
            "|---|---:|---:|---:|---:|",
            "| pure | 75.00 | 100.00 | 100.00 | 50.00 |",
            "| ↳ sep | 100.00 | 100.00 | 100.00 | 100.00 |",
            "| ↳ ent | 50.00 | 100.00 | 100.00 | 0.00 |",
            "| upb | 50.00 | 0.00 | 0.00 | — |",
        ]
    )
    # the other convention: same layout, its own numbers
    assert "| upb | 50.00 | 100.00 | 100.00 | — |" in _section(
        md, "Mean per-cut accuracy (%), convention 'correct'"
    )


def test_cut_type_and_detection_tables_golden():
    md = results_markdown(tiny_results())
    assert _section(md, "Accuracy on PPT cuts and NPT cuts only (%), convention 'correct'") == _lines(
        [
            "## Accuracy on PPT cuts and NPT cuts only (%), convention 'correct'",
            "",
            "| test dataset | cuts | n | model | gated | ppt | ccnr |",
            "|---|---|---:|---:|---:|---:|---:|",
            "| pure | PPT | 6 | 100.00 | 100.00 | 100.00 | 100.00 |",
            "| pure | NPT | 6 | 50.00 | 100.00 | 100.00 | 0.00 |",
            "| upb | PPT | 6 | 50.00 | 0.00 | 0.00 | — |",
            "| upb | NPT | 0 | — | — | — | — |",
        ]
    )
    title = "Abstention (answer unknown) on all PPT cuts (%)" + BOTH_CONVENTIONS
    assert _section(md, title) == _lines(
        [
            f"## {title}",
            "",
            "| test dataset | n PPT cuts | model | gated | ppt | ccnr |",
            "|---|---:|---:|---:|---:|---:|",
            "| pure | 6 | 0.00 | 16.67 | 0.00 | 0.00 |",
        ]
    )
    recall = _section(md, "Recall on PPT-entangled cuts with proved labels (%)" + BOTH_CONVENTIONS)
    assert "| pure | 0 | — | — | — | — |" in recall  # no proved PPT-entangled cut: no share, count 0


def test_per_cut_detail_keeps_predictors_as_rows():
    md = results_markdown(tiny_results())
    assert _section(md, "Per-cut accuracy (%) on 'upb', convention 'paper'") == _lines(
        [
            "## Per-cut accuracy (%) on 'upb', convention 'paper'",
            "",
            "| predictor | 1\\|23 | 2\\|13 | 3\\|12 | mean |",
            "|---|---:|---:|---:|---:|",
            "| model | 50.00 | 50.00 | 50.00 | 50.00 |",
            "| gated | 0.00 | 0.00 | 0.00 | 0.00 |",
            "| ppt | 0.00 | 0.00 | 0.00 | 0.00 |",
            "| ccnr | — | — | — | — |",
            "| (counted) | 2 | 2 | 2 | 6 |",
            "| (excluded) | 0 | 0 | 0 | 0 |",
        ]
    )
    # the per-cut tables come after every summary table
    titles = [t.title for t in results_tables(tiny_results())]
    first = next(i for i, t in enumerate(titles) if t.startswith("Per-cut"))
    assert all(t.startswith("Per-cut") for t in titles[first:])


def test_every_table_has_every_predictor_and_names_its_convention():
    results = tiny_results()
    assert predictor_names(results) == PREDICTORS
    tables = results_tables(results)
    by_conv = {c: 0 for c in CONVENTIONS}
    for table in tables:
        scores = table.title.split(" ")[0] in ("Mean", "Accuracy", "Recall", "False", "Abstention")
        if table.columns[0] == "test dataset" and scores:
            assert table.columns[-len(PREDICTORS) :] == PREDICTORS, table.title
            assert all(len(row) == len(table.columns) for row in table.rows)
        if table.title.startswith("Per-cut"):
            assert [row[0] for row in table.rows] == [*PREDICTORS, "(counted)", "(excluded)"]
        named = [c for c in CONVENTIONS if f"convention '{c}'" in table.title]
        if table.title.startswith("How the test labels are known"):
            continue  # the labels themselves, not a score
        assert len(named) == 1 or table.title.endswith(BOTH_CONVENTIONS), table.title
        for c in named:
            by_conv[c] += 1
    # both conventions, always side by side: 1 summary + 1 cut-type + 2 per-cut tables each
    assert by_conv == {"paper": 4, "correct": 4}
    # the legend names the columns present, no other
    md = results_markdown(results)
    legend = md.splitlines()[2]
    assert all(f"`{p}` —" in legend for p in PREDICTORS) and "`paper`" in legend and "`correct`" in legend
    plain = results_markdown({"upb": _only(results["upb"], ["model", "ppt"])}).splitlines()[2]
    assert "`model` —" in plain and "`ppt` —" in plain and "gated" not in plain and "ccnr" not in plain


def _only(block: dict, keep: list[str]) -> dict:
    """``block`` with only the predictors in ``keep`` (and no PPT-cut detection)."""

    def pick(rows: dict) -> dict:
        return {p: v for p, v in rows.items() if p in keep}

    out = {k: v for k, v in block.items() if k != "ppt_detection"}
    for conv in CONVENTIONS:
        out[conv] = pick(block[conv])
    for key in ("ppt_cuts", "npt_cuts"):
        out[key] = {c: pick(block[key][c]) for c in CONVENTIONS}
    out["families"] = {f: {c: pick(fb[c]) for c in CONVENTIONS} for f, fb in block["families"].items()}
    return out


def test_terminal_tables_match_the_markdown_layout():
    console = Console(record=True, width=120)
    print_results(tiny_results(), console, per_cut=False)
    text = console.export_text()
    assert "Mean per-cut accuracy (%), convention 'paper'" in text and "Per-cut" not in text
    header = next(line for line in text.splitlines() if "test dataset" in line and "ccnr" in line)
    assert [w for w in header.replace("┃", " ").split() if w in PREDICTORS] == PREDICTORS
    assert any("↳ ent" in line for line in text.splitlines())
    # cells are text, not rich markup
    results = {"[bold]x": tiny_results()["upb"]}
    console = Console(record=True, width=120)
    print_results(results, console, per_cut=False)
    assert "[bold]x" in console.export_text()


def test_comparison_tables_keep_runs_as_rows():
    tables = comparison_tables({"A": tiny_results(), "B": {"upb": tiny_results()["upb"]}})
    first = tables[0]
    assert first.columns == ["run", "pure", "upb"]
    assert [r[0] for r in first.rows] == [
        "A",
        "A (gated)",
        "B",
        "B (gated)",
        "ppt (baseline)",
        "ccnr (baseline)",
    ]
    assert first.rows[2] == ["B", "—", "50.00"]


# ---------------------------------------------------------------------------------- the command


def _run_folder(tmp_path: Path, heading: str | None) -> Path:
    run = tmp_path / "tiny" / "20260101T000000Z-0123abcd"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(tiny_results()), encoding="utf-8")
    (run / "spec.json").write_text(json.dumps({"experiment": "tiny-experiment"}), encoding="utf-8")
    if heading is not None:
        (run / "results.md").write_text(f"# {heading}\n\nold layout\n", encoding="utf-8")
    return run


def test_results_render_keeps_the_heading_and_writes_the_new_layout(tmp_path, qeframe_cli):
    run = _run_folder(tmp_path, "Results of tiny — run X (epoch 3 selected by best-validation)")
    code, _, err = qeframe_cli("results", "render", run)
    assert code == 0, err
    page = (run / "results.md").read_text(encoding="utf-8")
    assert page == results_markdown(
        tiny_results(), "Results of tiny — run X (epoch 3 selected by best-validation)"
    )
    assert "old layout" not in page and f"wrote {run / 'results.md'}" in err
    other = tmp_path / "page.md"
    code, _, err = qeframe_cli("results", "render", run, "--out", other)
    assert code == 0, err
    assert other.read_text(encoding="utf-8") == page


def test_results_render_without_a_page_names_the_experiment_and_run(tmp_path, qeframe_cli):
    run = _run_folder(tmp_path, None)
    assert qeframe_cli("results", "render", run)[0] == 0
    first = (run / "results.md").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# Results of tiny-experiment — run 20260101T000000Z-0123abcd"


def test_results_show_prints_the_tables(tmp_path, qeframe_cli):
    run = _run_folder(tmp_path, "Results of tiny")
    code, out, err = qeframe_cli("results", "show", run, "--no-per-cut")
    assert code == 0, err
    assert out.startswith("Results of tiny") and "convention 'correct'" in out and "Per-cut" not in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "has no results.json"),
        ("{not json", "not valid JSON"),
        ("[]", "expected an object with one entry per test dataset"),
        ('{"t": {"paper": {}}}', "test dataset 't' has no 'correct'"),
    ],
)
def test_results_commands_reject_bad_input_in_one_line(tmp_path, qeframe_cli, content, message):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "results.json").write_text(content, encoding="utf-8")
    for command in ("render", "show"):
        code, _, err = qeframe_cli("results", command, run)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (run / "results.md").exists()


# ------------------------------------------------------------------------------- shipped pages

PRETRAINED = sorted(p for p in (ROOT / "pretrained").iterdir() if (p / "results.json").is_file())


@pytest.mark.parametrize("run", PRETRAINED, ids=lambda p: p.name)
def test_shipped_results_pages_are_rendered_from_their_results_json(run, tmp_path, qeframe_cli):
    """``pretrained/*/results.md`` is exactly what ``qeframe results render`` makes of the folder's
    ``results.json`` (so a layout change regenerates them, and no number is typed by hand)."""
    copy = tmp_path / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "plots"))
    assert qeframe_cli("results", "render", copy)[0] == 0
    assert (copy / "results.md").read_text(encoding="utf-8") == (run / "results.md").read_text(
        encoding="utf-8"
    )


@pytest.mark.parametrize(
    ("page", "run"),
    [
        ("h100-2026-11-26/paper-siamese-verified.md", "paper-siamese-verified"),
        ("h100-2026-11-26/paper-siamese-negativity.md", "paper-siamese-negativity"),
        ("cpu-2026-12-05/paper-gated-pe.md", "paper-gated-pe"),
    ],
)
def test_docs_results_pages_of_pretrained_runs_are_their_results_md(page, run):
    docs = (ROOT / "docs" / "results" / page).read_text(encoding="utf-8")
    assert docs == (ROOT / "pretrained" / run / "results.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "results").rglob("*.md")), ids=lambda p: p.name)
def test_docs_results_pages_have_the_current_layout(page):
    text = page.read_text(encoding="utf-8")
    assert "\n| test dataset | model |" in text and "\n| predictor | model |" not in text
    for conv in CONVENTIONS:
        assert f"## Mean per-cut accuracy (%), convention '{conv}'" in text
