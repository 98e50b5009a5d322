"""Recipe fidelity: per group of a paper dataset, the per-cut NPT fraction and the purity quartiles.

Our side: for every family entry of the named ``registry.toml`` datasets, the script draws
``max(--min-count, round(--ratio * count))`` kept states through the same path as
``qeframe data build`` (family -> labeler, :func:`qeframe.data.build.compute_block`, blocks of
``--block`` states until enough are kept) and reports, per group, the fraction of (state, cut)
pairs that are NPT (:func:`qeframe.quantum.ppt.npt_mask`, tolerance ``PPT_TOL``) and the
quartiles of ``tr rho^2``. The draws are a sample of each group's distribution, not the store's
rows (other block sizes give other rows).

The other side (optional, ``--authors DIR``): ``DIR/<dataset>/groups.json`` and
``DIR/<dataset>/groupNN.npy`` — matrices generated elsewhere by the authors' code
(github.com/Maticraft/quantum_correlations; how they were made is in docs/reproducing.md,
"Recipe fidelity"). They are qiskit-ordered (little-endian) and are converted with
:func:`qeframe.quantum.qiskit_interop.reverse_qubit_order` before the same statistics are taken.
No code of theirs is imported here; only their matrices are read.

::

    .venv/bin/python benchmarks/recipe_fidelity.py --ratio 0.02 --authors /tmp/qc-work
    # -> benchmarks/results/recipe_fidelity.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from qeframe.config.specs import load_registry_file
from qeframe.data.build import compute_block
from qeframe.data.store import generation_context
from qeframe.plugin.registry import get_registry
from qeframe.quantum.ops import purity
from qeframe.quantum.ppt import PPT_TOL, npt_mask
from qeframe.quantum.qiskit_interop import reverse_qubit_order

ROOT = Path(__file__).resolve().parent.parent

#: our dataset -> the authors' dataset directory name (see docs/reproducing.md)
DATASETS: dict[str, str] = {
    "paper-train-negativity": "train-negativity",
    "paper-train-verified": "train-verified",
    "paper-test-pure": "test-pure",
    "paper-test-mixed": "test-mixed",
    "paper-test-upb": "test-bennet",
}


def stats(rho: np.ndarray) -> dict[str, Any]:
    """``rho`` ``(N, 8, 8)`` big-endian -> N, per-cut NPT fractions (cut order), their mean, and the
    quartiles of the purity."""
    if rho.shape[0] == 0:
        return {"n": 0}
    npt = npt_mask(rho, tol=PPT_TOL, workers=1)
    p = purity(rho)
    return {
        "n": int(rho.shape[0]),
        "npt_fraction_per_cut": [round(float(x), 4) for x in npt.mean(axis=0)],
        "npt_fraction": round(float(npt.mean()), 4),
        "purity_quartiles": [round(float(x), 4) for x in np.quantile(p, [0.25, 0.5, 0.75])],
    }


def ours(name: str, ratio: float, min_count: int, block: int) -> dict[str, Any]:
    """Per family entry of dataset ``name``: a sample of kept states and its :func:`stats`."""
    spec = load_registry_file(ROOT / "registry.toml").dataset(name)
    ctx = generation_context(name, spec, get_registry())
    groups, pooled = [], []
    t0 = time.process_time()
    for e, entry in enumerate(spec.families):
        want = min(entry.count, max(min_count, round(ratio * entry.count)))
        kept, generated, b = [], 0, 0
        while sum(len(k) for k in kept) < want:
            out = compute_block(ctx, e, b, block)
            kept.append(out.arrays["rho"])
            generated += out.generated
            b += 1
        rho = np.concatenate(kept)[:want]
        pooled.append((entry.count, rho))
        groups.append(
            {
                "tag": entry.label,
                "family": entry.family,
                "params": entry.params,
                "count": entry.count,
                "kept_fraction": round(sum(len(k) for k in kept) / generated, 4),
                **stats(rho),
            }
        )
    return {
        "labeler": spec.labeler.name,
        "total": sum(e.count for e in spec.families),
        "groups": groups,
        "weighted": weighted(pooled),
        "cpu_s": round(time.process_time() - t0, 1),
    }


#: purity window around the UPB test state's purity (1/4, rank 4 with equal weights)
UPB_WINDOW = (0.2, 0.3)


def weighted(pooled: list[tuple[int, np.ndarray]]) -> dict[str, Any]:
    """Dataset-level numbers, each sampled state weighted by ``count / n`` of its group (so the mix
    is the full-size one): the NPT fraction over all (state, cut) pairs, the share of states with
    purity in :data:`UPB_WINDOW`, and the NPT fraction among those states' cuts."""
    w, npt, pur = [], [], []
    for count, rho in pooled:
        if len(rho):
            w.append(np.full(len(rho), count / len(rho)))
            npt.append(npt_mask(rho, tol=PPT_TOL, workers=1).mean(axis=1))
            pur.append(purity(rho))
    w, npt, pur = np.concatenate(w), np.concatenate(npt), np.concatenate(pur)
    near = (pur >= UPB_WINDOW[0]) & (pur <= UPB_WINDOW[1])
    return {
        "npt_fraction": round(float(np.average(npt, weights=w)), 4),
        "share_purity_0.2_0.3": round(float(w[near].sum() / w.sum()), 4),
        "npt_fraction_purity_0.2_0.3": round(float(np.average(npt[near], weights=w[near])), 4)
        if near.any()
        else None,
    }


