"""Train the alignment proposer of the ``aligned_witness`` stage (docs/beyond-ppt.md, section 10).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/train_proposer.py --dataset quickstart-train-ppt
--cuts 20000 --minutes 4 --out proposers/horodecki-3q``. Draws fresh states from the PPT-entangled
families of the named *training* dataset (:func:`qeframe.learn.proposer_training.training_cuts`;
a test set is refused), trains without labels (:func:`~qeframe.learn.proposer_training.train_proposer`)
and writes the proposer folder (weights + ``proposer.json`` with spec, seed, training record,
hashes). Prints the log to stdout.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from qeframe.config.specs import load_registry_file
from qeframe.learn.proposer import ProposerSpec, save_proposer
from qeframe.learn.proposer_training import train_proposer, training_cuts
from qeframe.plugin.registry import get_registry
from qeframe.quantum.filter_witness import aligned_library


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="quickstart-train-ppt")
    p.add_argument("--registry", default="registry.toml")
    p.add_argument("--cuts", type=int, default=20000)
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--unroll", type=int, default=0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--restarts", type=int, default=None, help="search budget recorded for the stage")
    p.add_argument("--steps", type=int, default=None, help="search budget recorded for the stage")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    spec = load_registry_file(a.registry).datasets[a.dataset]
    t0 = time.process_time()
    sigma, stats = training_cuts(a.dataset, spec, get_registry(), a.cuts, seed=a.seed)
    print(f"data: {len(sigma)} FNF cuts {stats} in {time.process_time() - t0:.1f} CPU-s", flush=True)
    n = spec.n_qubits
    arch = ProposerSpec(n, a.candidates, a.hidden, a.depth, aligned_library(n).names)
    model, record = train_proposer(
        sigma,
        arch,
        minutes=a.minutes,
        batch=a.batch,
        lr=a.lr,
        beta=a.beta,
        unroll=a.unroll,
        seed=a.seed,
        log=lambda s: print(s, flush=True),
    )
    record.training.update(
        dataset=a.dataset,
        dataset_identity_hash=spec.identity_hash(),
        families=stats,
        cpu_s=round(time.process_time() - t0, 1),
        threads=a.threads,
    )
    if a.restarts is not None and a.steps is not None:
        record.search = {"restarts": a.restarts, "steps": a.steps}
    digest = save_proposer(a.out, model, record)
    print(json.dumps({"out": a.out, "content_hash": digest, "training": record.training}, default=str))


if __name__ == "__main__":
    main()
