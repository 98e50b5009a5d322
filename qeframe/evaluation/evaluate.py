"""Evaluation: per-cut accuracy tables in the layout of the paper's Tables II and III.

Rows are predictors — ``model`` (the trained network) and baselines (``ppt`` always; other
``evaluation.baselines`` from the ``baseline`` plugins) — and columns are the test datasets, with
their per-family groups (by the samples' ``family``). Each cell holds the per-cut accuracy in cut
order, their mean, and how many samples were counted per cut.

Two label conventions give the truth ``t[i, j]`` of sample ``i`` on cut ``j``:

* ``correct``: ``ground_truth[i, j]`` where it is known (!= -1), else the dataset's label
  ``labels[i, j]`` (for test sets labelled by negativity: NPT -> entangled, PPT -> separable).
  Pairs whose truth is still -1 are excluded from the accuracy and counted as ``excluded``.
* ``paper``: as ``correct``, but every cut of a sample with ``meta['pptes']`` (Horodecki, UPB, Acín
  states) counts as entangled. The paper labels UPB and Acín states entangled on every cut even
  though they are separable across every single cut; this convention reproduces its tables.

Accuracy of a predictor on cut ``j``: ``#{i : pred[i, j] == t[i, j]} / #{i : t[i, j] != -1}``
(a prediction of -1, a baseline's "no answer", counts as wrong); the mean is the mean over cuts of
these accuracies (the paper's ``1/m sum_j (TP_j + TN_j) / n``).

Besides the per-dataset and per-family blocks, ``ppt_cuts`` and ``npt_cuts`` restrict the
accuracy to the (sample, cut) pairs whose partial transpose is positive, resp. not positive
(:func:`qeframe.quantum.ppt.npt_mask`): on NPT cuts the truth is "entangled" for sure, on PPT cuts
telling separable from PPT-entangled is the hard part.

Rows ``model`` and ``gated``: ``model`` is the network alone, entangled where
``sigmoid(logit) > evaluation.threshold``; ``gated`` is the same network behind the prediction
layer (:mod:`qeframe.learn.prediction`): entangled with proof on NPT cuts, the calibrated three-valued
answer on PPT cuts. Its "unknown" (-1) counts as wrong in the accuracies, like a baseline's "no
answer".

PPT-cut detection (``ppt_detection``, for every row, when the test set says how its labels are
known): on the PPT cuts whose label is *proved* (:func:`qeframe.plugin.labels.certified_mask`, the same
set for every table), ``recall`` = share of the proved-entangled PPT cuts answered entangled,
``fpr`` = share of the proved-separable PPT cuts answered entangled, ``abstention`` = share of all
PPT cuts answered unknown (-1), with the counts behind each. These are convention-free: they
read proved labels only.

``results.json`` layout::

    {test_dataset: {
        "paper" | "correct": {row: {"per_cut": [...], "mean": x, "counts": [...], "excluded": [...]}},
        "families": {family: {convention: {row: {...}}}},
        "ppt_cuts" | "npt_cuts": {convention: {row: {...}}},
        "ppt_detection": {row: {"recall": x, "fpr": x, "abstention": x, "n_ppt_entangled": k,
                                "n_ppt_separable": k, "n_ppt": k}},
        "calibration": {"n": k, "ece_raw": x, "ece_calibrated": x, "reliability_raw": {...},
                        "reliability_calibrated": {...}},          # with a gated model only
        "cuts": [...], "n_samples": N}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.plugin.labels import PROOF_PROVENANCE, PROVENANCE, certified_mask
from qeframe.quantum.ppt import npt_mask

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from qeframe.learn.prediction import PredictionConfig
    from qeframe.plugin.registry import Registry
    from qeframe.config.specs import EvaluationSpec
    from qeframe.learn.arrays import DatasetArrays

CONVENTIONS: tuple[str, ...] = ("paper", "correct")
MODEL_ROW = "model"
GATED_ROW = "gated"
PPT_ROW = "ppt"


# --------------------------------------------------------------------------------------------------
# truth and accuracy


def truth_labels(arrays: DatasetArrays, convention: str) -> np.ndarray:
    """The per-cut truth ``(N, n_cuts)`` int8 of a dataset under ``convention`` (see the module doc)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    gt = np.asarray(arrays.ground_truth, np.int8)
    truth = np.where(gt != -1, gt, np.asarray(arrays.labels, np.int8)).astype(np.int8)
    if convention == "correct" and arrays.provenance is not None:
        # a label that only states the paper's convention (e.g. max-rank reduced states called
        # entangled) is not a fact: unknown under the correct convention
        truth[np.asarray(arrays.provenance) == PROVENANCE.index("paper-convention")] = -1
    if convention == "paper":
        truth[np.asarray(arrays.pptes, bool)] = 1
    return truth


