"""Rendering of evaluation results: tables as plain data, then Markdown (``results.md``) or rich (terminal).

Reads the ``results.json`` dict of :func:`qeframe.evaluation.evaluate.evaluate` (layout in
:mod:`qeframe.evaluation.metrics`) and computes nothing but percentages.

Layout of a run's tables (:func:`results_tables`), so that they read in a terminal and on GitHub
however many test sets a run has: **test sets (and their families) are rows, predictors are
columns**. A test set with several families is followed by one row per family, marked
``↳ family``. Predictor columns are every row of ``results.json`` in order (``model``, ``gated``,
``ppt``, then the other baselines); a cell is ``—`` where a predictor has no number. Every
accuracy table names its label convention (``paper`` or ``correct``) in its title, because the two
give different numbers for the same predictions; a table that reads proved labels only says that it
is the same under both.

1. ``Mean per-cut accuracy (%), convention 'C'`` — per convention.
2. ``Accuracy on PPT cuts and NPT cuts only (%), convention 'C'`` — two rows per test set, with the
   number ``n`` of (sample, cut) pairs counted.
3. Recall, false positives and abstention on PPT cuts (``ppt_detection``, convention-free), with
   the count ``n`` behind each share.
4. The answers on proved PPT cuts by the proof behind the label, calibration (ECE) and how the
   test labels are known — one row per test set and proof.
5. The per-cut detail: per test set and convention, predictors as rows and cuts as columns, with
   the counted and excluded pairs per cut.

:func:`comparison_tables` (``qeframe run A B ...``) is the other way round: one row per run and
baseline, one column per test set, like the paper's Tables II and III.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qeframe.errors import QeframeError
from qeframe.evaluation.metrics import (
    ANSWERS,
    CONVENTIONS,
    GATED_ROW,
    GATED_ROWS,
    MODEL_ROW,
    PPT_ROW,
    PROOF_ROW,
)
from qeframe.plugin.labels import PROVENANCE

if TYPE_CHECKING:
    from rich.console import Console

#: Prefix of a family row under its test set.
FAMILY_MARK = "↳ "
#: Title of the first column of a table whose rows are test sets.
TEST_SET = "test dataset"
#: Ends the title of a table that reads proved labels only, so that it names no label convention.
BOTH_CONVENTIONS = ", the same under both conventions"


@dataclass
class TableData:
    """A table as plain data, rendered as markdown (results.md) or with rich (terminal).

    ``title`` names what the numbers are (and their label convention); ``columns`` are the headers;
    ``rows`` the cells as text. The first ``labels`` columns name the row (left-aligned), the
    others hold numbers (right-aligned).
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    labels: int = 1


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.2f}"


def check_results(results: Any) -> None:
    """Raise :class:`~qeframe.errors.QeframeError` (one line) unless ``results`` has the layout of
    ``results.json`` that the tables read: ``{test dataset: {"paper": ..., "correct": ...,
    "families": ..., "ppt_cuts": ..., "npt_cuts": ..., "cuts": ...}}``."""
    if not isinstance(results, Mapping) or not results:
        raise QeframeError("results.json: expected an object with one entry per test dataset")
    for name, block in results.items():
        if not isinstance(block, Mapping):
            raise QeframeError(f"results.json: {name!r} is not an object")
        for key in (*CONVENTIONS, "families", "ppt_cuts", "npt_cuts", "cuts"):
            if key not in block:
                raise QeframeError(f"results.json: test dataset {name!r} has no {key!r}")
        for conv in CONVENTIONS:
            if not isinstance(block[conv], Mapping) or not block[conv]:
                raise QeframeError(f"results.json: {name!r}.{conv} has no predictor")


def predictor_names(results: Mapping[str, Any]) -> list[str]:
    """The predictor (row) names of a results dict in order of first appearance over test sets."""
    names: list[str] = []
    for block in results.values():
        names += [row for row in block[CONVENTIONS[0]] if row not in names]
    return names


def _means(accuracies: Mapping[str, Any], predictors: Sequence[str]) -> list[str]:
    """The mean accuracy cells of ``{predictor: accuracy block}`` in ``predictors`` order."""
    return [_pct(accuracies[p]["mean"]) if p in accuracies else "—" for p in predictors]


def summary_table(results: Mapping[str, Any], convention: str) -> TableData:
    """Mean per-cut accuracy under ``convention``: a row per test set, followed by a row per family
    (``↳ family``) when the test set has several; a column per predictor."""
    predictors = predictor_names(results)
    body = []
    for name, block in results.items():
        body.append([name, *_means(block[convention], predictors)])
        if len(block["families"]) > 1:
            for fam, fam_block in block["families"].items():
                body.append([f"{FAMILY_MARK}{fam}", *_means(fam_block[convention], predictors)])
    return TableData(f"Mean per-cut accuracy (%), convention '{convention}'", [TEST_SET, *predictors], body)


