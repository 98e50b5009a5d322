"""Exploratory probe (not a proof stage): would the ``ball`` / ``spectrum`` stages prove more PPT cuts
after bringing each cut to filter normal form?

Invertible local filters ``G = F_A ⊗ F_B`` keep separability in both directions, so a cut whose
filtered state ``G rho G^† / tr`` is in the separable ball or has an absolutely separable spectrum is
separable. This probe uses :func:`qeframe.quantum.realignment.filter_normal_form`'s iterated
``sigma`` directly, **without** a rounding bound on it, so its counts are not proofs; it measures
whether such a stage would be worth making rigorous (docs/beyond-ppt.md, section 11). For
``paper-test-ppt-separable`` it also counts the cuts that ``paper-proof-pe`` abstains on
(the model's calibrated answer is not "separable"; no entangled proof exists on separable cuts).

Usage (CPU, about 1 min)::

    OMP_NUM_THREADS=1 python benchmarks/separable_fnf_probe.py --data-dir data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from qeframe.data.reader import open_dataset
from qeframe.detector import Detector
from qeframe.learn.prediction import model_logits, ppt_gate, predict
from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import permute_qubits
from qeframe.quantum.realignment import filter_normal_form
from qeframe.quantum.separable_proofs import separable_proofs

SETS = (
    "paper-test-ppt-separable",
    "paper-test-mixed",
    "paper-test-certified",
    "paper-test-ppt-entangled",
    "paper-test-ppt-entangled-cutfilter",
    "paper-test-horodecki",
)


def fnf_provable(rho: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(N, 3)`` bool: ``ball`` or ``spectrum`` holds for the FNF of the cut (three qubits, cuts in ``mask``)."""
    out = np.zeros(mask.shape, bool)
    for cut in bipartitions(3):
        rows = np.flatnonzero(mask[:, cut.index])
        if rows.size == 0:
            continue
        x = np.stack([permute_qubits(r, list(cut.side_a) + list(cut.side_b)) for r in rho[rows]])
        sigma = filter_normal_form(x, 2 ** len(cut.side_a), 8 // 2 ** len(cut.side_a)).sigma
        first = np.zeros((rows.size, 3), bool)
        first[:, 0] = True  # sigma has the qubit of A first: its cut 1|23
        out[rows, cut.index] = separable_proofs(sigma, first, ("ball", "spectrum")).proved[:, 0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--run", default="pretrained/paper-gated-pe")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    det = Detector.from_run(args.run, device="cpu")
    for name in SETS:
        rho = open_dataset(name, data_dir=Path(args.data_dir)).rho
        rho = rho[np.unique(np.linspace(0, len(rho) - 1, args.n).astype(int))]
        ppt = ~ppt_gate(rho)
        exact = separable_proofs(rho, ppt).proved
        fnf = fnf_provable(rho, ppt & ~exact)
        line = f"{name}: PPT cuts {int(ppt.sum())}, proved by the exact stages {int(exact.sum())}, FNF ball/spectrum {int(fnf.sum())}"
        if name == "paper-test-ppt-separable":
            answer = predict(det.prediction, model_logits(det.model, rho), rho).answer
            abstained = ppt & (answer != 0)
            line += f"; abstained under proof policy {int(abstained.sum())}, of them FNF ball/spectrum {int((abstained & fnf).sum())}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
