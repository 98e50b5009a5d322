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
    "| dataset | method | PPT-ent cuts | proved | recall | proved-sep cuts | false proofs | CPU-s / PPT cut "
    "| skipped (rank rules) |"
)


def _config(cfg: str) -> tuple[dict, str]:
    """``R:S[:cN][:kN][:f32][:skip]`` -> keyword arguments of ``aligned_witness_proofs`` and a label.

    ``default``: the stage at its current defaults. ``R`` starts, ``S`` steps; ``lrX`` Adam's learning rate; ``rN`` staged restarts in rounds of ``N``; ``cN`` verify every ``N`` steps (early exit); ``kN`` keep the ``N``
    best candidates per state at the first check; ``f32`` search in float32; ``skip`` skip the cuts
    the rank rules prove separable. Without flags: the stage as first shipped (one verification at the
    end, no pruning, float64, no skip)."""
    if cfg == "default":
        return {}, "stage (defaults)"
    r, s, *flags = cfg.split(":")
    kw = {
        "restarts": int(r),
        "lr": 0.1,
        "steps": int(s),
        "check_every": None,
        "keep": None,
        "dtype": "float64",
        "skip_separable": False,
        "round_restarts": None,
    }
    for f in flags:
        if f.startswith("c"):
            kw["check_every"] = int(f[1:])
        elif f.startswith("k"):
            kw["keep"] = int(f[1:])
        elif f.startswith("r"):
            kw["round_restarts"] = int(f[1:])
        elif f.startswith("lr"):
            kw["lr"] = float(f[2:])
        elif f == "f32":
            kw["dtype"] = "float32"
        elif f == "skip":
            kw["skip_separable"] = True
        else:
            raise SystemExit(f"unknown flag {f!r} in config {cfg!r}")
    label = "fnf only" if int(s) == 0 else f"stage ({cfg})"
    return kw, label


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
    parser.add_argument("--separable-only", action="store_true", help="no per-state Adam rows")
    parser.add_argument("--configs", default="1:0,8:100,8:200", help="R:S[:flags] configs (see _config)")
    parser.add_argument("--device", default=None, help="torch device of the search (cpu, cuda)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    aligned_library(3)  # built once (about 1.3 CPU-s), not charged to a method
    print(HEADER)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.datasets:
        a = DatasetArrays.from_dataset(open_dataset(name))
        # --n: an evenly spaced subset (stores are ordered by family)
        # (capped at the store's size: np.linspace with n > len repeats states, which is what made
        # `--n 100000` on the 500-state quickstart sets search 100,000 states)
        pick = (
            np.arange(len(a.rho))
            if args.n is None or args.n >= len(a.rho)
            else np.unique(np.linspace(0, len(a.rho) - 1, args.n).astype(int))
        )
        rho, labels = a.rho[pick], a.labels[pick]
        npt = ppt_gate(rho)
        proved = certified_mask(labels, a.provenance[pick]) & ~npt
        ent, sep = proved & (labels == 1), proved & (labels == 0)
        n_ppt = max(1, int((~npt).sum()))
        configs = args.configs.split(",")
        for cfg in configs:
            kwargs, label = _config(cfg)
            t0 = time.process_time()
            res = aligned_witness_proofs(rho, ~npt, device=args.device, **kwargs)
            cpu = (time.process_time() - t0) / n_ppt
            skipped = int((res.skipped > 0).sum())
            print(_row(name, label, ent, sep, res.proved, cpu) + f" {skipped} |", flush=True)
        if args.separable_only or not ent.any() or args.adam_n == 0:
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
        print(
            _row(name, f"per-state Adam (first {len(rows)})", sub, sub & False, hit, cpu) + " — |", flush=True
        )


if __name__ == "__main__":
    main()