def accuracy_block(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Any]:
    """Per-cut accuracy of ``pred`` against ``truth`` (both ``(N, m)`` int8) over the pairs in ``mask``.

    Returns ``{"per_cut": [m floats or None], "mean": float or None, "counts": [m ints],
    "excluded": [m ints]}``; ``counts`` are the pairs with known truth, ``excluded`` those with
    truth -1; a cut with no counted pair has accuracy ``None`` and is left out of the mean.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    inside = np.ones(truth.shape, bool) if mask is None else np.asarray(mask, bool)
    known = inside & (truth != -1)
    counts = known.sum(axis=0)
    correct = ((pred == truth) & known).sum(axis=0)
    per_cut = [float(c) / float(n) if n > 0 else None for c, n in zip(correct, counts)]
    valid = [a for a in per_cut if a is not None]
    return {
        "per_cut": per_cut,
        "mean": float(np.mean(valid)) if valid else None,
        "counts": [int(n) for n in counts],
        "excluded": [int(e) for e in (inside & (truth == -1)).sum(axis=0)],
    }


def _ordered_unique(values: np.ndarray) -> list[str]:
    _, first = np.unique(values, return_index=True)
    return [str(values[i]) for i in sorted(first)]


#: Provenances whose label is proved (defined once, in :mod:`qeframe.plugin.labels`).
PROVED_PROVENANCE = PROOF_PROVENANCE


def label_certainty(provenance: np.ndarray) -> dict[str, Any]:
    """How the test labels are known: the share of (sample, cut) labels that are proved
    (:data:`PROVED_PROVENANCE`) and the count per provenance name, overall and per cut."""
    provenance = np.asarray(provenance)
    proved_codes = [PROVENANCE.index(name) for name in PROVED_PROVENANCE]
    proved = np.isin(provenance, proved_codes)
    codes, counts = np.unique(provenance, return_counts=True)
    return {
        "proved_share": float(proved.mean()) if proved.size else None,
        "proved_share_per_cut": [float(x) for x in proved.mean(axis=0)] if proved.size else [],
        "by_provenance": {PROVENANCE[int(c)]: int(k) for c, k in zip(codes, counts)},
    }


def _rate(hits: np.ndarray, inside: np.ndarray) -> float | None:
    n = int(inside.sum())
    return float((hits & inside).sum()) / n if n else None


def ppt_detection(
    pred: np.ndarray, labels: np.ndarray, provenance: np.ndarray | None, npt: np.ndarray
) -> dict[str, Any]:
    """The three numbers of one predictor ``pred`` ``(N, m)`` int8 on the PPT cuts (``~npt``):
    recall on proved-entangled PPT cuts, false-positive rate on proved-separable PPT cuts, and
    abstention (answer -1) on all PPT cuts, with their counts (module docstring)."""
    pred = np.asarray(pred)
    ppt = ~np.asarray(npt, bool)
    proved = certified_mask(labels, provenance) & ppt
    labels = np.asarray(labels)
    ent, sep = proved & (labels == 1), proved & (labels == 0)
    by_provenance: dict[str, dict[str, Any]] = {}
    if proved.any():
        codes = np.asarray(provenance)
        for code in np.unique(codes[proved]):
            for truth, name in ((1, "entangled"), (0, "separable")):
                cell = proved & (codes == code) & (labels == truth)
                if cell.any():
                    by_provenance.setdefault(PROVENANCE[int(code)], {})[name] = {
                        "n": int(cell.sum()),
                        **{f"answered_{a}": _rate(pred == v, cell) for v, a in ANSWERS},
                    }
    return {
        "recall": _rate(pred == 1, ent),
        "fpr": _rate(pred == 1, sep),
        "abstention": _rate(pred == -1, ppt),
        "n_ppt_entangled": int(ent.sum()),
        "n_ppt_separable": int(sep.sum()),
        "n_ppt": int(ppt.sum()),
        "by_provenance": by_provenance,
    }


#: Answer codes and names (as in :mod:`qeframe.plugin.labels`).
ANSWERS: tuple[tuple[int, str], ...] = ((1, "entangled"), (0, "separable"), (-1, "unknown"))


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


def evaluate_arrays(
    arrays: DatasetArrays, predictions: Mapping[str, np.ndarray], npt: np.ndarray | None = None
) -> dict[str, Any]:
    """The results block of one test dataset for the given predictions ``{row: (N, m) int8}``.

    ``npt`` is the ``(N, m)`` NPT mask (computed with :func:`npt_mask` when omitted).
    """
    if npt is None:
        npt = npt_mask(arrays.rho)
    truths = {c: truth_labels(arrays, c) for c in CONVENTIONS}
    block: dict[str, Any] = {"cuts": list(arrays.cuts), "n_samples": len(arrays)}
    for conv, truth in truths.items():
        block[conv] = {row: accuracy_block(pred, truth) for row, pred in predictions.items()}
    families: dict[str, Any] = {}
    family = np.asarray(arrays.family)
    for fam in _ordered_unique(family):
        rows = (family == fam)[:, None] & np.ones((1, arrays.n_cuts), bool)
        families[fam] = {
            conv: {row: accuracy_block(pred, truth, rows) for row, pred in predictions.items()}
            for conv, truth in truths.items()
        }
    block["families"] = families
    if arrays.provenance is not None:
        block["label_certainty"] = label_certainty(arrays.provenance)
        block["ppt_detection"] = {
            row: ppt_detection(pred, arrays.labels, arrays.provenance, npt)
            for row, pred in predictions.items()
        }
    for key, mask in (("ppt_cuts", ~npt), ("npt_cuts", npt)):
        block[key] = {
            conv: {row: accuracy_block(pred, truth, mask) for row, pred in predictions.items()}
            for conv, truth in truths.items()
        }
    return block


# --------------------------------------------------------------------------------------------------
# predictors


def baseline_names(evaluation: EvaluationSpec | None) -> list[str]:
    """Baseline rows in order: ``ppt`` first (always), then the other configured baselines."""
    names = [PPT_ROW]
    for name in evaluation.baselines if evaluation is not None else []:
        if name not in names:
            names.append(name)
    return names


def validate_baselines(
    evaluation: EvaluationSpec, registry: Registry, key: str = "evaluation.baselines"
) -> None:
    """Check that every configured baseline other than the built-in ``ppt`` row is a plugin."""
    for name in baseline_names(evaluation)[1:]:
        try:
            registry.create("baseline", name, {})
        except QeframeError as exc:
            raise QeframeError(f"{key}: {exc}") from None


def baseline_predictions(
    rho: np.ndarray, names: Sequence[str], registry: Registry | None = None, npt: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-cut predictions ``{name: (N, m) int8}`` of classical criteria.

    ``ppt``: entangled iff the cut is NPT (:func:`npt_mask`) — exact on NPT cuts, blind to PPT
    entanglement. Other names are ``baseline`` plugins (``predict(rho)`` -> 1/0/-1).
    """
    if npt is None:
        npt = npt_mask(rho)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == PPT_ROW:
            out[name] = npt.astype(np.int8)
            continue
        if registry is None:
            from qeframe.plugin.registry import get_registry

            registry = get_registry()
        baseline = registry.create("baseline", name, {})
        out[name] = np.asarray(baseline.predict(rho), dtype=np.int8)  # type: ignore[attr-defined]
    return out