def cut_type_table(results: Mapping[str, Any], convention: str) -> TableData:
    """Accuracy under ``convention`` on the PPT cuts and on the NPT cuts of each test set (two rows
    per test set, ``n`` = counted pairs); a column per predictor."""
    predictors = predictor_names(results)
    body = []
    for name, block in results.items():
        for key, label in (("ppt_cuts", "PPT"), ("npt_cuts", "NPT")):
            sub = block[key][convention]
            n = sum(next(iter(sub.values()))["counts"]) if sub else 0
            body.append([name, label, str(n), *_means(sub, predictors)])
    return TableData(
        f"Accuracy on PPT cuts and NPT cuts only (%), convention '{convention}'",
        [TEST_SET, "cuts", "n", *predictors],
        body,
        labels=2,
    )


def per_cut_table(
    name: str, block: Mapping[str, Any], convention: str, predictors: Sequence[str]
) -> TableData:
    """The per-cut detail of one test set under ``convention``: a row per predictor, a column per cut
    and the mean; then the counted and the excluded (truth unknown) pairs per cut."""
    accuracies = block[convention]
    n_cuts = len(block["cuts"])
    body = []
    for p in predictors:
        acc = accuracies.get(p)
        cells = [_pct(a) for a in acc["per_cut"]] if acc else ["—"] * n_cuts
        body.append([p, *cells, _pct(acc["mean"]) if acc else "—"])
    first = next(iter(accuracies.values()))
    body.append(["(counted)", *(str(c) for c in first["counts"]), str(sum(first["counts"]))])
    body.append(["(excluded)", *(str(c) for c in first["excluded"]), str(sum(first["excluded"]))])
    return TableData(
        f"Per-cut accuracy (%) on '{name}', convention '{convention}'",
        ["predictor", *block["cuts"], "mean"],
        body,
    )


def results_tables(results: Mapping[str, Any]) -> list[TableData]:
    """Every table of a run, in the order of the module docstring: per convention the summary (test
    sets and families as rows, predictors as columns), per convention the PPT-cut / NPT-cut table,
    the three PPT-cut numbers, the answers by proof, calibration and label certainty, then per test
    set and convention the per-cut detail."""
    if not results:
        return []
    predictors = predictor_names(results)
    tables = [summary_table(results, conv) for conv in CONVENTIONS]
    tables += [cut_type_table(results, conv) for conv in CONVENTIONS]
    tables += detection_tables(results)
    by_proof = provenance_table(results, GATED_ROW if GATED_ROW in predictors else predictors[0])
    if by_proof is not None:
        tables.append(by_proof)
    calibrated = [(name, block["calibration"]) for name, block in results.items() if "calibration" in block]
    if calibrated:
        tables.append(
            TableData(
                "Calibration of the gated model on proved PPT cuts: expected calibration error (%, 15 bins)"
                + BOTH_CONVENTIONS,
                [TEST_SET, "proved PPT cuts", "ECE raw", "ECE calibrated"],
                [
                    [name, str(c["n"]), _pct(c["ece_raw"]), _pct(c["ece_calibrated"])]
                    for name, c in calibrated
                ],
            )
        )
    certainty = [
        (name, block["label_certainty"]) for name, block in results.items() if "label_certainty" in block
    ]
    if certainty:
        names = sorted({p for _, c in certainty for p in c["by_provenance"]}, key=PROVENANCE.index)
        tables.append(
            TableData(
                "How the test labels are known: share proved (%) and labels per provenance",
                [TEST_SET, "proved (%)", *names],
                [
                    [name, _pct(c["proved_share"]), *(str(c["by_provenance"].get(p, 0)) for p in names)]
                    for name, c in certainty
                ],
            )
        )
    for name, block in results.items():
        tables += [per_cut_table(name, block, conv, predictors) for conv in CONVENTIONS]
    return tables


#: The three numbers of ``ppt_detection``: key, the count it is a share of, table title, header
#: of the count's column.
DETECTION_NUMBERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "recall",
        "n_ppt_entangled",
        "Recall on PPT-entangled cuts with proved labels (%)",
        "n proved entangled",
    ),
    (
        "fpr",
        "n_ppt_separable",
        "False positives on separable PPT cuts with proved labels (%)",
        "n proved separable",
    ),
    ("abstention", "n_ppt", "Abstention (answer unknown) on all PPT cuts (%)", "n PPT cuts"),
)


