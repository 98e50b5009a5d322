"""The ``aligned_witness`` proof stage on built stores: proof recall on the proved PPT-entangled cuts,
false proofs on the proved-separable cuts (must be 0), CPU cost — against per-state Adam from random
starts (``benchmarks/witness_alignment.py``, no filter normal form) measured in the same process.

Rows per dataset (every PPT cut, found by the gate; ``--n`` reads an evenly spaced subset of states):

- ``fnf only``: the closed-form part alone (filter normal form, ``U = 1``, no search steps);
- ``stage (R, S)``: :func:`qeframe.quantum.filter_witness.aligned_witness_proofs` with ``R`` starts
  and ``S`` Adam steps (the stage's defaults are 8 and 100);
- ``per-state Adam``: random invertible local filters on the raw state, 8 restarts, 300 steps, the
  same 10 witnesses, on the first ``--adam-n`` PPT-entangled cuts only (it is slow).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/aligned_witness.py DATASET ... [--n N] [--adam-n 100]
[--separable-only]``. Prints Markdown rows; CPU-s are ``time.process_time`` of this process (one
torch thread), per PPT cut tried.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from qeframe.data.store import open_dataset
from qeframe.learn.arrays import DatasetArrays
from qeframe.learn.prediction import ppt_gate
from qeframe.plugin.labels import certified_mask
from qeframe.quantum.filter_witness import aligned_library, aligned_witness_proofs
from qeframe.quantum.witness import qubit_first

sys.path.insert(0, str(Path(__file__).parent))
from witness_alignment import adam_search

HEADER = (
    "| dataset | method | PPT-ent cuts | proved | recall | proved-sep cuts | false proofs | CPU-s / PPT cut |"
)


def _row(name: str, method: str, ent: np.ndarray, sep: np.ndarray, hit: np.ndarray, cpu: float) -> str:
    n_ent, n_sep = int(ent.sum()), int(sep.sum())
    rec = f"{100 * hit[ent].mean():.1f} %" if n_ent else "—"
    return (
        f"| {name} | {method} | {n_ent} | {int(hit[ent].sum())} | {rec} | {n_sep} | "
        f"{int(hit[sep].sum()) if n_sep else '—'} | {cpu:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--adam-n", type=int, default=100)
    parser.add_argument("--separable-only", action="store_true", help="only the stage at its defaults")
    parser.add_argument("--configs", default="1:0,8:100,8:200", help="R:S pairs of the stage")
    args = parser.parse_args()
    torch.set_num_threads(1)
    aligned_library(3)  # built once (about 1.3 CPU-s), not charged to a method
    print(HEADER)
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.datasets:
        a = DatasetArrays.from_dataset(open_dataset(name))
        # --n: an evenly spaced subset (stores are ordered by family)
        pick = np.arange(len(a.rho)) if args.n is None else np.linspace(0, len(a.rho) - 1, args.n).astype(int)
        rho, labels = a.rho[pick], a.labels[pick]
        npt = ppt_gate(rho)
        proved = certified_mask(labels, a.provenance[pick]) & ~npt
        ent, sep = proved & (labels == 1), proved & (labels == 0)
        n_ppt = max(1, int((~npt).sum()))
        configs = ["8:100"] if args.separable_only else args.configs.split(",")
        for cfg in configs:
            r, s = (int(v) for v in cfg.split(":"))
            t0 = time.process_time()
            hit = aligned_witness_proofs(rho, ~npt, restarts=r, steps=s).proved
            cpu = (time.process_time() - t0) / n_ppt
            label = "fnf only" if s == 0 else f"stage ({r}, {s})"
            print(_row(name, label, ent, sep, hit, cpu), flush=True)
        if args.separable_only or not ent.any():
            continue
        rows, cols = np.nonzero(ent)
        rows, cols = rows[: args.adam_n], cols[: args.adam_n]
        x = np.stack([qubit_first(rho[i], c) for i, c in zip(rows, cols)])
        t0 = time.process_time()
        got = adam_search(x, aligned_library(3).witnesses, "gl", 8, 300)
        cpu = (time.process_time() - t0) / len(rows)
        sub = np.zeros_like(ent)
        sub[rows, cols] = True
        hit = np.zeros_like(ent)
        hit[rows[got], cols[got]] = True
        print(_row(name, f"per-state Adam (first {len(rows)})", sub, sub & False, hit, cpu), flush=True)


if __name__ == "__main__":
    main()