def model_probabilities(
    model: torch.nn.Module,
    rho: np.ndarray,
    *,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Entanglement probabilities ``sigmoid(f(rho))`` ``(N, m)`` float64 of a model, batched."""
    import torch

    from qeframe.learn.arrays import model_input, predict_logits

    x = model_input(rho, torch.device(device))
    logits = predict_logits(model, x, amp_dtype=amp_dtype)
    return torch.sigmoid(logits).double().cpu().numpy()


def calibration_block(
    arrays: DatasetArrays, raw: np.ndarray, calibrated: np.ndarray, npt: np.ndarray
) -> dict[str, Any]:
    """ECE and reliability bins of the raw and the calibrated P(entangled) on the proved PPT cuts."""
    from qeframe.learn.prediction import expected_calibration_error, reliability_bins

    mask = certified_mask(arrays.labels, arrays.provenance) & ~np.asarray(npt, bool)
    y = (np.asarray(arrays.labels)[mask] == 1).astype(int)
    return {
        "n": int(mask.sum()),
        "ece_raw": expected_calibration_error(raw[mask], y),
        "ece_calibrated": expected_calibration_error(calibrated[mask], y),
        "reliability_raw": reliability_bins(raw[mask], y),
        "reliability_calibrated": reliability_bins(calibrated[mask], y),
    }


def evaluate(
    tests: Sequence[DatasetArrays],
    *,
    model: torch.nn.Module | None = None,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    evaluation: EvaluationSpec | None = None,
    registry: Registry | None = None,
    prediction: PredictionConfig | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (row ``model``, when given), the gated model (row ``gated``, when
    ``prediction`` is given too) and the baselines on every test dataset.

    Row ``model``: entangled when the model's probability exceeds ``evaluation.threshold``
    (default 0.5). Row ``gated``: :func:`qeframe.learn.prediction.predict` with ``prediction``.
    Returns the ``results.json`` dict (module docstring).
    """
    from qeframe.learn.prediction import model_logits, predict

    threshold = evaluation.threshold if evaluation is not None else 0.5
    results: dict[str, Any] = {}
    for arrays in tests:
        npt = npt_mask(arrays.rho)
        predictions: dict[str, np.ndarray] = {}
        gated = None
        if model is not None:
            logits = model_logits(model, arrays.rho, device=device, amp_dtype=amp_dtype)
            gated = predict(prediction or _plain(logits.shape[1], threshold), logits, arrays.rho, npt)
            predictions[MODEL_ROW] = (gated.raw > threshold).astype(np.int8)
            if prediction is not None:
                predictions[GATED_ROW] = gated.answer
        predictions.update(baseline_predictions(arrays.rho, baseline_names(evaluation), registry, npt))
        results[arrays.name] = evaluate_arrays(arrays, predictions, npt)
        if (
            gated is not None
            and prediction is not None
            and prediction.calibrated
            and arrays.provenance is not None
        ):
            calibrated = prediction.calibration.apply(gated.logits)
            results[arrays.name]["calibration"] = calibration_block(arrays, gated.raw, calibrated, npt)
    return results


def _plain(n_cuts: int, threshold: float) -> PredictionConfig:
    from qeframe.learn.prediction import PredictionConfig

    return PredictionConfig.uncalibrated(n_cuts, threshold, gate="none")


# --------------------------------------------------------------------------------------------------
# tables


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