def _share(detection: Mapping[str, Any] | None, key: str) -> str:
    return _pct(detection[key]) if detection else "—"


def _count(detections: Sequence[Mapping[str, Any] | None], key: str) -> str:
    """The count behind a share: the same for every predictor, taken from the first that has it."""
    found = next((d[key] for d in detections if d), None)
    return "—" if found is None else str(found)


def detection_tables(results: Mapping[str, Any]) -> list[TableData]:
    """The three numbers of ``ppt_detection``, one table each: a row per test set that says how its
    labels are known; a column with the count behind the shares, then a column per predictor. Empty
    when no test set says how its labels are known."""
    names = [name for name, block in results.items() if "ppt_detection" in block]
    if not names:
        return []
    predictors: list[str] = []
    for name in names:
        predictors += [r for r in results[name]["ppt_detection"] if r not in predictors]
    tables = []
    for key, count, title, counted in DETECTION_NUMBERS:
        body = []
        for name in names:
            found = [results[name]["ppt_detection"].get(p) for p in predictors]
            body.append([name, _count(found, count), *(_share(d, key) for d in found)])
        tables.append(TableData(title + BOTH_CONVENTIONS, [TEST_SET, counted, *predictors], body))
    return tables


def provenance_table(results: Mapping[str, Any], row: str = GATED_ROW) -> TableData | None:
    """How predictor ``row`` answers the proved PPT cuts of each test set, by the proof behind the
    label (``ppt_detection[row].by_provenance``); ``None`` when there is nothing to show."""
    body = []
    for name, block in results.items():
        det = block.get("ppt_detection", {}).get(row)
        for prov, by_truth in (det or {}).get("by_provenance", {}).items():
            for truth, cell in by_truth.items():
                body.append(
                    [name, prov, truth, str(cell["n"]), *(_pct(cell[f"answered_{a}"]) for _, a in ANSWERS)]
                )
    if not body:
        return None
    return TableData(
        f"Answers of '{row}' on PPT cuts with proved labels, by the proof behind the label (%)"
        + BOTH_CONVENTIONS,
        [TEST_SET, "label proved by", "truth", "n", "answered entangled", "separable", "unknown"],
        body,
        labels=3,
    )


def _detection_table_by_run(
    title: str, key: str, count: str, datasets: Sequence[str], rows: Sequence[tuple[str, Any]]
) -> TableData:
    """One of the three numbers for :func:`comparison_tables`: a row per run or baseline, a column
    per test set, then a row ``(n)``; ``rows`` are ``(label, {dataset: ppt_detection row or None})``."""
    body = [[label, *(_share(d.get(n), key) for n in datasets)] for label, d in rows]
    body.append(["(n)", *(_count([d.get(n) for _, d in rows], count) for n in datasets)])
    return TableData(title, ["predictor", *datasets], body)


#: How :func:`comparison_tables` labels a run's gated rows.
_ROW_LABEL = {GATED_ROW: "gated", PROOF_ROW: "gated, proofs only"}


