"""Feasibility measurement (not a proof stage yet): align the verified library witnesses to
locally transformed states by optimising local operators, and count the states proved.

For any invertible local ``G = G_A ⊗ G_B`` (``G_A`` on qubit 1, ``G_B`` on qubits 2, 3), ``G^† W G``
is block-positive whenever ``W`` is (``G`` maps product vectors to product vectors), so
``tr(W G rho G^†) < 0`` proves ``rho`` entangled across ``1|23`` whoever chose ``G``. The library
(:func:`qeframe.quantum.witness.load_witness_library`) holds LKCH witnesses of P. Horodecki's
un-randomised states; test states are locally randomised / filtered, so the plain library proves
none of them (docs/beyond-ppt.md, section 7). Here ``G`` is found by Adam on
``tr(W G rho G^†) / tr(G rho G^†)`` (``--mode lu``: ``G = exp(i H)`` unitary; ``gl``: ``exp(X)``, any
invertible), 8 restarts per witness, 300 steps, batched over states in torch; the final value is
recomputed in float64 numpy from the returned ``G`` and must be ``< -1e-9``. A shipped stage would add
the rounding budget of :mod:`qeframe.quantum.realignment` to that margin.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/witness_alignment.py DATASET [--mode lu|gl] [--n 100]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qeframe.data.store import open_dataset
from qeframe.learn.arrays import DatasetArrays
from qeframe.quantum.witness import load_witness_library


def adam_search(
    rho: np.ndarray, w: np.ndarray, mode: str = "gl", restarts: int = 8, steps: int = 300, seed: int = 0
) -> np.ndarray:
    """Per-state Adam from random starts (no filter normal form): ``rho`` ``(n, 8, 8)`` qubit-first
    states, ``w`` ``(K, 8, 8)`` verified witnesses. Returns ``(n,)`` bool: ``tr(W G rho G^†) < -1e-9``
    recomputed in float64 numpy for some witness and restart (no error budget: a feasibility count)."""
    torch.manual_seed(seed)
    rho_t = torch.tensor(rho)
    w_t = torch.tensor(np.asarray(w))
    n, k, r = rho.shape[0], w.shape[0], restarts
    pa = torch.randn(n, r, k, 8, dtype=torch.float64, requires_grad=True)
    pb = torch.randn(n, r, k, 32, dtype=torch.float64, requires_grad=True)

    def local(p: torch.Tensor, d: int) -> torch.Tensor:
        m = torch.complex(p[..., : d * d], p[..., d * d :]).reshape(*p.shape[:-1], d, d)
        if mode == "lu":
            m = 1j * (m + m.conj().transpose(-1, -2)) / 2
        return torch.linalg.matrix_exp(m)

    def values() -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.einsum("...ij,...kl->...ikjl", local(pa, 2), local(pb, 4)).reshape(n, r, k, 8, 8)
        y = g @ rho_t[:, None, None] @ g.conj().transpose(-1, -2)
        return torch.einsum("kij,nrkji->nrk", w_t, y).real / torch.einsum("nrkii->nrk", y).real, g

    opt = torch.optim.Adam([pa, pb], lr=0.1)
    for _ in range(steps):
        val, _g = values()
        opt.zero_grad()
        val.sum().backward()
        opt.step()
    with torch.no_grad():
        _val, g = values()
    g = g.numpy()
    y = g @ rho[:, None, None] @ np.conj(np.swapaxes(g, -1, -2))
    check = np.einsum("kij,nrkji->nrk", np.asarray(w), y).real  # tr(W G rho G^†), float64, unnormalised
    return (check.reshape(n, -1) < -1e-9).any(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--mode", choices=("lu", "gl"), default="lu")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    a = DatasetArrays.from_dataset(open_dataset(args.dataset))
    w = load_witness_library(("horodecki",), None, 3)  # (K, 8, 8), qubit 1 first
    t0 = time.process_time()
    proved = adam_search(a.rho[: args.n], w, args.mode, args.restarts, args.steps)
    cpu = (time.process_time() - t0) / len(proved)
    n = len(proved)
    print(f"{args.dataset} ({args.mode}): {int(proved.sum())} of {n} proved on 1|23, {cpu:.3f} CPU-s/state")


if __name__ == "__main__":
    main()
