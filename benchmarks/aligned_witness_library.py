"""The ``aligned_witness`` search on exact library states under random filters: recall and CPU-s per
cut of search configurations, in one process (one torch thread).

States: the five library Horodecki states (``b`` in 0.1 ... 0.9) under random single-qubit filters of
condition number 4 and random qubit permutations; half of them partially transposed on their first
qubit (seeds 3, 31, 32: 3 + 30 + 30 states, one PPT cut each) — the construction of
``tests/quantum/test_filter_witness.py``. Every PPT cut is PPT-entangled, so recall = proved / cuts.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/aligned_witness_library.py``. Prints one line per
configuration.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qeframe.quantum.filter_witness import aligned_witness_proofs
from qeframe.quantum.ops import partial_transpose, permute_qubits
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import apply_local_filters, random_local_filters
from qeframe.quantum.witness import horodecki_library_states

CONFIGS = {
    "first stage (8 starts, 100 steps, lr 0.1, float64, one verification)": {
        "steps": 100,
        "lr": 0.1,
        "check_every": None,
        "round_restarts": None,
        "dtype": "float64",
    },
    "staged, 80 steps": {"steps": 80},
    "staged, 80 steps, float64": {"steps": 80, "dtype": "float64"},
    "staged, 80 steps, one round of 8": {"steps": 80, "round_restarts": None},
    "staged, 100 steps, lr 0.1": {"steps": 100, "lr": 0.1},
    "staged defaults (120 steps, lr 0.2, float32, check every 10, rounds of 4)": {},
}


def filtered_horodecki(seed: int, count: int, transpose: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rho = horodecki_library_states(3)[rng.integers(0, 5, count)]
    if transpose:
        rho = partial_transpose(rho, [0])
    rho = apply_local_filters(rho, random_local_filters(count, 3, 4.0, rng))
    return np.stack([permute_qubits(r, list(rng.permutation(3))) for r in rho])


def main() -> None:
    torch.set_num_threads(1)
    rho = np.concatenate(
        [filtered_horodecki(3, 3, False), filtered_horodecki(31, 30, False), filtered_horodecki(32, 30, True)]
    )
    ppt = ~npt_mask(rho)
    for name, kw in CONFIGS.items():
        t0 = time.process_time()
        res = aligned_witness_proofs(rho, ppt, **kw)
        cpu = (time.process_time() - t0) / ppt.sum()
        print(f"{name}: {res.proved[ppt].sum()}/{ppt.sum()} proved, {cpu:.3f} CPU-s per cut", flush=True)


if __name__ == "__main__":
    main()