def comparison_tables(results_by_run: Mapping[str, Mapping[str, Any]]) -> list[TableData]:
    """One table per convention comparing several runs: a row per run (its model's mean per-cut
    accuracy on each test dataset), then a row per baseline, columns the union of the test datasets.

    ``results_by_run`` maps a row label (an experiment name) to that run's ``results.json``. A
    baseline does not depend on the model, so its cell is taken from the first run that evaluated
    the dataset; a run without a dataset gets "—".
    """
    datasets: list[str] = []
    for results in results_by_run.values():
        datasets += [name for name in results if name not in datasets]
    baselines: list[str] = []
    for results in results_by_run.values():
        for block in results.values():
            baselines += [row for row in block[CONVENTIONS[0]] if row != "model" and row not in baselines]
    baselines = [b for b in baselines if b not in GATED_ROWS]
    tables = []
    for conv in CONVENTIONS:
        rows = []
        for label, r in results_by_run.items():
            rows.append([label, *(_pct(r[d][conv]["model"]["mean"]) if d in r else "—" for d in datasets)])
            for key in GATED_ROWS:
                if any(key in r[d][conv] for d in r):
                    rows.append(
                        [
                            f"{label} ({_ROW_LABEL[key]})",
                            *(
                                _pct(r[d][conv][key]["mean"]) if d in r and key in r[d][conv] else "—"
                                for d in datasets
                            ),
                        ]
                    )
        for baseline in baselines:
            cells = []
            for d in datasets:
                owner = next((r for r in results_by_run.values() if d in r and baseline in r[d][conv]), None)
                cells.append(_pct(owner[d][conv][baseline]["mean"]) if owner is not None else "—")
            rows.append([f"{baseline} (baseline)", *cells])
        tables.append(
            TableData(f"Mean per-cut accuracy (%) of each run, convention '{conv}'", ["run", *datasets], rows)
        )
    det_sets = [
        d for d in datasets if any(d in r and "ppt_detection" in r[d] for r in results_by_run.values())
    ]
    if det_sets:
        det_rows: list[tuple[str, Any]] = []
        for label, r in results_by_run.items():
            for row, shown in ((MODEL_ROW, label), *((k, f"{label} ({_ROW_LABEL[k]})") for k in GATED_ROWS)):
                cells = {d: r[d].get("ppt_detection", {}).get(row) if d in r else None for d in det_sets}
                if row == MODEL_ROW or any(cells.values()):
                    det_rows.append((shown, cells))
        for baseline in baselines:
            cells = {}
            for d in det_sets:
                owner = next(
                    (
                        r
                        for r in results_by_run.values()
                        if d in r and baseline in r[d].get("ppt_detection", {})
                    ),
                    None,
                )
                cells[d] = owner[d]["ppt_detection"][baseline] if owner is not None else None
            det_rows.append((f"{baseline} (baseline)", cells))
        for key, count, title, _ in DETECTION_NUMBERS:
            tables.append(_detection_table_by_run(f"{title} of each run", key, count, det_sets, det_rows))
    return tables


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def tables_markdown(tables: Sequence[TableData]) -> list[str]:
    """Markdown lines of ``tables``, each under a ``##`` heading with its title."""
    lines: list[str] = []
    for table in tables:
        lines.append(f"## {table.title}")
        lines.append("")
        lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
        lines.append(
            "|" + "|".join(["---"] * table.labels + ["---:"] * (len(table.columns) - table.labels)) + "|"
        )
        for row in table.rows:
            lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
        lines.append("")
    return lines


def print_tables(tables: Sequence[TableData], console: Console) -> None:
    """Print ``tables`` with rich (cells are text, not rich markup)."""
    from rich.markup import escape
    from rich.table import Table

    for table in tables:
        # at least as wide as its title, so that a narrow table does not wrap the title
        t = Table(title=escape(table.title), min_width=min(len(table.title), console.width))
        for i, col in enumerate(table.columns):
            t.add_column(escape(col), justify="left" if i < table.labels else "right")
        for row in table.rows:
            t.add_row(*(escape(c) for c in row))
        console.print(t)


#: What each built-in predictor column is, for the paragraph under the heading of ``results.md``.
PREDICTOR_LEGEND: dict[str, str] = {
    MODEL_ROW: "the network alone",
    GATED_ROW: "the network behind the PPT gate (NPT cuts entangled with proof), calibrated and "
    "three-valued on PPT cuts (unknown counts as wrong)",
    PROOF_ROW: "the same, but a PPT cut is called entangled only with a proof (NPT or a proof stage), "
    "else unknown",
    PPT_ROW: "baseline, entangled iff the cut is NPT",
}


def legend(predictors: Sequence[str]) -> str:
    """The paragraph under the heading of ``results.md``: rows, the columns present, conventions."""
    columns = "; ".join(f"`{p}` — {PREDICTOR_LEGEND.get(p, 'baseline plugin')}" for p in predictors) or "none"
    return (
        "Rows: each test dataset, followed by its families (`↳ family`) where it has several. "
        f"Columns: {columns}. "
        "Conventions, named in the title of every accuracy table: `correct` — construction ground truth "
        "where known, else the dataset label; `paper` — the same, but every cut of a PPT-entangled state "
        "(Horodecki, UPB, Acín) counts as entangled. The per-cut detail of each test dataset closes the page."
    )


def results_markdown(results: Mapping[str, Any], heading: str = "Results") -> str:
    """``results.md``: every table of :func:`results_tables` as a markdown table under its title."""
    lines = [f"# {heading}", ""]
    lines.append(legend(predictor_names(results)))
    lines.append("")
    lines += tables_markdown(results_tables(results))
    return "\n".join(lines)


def print_results(results: Mapping[str, Any], console: Console, *, per_cut: bool = True) -> None:
    """Print the tables of :func:`results_tables` with rich (per-cut tables only when ``per_cut``)."""
    tables = results_tables(results)
    print_tables([t for t in tables if per_cut or not t.title.startswith("Per-cut")], console)
