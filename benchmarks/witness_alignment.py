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

from qeframe.quantum.witness import load_witness_library
from qeframe.data.reader import open_dataset
from qeframe.learn.train import DatasetArrays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--mode", choices=("lu", "gl"), default="lu")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    a = DatasetArrays.from_dataset(open_dataset(args.dataset))
    rho = torch.tensor(a.rho[: args.n])
    w = torch.tensor(load_witness_library(("horodecki",), None, 3))  # (K, 8, 8), qubit 1 first
    n, k, r = rho.shape[0], w.shape[0], args.restarts
    pa = torch.randn(n, r, k, 8, dtype=torch.float64, requires_grad=True)
    pb = torch.randn(n, r, k, 32, dtype=torch.float64, requires_grad=True)

    def local(p: torch.Tensor, d: int) -> torch.Tensor:
        m = torch.complex(p[..., : d * d], p[..., d * d :]).reshape(*p.shape[:-1], d, d)
        if args.mode == "lu":
            m = 1j * (m + m.conj().transpose(-1, -2)) / 2
        return torch.linalg.matrix_exp(m)

    def values() -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.einsum("...ij,...kl->...ikjl", local(pa, 2), local(pb, 4)).reshape(n, r, k, 8, 8)
        y = g @ rho[:, None, None] @ g.conj().transpose(-1, -2)
        return torch.einsum("kij,nrkji->nrk", w, y).real / torch.einsum("nrkii->nrk", y).real, g

    t0 = time.process_time()
    opt = torch.optim.Adam([pa, pb], lr=0.1)
    for _ in range(args.steps):
        val, _g = values()
        opt.zero_grad()
        val.sum().backward()
        opt.step()
    with torch.no_grad():
        _val, g = values()
    cpu = (time.process_time() - t0) / n
    g = g.numpy()
    y = g @ a.rho[: args.n, None, None] @ np.conj(np.swapaxes(g, -1, -2))
    check = np.einsum("kij,nrkji->nrk", w.numpy(), y).real  # tr(W G rho G^†), float64, unnormalised
    proved = (check.reshape(n, -1) < -1e-9).any(axis=1)
    print(f"{args.dataset} ({args.mode}): {int(proved.sum())} of {n} proved on 1|23, {cpu:.3f} CPU-s/state")


if __name__ == "__main__":
    main()
