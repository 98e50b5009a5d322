"""A shipped run's weights under another experiment's prediction settings, on evenly spaced subsets.

Loads the run folder ``--run`` (weights and fitted ``prediction.json``: calibration and thresholds
unchanged, nothing is retrained or refitted), replaces its proof settings (``proofs``,
``ppt_entangled``, ``proof_search``) by those ``--experiment`` declares in ``registry.toml``, and
evaluates :func:`qeframe.evaluation.evaluate.evaluate` (rows ``model``, ``gated``, ``gated-proof``,
``ppt``) on ``--n`` evenly spaced states of each test set of that experiment (all states with
``--n 0``). Writes ``results.json`` (the evaluation's layout) and ``summary.md`` into ``--out``
and prints, per test set and row: NPT-cut accuracy, recall on proved PPT-entangled cuts and
false-positive rate on proved separable PPT cuts (with Wilson 95 % intervals), abstention, and the
mean per-cut accuracy under the ``correct`` convention.

Usage (CPU, one torch thread; the proof search is the cost)::

    OMP_NUM_THREADS=1 python benchmarks/proof_policy_eval.py --run pretrained/paper-gated-pe \\
        --experiment paper-proof-pe --n 2000 --out runs/paper-proof-pe-subsets [--device cuda]

``--device`` is the device of the model and of the proof search (``cuda``: the search's chunks run
on the GPU; the filter normal form and the float64 verification stay on the CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from qeframe.config.specs import load_registry_file
from qeframe.data.store import open_dataset
from qeframe.detector import Detector
from qeframe.evaluation.evaluate import evaluate
from qeframe.learn.arrays import DatasetArrays
from qeframe.plugin.registry import get_registry

ROWS = ("model", "gated", "gated-proof", "ppt")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion ``k / n`` (Wilson, JASA 22, 209 (1927))."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, c - h), min(1.0, c + h)


def subset(a: DatasetArrays, n: int) -> DatasetArrays:
    """``n`` evenly spaced states of ``a`` (stores are ordered by family); all when ``n`` is 0 or more."""
    if n <= 0 or n >= len(a.rho):
        return a
    pick = np.unique(np.linspace(0, len(a.rho) - 1, n).astype(int))
    take = lambda x: None if x is None else x[pick]
    return DatasetArrays(
        a.name,
        a.rho[pick],
        a.labels[pick],
        take(a.ground_truth),
        take(a.family),
        take(a.pptes),
        list(a.cuts),
        take(a.provenance),
    )


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _ci(rate: float | None, n: int) -> str:
    if rate is None or n == 0:
        return "—"
    lo, hi = wilson(round(rate * n), n)
    return f"{100 * rate:.2f} [{100 * lo:.2f}, {100 * hi:.2f}] (n={n})"


def summary_rows(name: str, res: dict) -> list[str]:
    """Markdown rows for one test set of a ``results.json`` dict."""
    out = []
    for row in ROWS:
        det = res.get("ppt_detection", {}).get(row)
        if det is None:
            continue
        npt = res["npt_cuts"]["correct"].get(row, {}).get("mean")
        mean = res["correct"].get(row, {}).get("mean")
        out.append(
            f"| {name} | {row} | {_pct(npt)} | {_ci(det['recall'], det['n_ppt_entangled'])} | "
            f"{_ci(det['fpr'], det['n_ppt_separable'])} | {_pct(det['abstention'])} | {_pct(mean)} |"
        )
    return out


HEADER = (
    "| test set | row | NPT cuts: accuracy % | recall on proved PPT-entangled cuts % [Wilson 95 %] | "
    "FPR on proved separable PPT cuts % [Wilson 95 %] | abstention on PPT cuts % | mean per-cut accuracy "
    "(`correct`) % |\n|---|---|---:|---:|---:|---:|---:|"
)


def timed_evaluate(arrays: DatasetArrays, name: str, detector: Detector, spec, prediction) -> dict:
    """The framework's ``evaluate`` of ``detector``'s model on one test set under ``prediction``, with
    the PPT baseline beside it and the call's ``cost`` (process CPU-s and wall-s) added."""
    t0, w0 = time.process_time(), time.perf_counter()
    res = evaluate(
        [arrays],
        model=detector.model,
        device=detector.device,
        evaluation=spec.evaluation.model_copy(update={"baselines": ["ppt"]}),
        registry=get_registry(),
        prediction=prediction,
    )[name]
    res["cost"] = {"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0}
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--registry", default="registry.toml")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--datasets", nargs="*", default=None, help="default: the experiment's test sets")
    args = parser.parse_args()
    torch.set_num_threads(1)
    registry_file = load_registry_file(Path(args.registry))
    spec = registry_file.experiment(args.experiment)
    detector = Detector.from_run(args.run, device=args.device)
    p = spec.prediction
    prediction = replace(
        detector.prediction,
        proofs=tuple(p.proofs),
        ppt_entangled=p.ppt_entangled,
        proof_search=p.proof_search,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    lines = [
        (
            f"run `{args.run}` (weights and calibration unchanged), proof settings of `{args.experiment}`: "
            f"proofs = {list(p.proofs)}, ppt_entangled = {p.ppt_entangled!r}, proof_search = {p.proof_search!r}; "
            f"{args.n or 'all'} evenly spaced states per test set"
        ),
        "",
        HEADER,
    ]
    for name in args.datasets or list(spec.test):
        arrays = subset(DatasetArrays.from_dataset(open_dataset(name, data_dir=Path(args.data_dir))), args.n)
        res = timed_evaluate(arrays, name, detector, spec, prediction)
        results[name] = res
        (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
        rows = summary_rows(f"{name} ({len(arrays.rho)})", res)
        lines += rows
        print("\n".join(rows), f"\n<!-- {name}: {res['cost']['cpu_s']:.0f} CPU-s -->", flush=True)
        (out / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
