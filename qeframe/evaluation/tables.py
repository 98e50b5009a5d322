"""Rendering of evaluation results: tables as plain data, then Markdown (``results.md``) or rich (terminal).

Reads the ``results.json`` dict of :func:`qeframe.evaluation.evaluate.evaluate` (layout in
:mod:`qeframe.evaluation.metrics`); computes nothing but percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qeframe.evaluation.metrics import ANSWERS, CONVENTIONS, GATED_ROW, MODEL_ROW
from qeframe.plugin.labels import PROVENANCE

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class TableData:
    """A table as plain data, rendered as markdown (results.md) or with rich (terminal)."""

    title: str
    columns: list[str]
    rows: list[list[str]]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.2f}"


def _rows_of(block: Mapping[str, Any]) -> list[str]:
    return list(block)


def results_tables(results: Mapping[str, Any]) -> list[TableData]:
    """The tables of a results dict: per convention a summary (datasets and family groups), the
    PPT-cut / NPT-cut table, then per dataset and convention the per-cut table."""
    tables: list[TableData] = []
    datasets = list(results)
    if not datasets:
        return tables
    rows = _rows_of(results[datasets[0]][CONVENTIONS[0]])
    for conv in CONVENTIONS:
        columns = ["predictor"]
        cells: dict[str, list[str]] = {row: [row] for row in rows}
        for name in datasets:
            block = results[name]
            columns.append(name)
            for row in rows:
                cells[row].append(_pct(block[conv][row]["mean"]))
            if len(block["families"]) > 1:
                for fam, fam_block in block["families"].items():
                    columns.append(f"{name}/{fam}")
                    for row in rows:
                        cells[row].append(_pct(fam_block[conv][row]["mean"]))
        tables.append(
            TableData(f"Mean per-cut accuracy (%), convention '{conv}'", columns, [cells[r] for r in rows])
        )
    for conv in CONVENTIONS:
        columns = ["predictor"]
        cells = {row: [row] for row in rows}
        for name in datasets:
            for key, label in (("ppt_cuts", "PPT cuts"), ("npt_cuts", "NPT cuts")):
                sub = results[name][key][conv]
                n = sum(sub[rows[0]]["counts"])
                columns.append(f"{name}: {label} (n={n})")
                for row in rows:
                    cells[row].append(_pct(sub[row]["mean"]))
        tables.append(
            TableData(
                f"Accuracy on PPT cuts and NPT cuts only (%), convention '{conv}'",
                columns,
                [cells[r] for r in rows],
            )
        )
    tables += detection_tables({name: results[name] for name in datasets})
    by_proof = provenance_table(results, GATED_ROW if GATED_ROW in rows else rows[0])
    if by_proof is not None:
        tables.append(by_proof)
    calibrated = [(name, results[name]["calibration"]) for name in datasets if "calibration" in results[name]]
    if calibrated:
        tables.append(
            TableData(
                "Calibration of the gated model on proved PPT cuts: expected calibration error (%, 15 bins)",
                ["test dataset", "proved PPT cuts", "ECE raw", "ECE calibrated"],
                [
                    [name, str(c["n"]), _pct(c["ece_raw"]), _pct(c["ece_calibrated"])]
                    for name, c in calibrated
                ],
            )
        )
    certainty = [
        (name, results[name]["label_certainty"]) for name in datasets if "label_certainty" in results[name]
    ]
    if certainty:
        names = sorted({p for _, c in certainty for p in c["by_provenance"]}, key=PROVENANCE.index)
        tables.append(
            TableData(
                "How the test labels are known: share proved (%) and labels per provenance",
                ["test dataset", "proved (%)", *names],
                [
                    [name, _pct(c["proved_share"]), *(str(c["by_provenance"].get(p, 0)) for p in names)]
                    for name, c in certainty
                ],
            )
        )
    for name in datasets:
        block = results[name]
        for conv in CONVENTIONS:
            columns = ["predictor", *block["cuts"], "mean"]
            body = [
                [row, *(_pct(a) for a in block[conv][row]["per_cut"]), _pct(block[conv][row]["mean"])]
                for row in rows
            ]
            first = block[conv][rows[0]]
            body.append(["(counted)", *(str(c) for c in first["counts"]), str(sum(first["counts"]))])
            body.append(["(excluded)", *(str(c) for c in first["excluded"]), str(sum(first["excluded"]))])
            tables.append(TableData(f"Per-cut accuracy (%) on '{name}', convention '{conv}'", columns, body))
    return tables


#: The three numbers of ``ppt_detection``: key, the count it is a share of, table title.
DETECTION_NUMBERS: tuple[tuple[str, str, str], ...] = (
    ("recall", "n_ppt_entangled", "Recall on PPT-entangled cuts with proved labels (%)"),
    ("fpr", "n_ppt_separable", "False positives on separable PPT cuts with proved labels (%)"),
    ("abstention", "n_ppt", "Abstention (answer unknown) on all PPT cuts (%)"),
)


def _detection_table(
    title: str, key: str, count: str, datasets: Sequence[str], rows: Sequence[tuple[str, Any]]
) -> TableData:
    """One of the three numbers: ``rows`` are ``(label, {dataset: ppt_detection row or None})``."""
    body = [[label, *(_pct(d[n][key]) if d.get(n) else "—" for n in datasets)] for label, d in rows]
    counts = []
    for n in datasets:
        found = next((d[n][count] for _, d in rows if d.get(n)), None)
        counts.append("—" if found is None else str(found))
    body.append(["(n)", *counts])
    return TableData(title, ["predictor", *datasets], body)


def detection_tables(results: Mapping[str, Any]) -> list[TableData]:
    """The three numbers per predictor (rows) and test dataset (columns), one table each
    (``ppt_detection``); empty when no test dataset says how its labels are known."""
    names = [name for name, block in results.items() if "ppt_detection" in block]
    if not names:
        return []
    labels: list[str] = []
    for name in names:
        labels += [r for r in results[name]["ppt_detection"] if r not in labels]
    rows = [(r, {n: results[n]["ppt_detection"].get(r) for n in names}) for r in labels]
    return [_detection_table(title, key, count, names, rows) for key, count, title in DETECTION_NUMBERS]


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
    baselines = [b for b in baselines if b != GATED_ROW]
    tables = []
    for conv in CONVENTIONS:
        rows = []
        for label, r in results_by_run.items():
            rows.append([label, *(_pct(r[d][conv]["model"]["mean"]) if d in r else "—" for d in datasets)])
            if any(GATED_ROW in r[d][conv] for d in r):
                rows.append(
                    [
                        f"{label} (gated)",
                        *(
                            _pct(r[d][conv][GATED_ROW]["mean"]) if d in r and GATED_ROW in r[d][conv] else "—"
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
            for row, shown in ((MODEL_ROW, label), (GATED_ROW, f"{label} (gated)")):
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
        for key, count, title in DETECTION_NUMBERS:
            tables.append(_detection_table(f"{title} of each run", key, count, det_sets, det_rows))
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
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.columns) - 1)) + "|")
        for row in table.rows:
            lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
        lines.append("")
    return lines


def print_tables(tables: Sequence[TableData], console: Console) -> None:
    """Print ``tables`` with rich."""
    from rich.table import Table

    for table in tables:
        t = Table(title=table.title)
        for i, col in enumerate(table.columns):
            t.add_column(col, justify="left" if i == 0 else "right")
        for row in table.rows:
            t.add_row(*row)
        console.print(t)


def results_markdown(results: Mapping[str, Any], heading: str = "Results") -> str:
    """``results.md``: every table of :func:`results_tables` as a markdown table under its title."""
    lines = [f"# {heading}", ""]
    lines.append(
        "Conventions: `correct` — construction ground truth where known, else the dataset label; "
        "`paper` — the same, but every cut of a PPT-entangled state (Horodecki, UPB, Acín) counts as entangled. "
        "Rows: `model` — the network alone; `gated` — the network behind the PPT gate (NPT cuts entangled with "
        "proof), calibrated and three-valued on PPT cuts (unknown counts as wrong); then the classical baselines."
    )
    lines.append("")
    lines += tables_markdown(results_tables(results))
    return "\n".join(lines)


def print_results(results: Mapping[str, Any], console: Console, *, per_cut: bool = True) -> None:
    """Print the tables of :func:`results_tables` with rich (per-cut tables only when ``per_cut``)."""
    tables = results_tables(results)
    print_tables([t for t in tables if per_cut or not t.title.startswith("Per-cut")], console)


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
        f"Answers of '{row}' on PPT cuts with proved labels, by the proof behind the label (%)",
        ["test dataset", "label proved by", "truth", "n", "answered entangled", "separable", "unknown"],
        body,
    )
