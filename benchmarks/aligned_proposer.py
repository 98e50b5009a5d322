"""Does a trained proposer beat random starts per CPU-second? The ``aligned_witness`` stage with and
without a proposer, on the same cuts, in the same process (docs/beyond-ppt.md, section 10).

For every dataset (built store; ``--n`` evenly spaced states) and every PPT cut the gate leaves,
rows per method, each :func:`qeframe.quantum.filter_witness.aligned_witness_proofs` with ``R``
starts and ``S`` Adam steps:

- ``random R:S``: ``U = 1`` plus ``R - 1`` random starts (``8:100`` is the stage's default, the
  reference);
- ``proposer R:S``: ``U = 1``, the proposer's ``C`` candidates per witness, then random starts up to
  ``R`` (with ``R <= 1 + C``: no random start). The network's forward pass is charged to it.

Columns: proved / recall on the proved PPT-entangled cuts, false proofs on the proved-separable PPT
cuts (must be 0: every proof is verified), CPU-s (``time.process_time`` of this process, one torch
thread) per PPT cut tried.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/aligned_proposer.py DATASET ... --proposer
proposers/horodecki-3q [--n 150] [--random 8:100,2:0,3:20] [--proposed 3:0,3:20,8:100]
[--json benchmarks/results/aligned_proposer.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from qeframe.data.store import open_dataset
from qeframe.learn.arrays import DatasetArrays
from qeframe.learn.prediction import ppt_gate
from qeframe.learn.proposer import load_proposer
from qeframe.plugin.labels import certified_mask
from qeframe.quantum.filter_witness import aligned_library, aligned_witness_proofs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("datasets", nargs="+")
    p.add_argument("--proposer", required=True)
    p.add_argument("--n", type=int, default=150)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--random", default="8:100,3:0,3:20,3:50")
    p.add_argument("--proposed", default="3:0,3:20,3:50,8:100")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    model, info = load_proposer(a.proposer)
    aligned_library(model.spec.n_qubits)  # built once, charged to no method
    model.propose(np.eye(model.spec.d, dtype=complex)[None] / model.spec.d)  # warm-up
    print(f"proposer {a.proposer} ({info['content_hash'][:12]}), load {os.getloadavg()[0]:.1f}")
    print(
        "| dataset | method | PPT-ent cuts | proved | recall | proved-sep cuts | false proofs | CPU-s / PPT cut |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name in a.datasets:
        arr = DatasetArrays.from_dataset(open_dataset(name, data_dir=Path(a.data_dir)))
        pick = np.linspace(0, len(arr.rho) - 1, min(a.n, len(arr.rho))).astype(int)
        rho, labels = arr.rho[pick], arr.labels[pick]
        npt = ppt_gate(rho)
        proved = certified_mask(labels, arr.provenance[pick]) & ~npt
        ent, sep = proved & (labels == 1), proved & (labels == 0)
        n_ppt = max(1, int((~npt).sum()))
        methods = [("random", c) for c in a.random.split(",") if c] + [
            ("proposer", c) for c in a.proposed.split(",") if c
        ]
        for kind, cfg in methods:
            r, s = (int(v) for v in cfg.split(":"))
            propose = model.propose if kind == "proposer" else None
            t0 = time.process_time()
            hit = aligned_witness_proofs(rho, ~npt, restarts=r, steps=s, propose=propose).proved
            cpu = (time.process_time() - t0) / n_ppt
            row = {
                "dataset": name,
                "method": f"{kind} {r}:{s}",
                "states": len(pick),
                "ppt_cuts": int((~npt).sum()),
                "ent_cuts": int(ent.sum()),
                "proved": int(hit[ent].sum()),
                "recall": float(hit[ent].mean()) if ent.any() else None,
                "sep_cuts": int(sep.sum()),
                "false_proofs": int(hit[sep].sum()),
                "cpu_s_per_ppt_cut": cpu,
                "load": os.getloadavg()[0],
            }
            rows.append(row)
            rec = f"{100 * row['recall']:.1f} %" if row["recall"] is not None else "—"
            print(
                f"| {name} | {row['method']} | {row['ent_cuts']} | {row['proved']} | {rec} | {row['sep_cuts']} | "
                f"{row['false_proofs'] if row['sep_cuts'] else '—'} | {cpu:.4f} |",
                flush=True,
            )
    if a.json:
        out = {"proposer": a.proposer, "content_hash": info["content_hash"], "n": a.n, "rows": rows}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
