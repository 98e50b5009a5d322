"""``paper-proof-pe`` with and without ``prediction.separable_proofs``, in the same run, PPT beside them.

Loads the run folder ``--run`` (weights and fitted ``prediction.json`` unchanged), applies the proof
settings ``--experiment`` declares in ``registry.toml`` once with its ``separable_proofs`` removed
(``without``: the setting before this option existed) and once as declared (``with``), and evaluates
each with :func:`qeframe.evaluation.evaluate.evaluate` on ``--n`` evenly spaced states of each
dataset (:func:`proof_policy_eval.subset`, the subsets of ``benchmarks/results/proof_policy_eval_format4``).
Beside the evaluation's rows it counts, from the separability stages alone (cheap, no search): PPT
cuts, cuts proved separable per proof, those whose stored label is a proved "entangled" (must be 0),
and how many of the ``without`` configuration's abstentions became proved "separable" answers.

Writes ``<dataset>.json`` per dataset into ``--out`` (both evaluations and the counts) and, with
``--summarize``, ``summary.md`` from every ``*.json`` there. Usage (CPU, one torch thread)::

    OMP_NUM_THREADS=1 python benchmarks/separable_proofs_eval.py --run pretrained/paper-gated-pe \\
        --experiment paper-proof-pe --n 1000 --out benchmarks/results/separable_proofs_eval \\
        --data-dir data --datasets paper-test-ppt-separable paper-test-mixed
    python benchmarks/separable_proofs_eval.py --summarize --out benchmarks/results/separable_proofs_eval
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proof_policy_eval import HEADER, subset, summary_rows, timed_evaluate

from qeframe.config.specs import load_registry_file
from qeframe.data.store import open_dataset
from qeframe.detector import Detector
from qeframe.learn.arrays import DatasetArrays
from qeframe.learn.prediction import ppt_gate
from qeframe.plugin.labels import certified_mask
from qeframe.quantum.separable_proofs import PROOF_NAMES, separable_proofs


def counts(arrays: DatasetArrays, stages: tuple[str, ...]) -> dict:
    """Separability proofs on the PPT cuts of ``arrays`` against the stored labels."""
    npt = ppt_gate(arrays.rho)
    sep = separable_proofs(arrays.rho, ~npt, stages)
    proved_label = certified_mask(arrays.labels, arrays.provenance)
    hit = sep.proved
    return {
        "n_ppt": int((~npt).sum()),
        "proved_separable": int(hit.sum()),
        "by_proof": {PROOF_NAMES[c]: int((sep.proof == c).sum()) for c in np.unique(sep.proof[hit])},
        "on_proved_entangled_labels": int((hit & proved_label & (arrays.labels == 1)).sum()),
        "on_proved_separable_labels": int((hit & proved_label & (arrays.labels == 0)).sum()),
        "on_unproved_labels": int((hit & ~proved_label).sum()),
    }


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    spec = load_registry_file(Path(args.registry)).experiment(args.experiment)
    p = spec.prediction
    if not p.separable_proofs:
        raise SystemExit(f"{args.experiment} declares no prediction.separable_proofs")
    detector = Detector.from_run(args.run, device=args.device)
    base = replace(
        detector.prediction,
        proofs=tuple(p.proofs),
        ppt_entangled=p.ppt_entangled,
        proof_search=p.proof_search,
    )
    configs = {
        "without": replace(base, separable_proofs=()),
        "with": replace(base, separable_proofs=tuple(p.separable_proofs)),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        arrays = subset(DatasetArrays.from_dataset(open_dataset(name, data_dir=Path(args.data_dir))), args.n)
        record: dict = {
            "n_states": len(arrays.rho),
            "settings": {
                "run": args.run,
                "experiment": args.experiment,
                "proofs": list(p.proofs),
                "ppt_entangled": p.ppt_entangled,
                "proof_search": p.proof_search,
                "separable_proofs": list(p.separable_proofs),
            },
        }
        t0 = time.process_time()
        record["counts"] = counts(arrays, tuple(p.separable_proofs))
        record["counts"]["cpu_s"] = time.process_time() - t0
        for variant, prediction in configs.items():
            res = timed_evaluate(arrays, name, detector, spec, prediction)
            record[variant] = res
            print(f"{name} {variant}: {res['cost']['cpu_s']:.0f} CPU-s", flush=True)
        before = record["without"]["ppt_detection"]["gated-proof"]
        after = record["with"]["ppt_detection"]["gated-proof"]
        record["counts"]["abstentions_without"] = round(before["abstention"] * before["n_ppt"])
        record["counts"]["abstentions_with"] = round(after["abstention"] * after["n_ppt"])
        (out / f"{name}.json").write_text(json.dumps(record, indent=1, default=float))


def summarize(out: Path) -> None:
    lines = []
    files = sorted(out.glob("*.json"))
    first = json.loads(files[0].read_text())["settings"]
    lines += [
        (
            f"run `{first['run']}` (weights and calibration unchanged), proof settings of `{first['experiment']}`: "
            f"proofs = {first['proofs']}, ppt_entangled = {first['ppt_entangled']!r}, proof_search = "
            f"{first['proof_search']!r}; `without` / `with` separable_proofs = {first['separable_proofs']}, same run"
        ),
        "",
        (
            "| test set (states) | PPT cuts | proved separable (by proof) | of them on proved-entangled labels | "
            "abstentions without -> with | became proved separable | CPU-s without / with |"
        ),
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    tables = []
    for f in files:
        r = json.loads(f.read_text())
        c = r["counts"]
        by = ", ".join(f"{k} {v}" for k, v in c["by_proof"].items()) or "—"
        lines.append(
            f"| {f.stem} ({r['n_states']}) | {c['n_ppt']} | {c['proved_separable']} ({by}) | "
            f"{c['on_proved_entangled_labels']} | {c['abstentions_without']} -> {c['abstentions_with']} | "
            f"{c['abstentions_without'] - c['abstentions_with']} | {r['without']['cost']['cpu_s']:.0f} / "
            f"{r['with']['cost']['cpu_s']:.0f} |"
        )
        for variant in ("without", "with"):
            tables += summary_rows(f"{f.stem} ({r['n_states']}), {variant}", r[variant])
    lines += ["", HEADER, *tables]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="pretrained/paper-gated-pe")
    parser.add_argument("--experiment", default="paper-proof-pe")
    parser.add_argument("--registry", default="registry.toml")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--datasets", nargs="*", default=[])
    parser.add_argument("--summarize", action="store_true")
    args = parser.parse_args()
    if args.datasets:
        run(args)
    if args.summarize:
        summarize(Path(args.out))


if __name__ == "__main__":
    main()