def theirs(directory: Path) -> dict[str, Any]:
    """Per generator call of the authors' run in ``directory``: its arguments and :func:`stats`."""
    calls = json.loads((directory / "groups.json").read_text())
    groups, pooled = [], []
    for k, call in enumerate(calls):
        rho = np.load(directory / f"group{k:02d}.npy")
        rho = reverse_qubit_order(rho, matrix=True) if len(rho) else rho
        if len(rho):
            pooled.append((call["examples_full"], rho))
        groups.append(
            {
                "call": call["call"],
                "args": {
                    key: call["args"][key]
                    for key in (
                        "specified_method",
                        "mixing_mode",
                        "zero_neg",
                        "num_pure_states",
                        "label_potent_ppt",
                        "entanglement_class",
                    )
                    if key in call["args"]
                },
                "count": call["examples_full"],
                "count_run": call["examples_run"],
                "cpu_s": call["cpu_s"],
                **stats(rho),
            }
        )
    return {"total": sum(c["examples_full"] for c in calls), "groups": groups, "weighted": weighted(pooled)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--ratio", type=float, default=0.02, help="fraction of each group's count to draw")
    ap.add_argument("--min-count", type=int, default=200, help="at least this many states per group")
    ap.add_argument("--block", type=int, default=2000, help="states per generated block")
    ap.add_argument("--authors", type=Path, default=None, help="directory of the authors' generated groups")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/recipe_fidelity.json")
    args = ap.parse_args()
    report: dict[str, Any] = {
        "benchmark": "recipe_fidelity",
        "ratio": args.ratio,
        "min_count": args.min_count,
        "ppt_tol": PPT_TOL,
        "datasets": {},
    }
    if args.authors is not None and (args.authors / "provenance.json").exists():
        # how the authors' matrices were made (commit, fractions, environment), written by that run
        report["authors_provenance"] = json.loads((args.authors / "provenance.json").read_text())
    for name in args.datasets:
        entry: dict[str, Any] = {"ours": ours(name, args.ratio, args.min_count, args.block)}
        if args.authors is not None and (args.authors / DATASETS[name] / "groups.json").exists():
            entry["theirs"] = theirs(args.authors / DATASETS[name])
        report["datasets"][name] = entry
        print(name, json.dumps({k: v["weighted"] for k, v in entry.items()}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
