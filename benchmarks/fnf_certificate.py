"""Proof stages on PPT cuts (``realignment`` = the FNF certificate, ``witness`` = the verified
library) on built dataset stores: what share of the proved PPT-entangled cuts they prove, and how
many proved-separable cuts they call entangled (must be 0: they are proofs).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/fnf_certificate.py DATASET ...`` (stores under data/,
built with ``qeframe data build``). Prints a Markdown table per dataset and family; plain CCNR
(``||R(rho)||_1 > 1 + 1e-9`` without filters) beside it; states/s are CPU time of the FNF
certificate on every cut of every state (one process, one thread).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from qeframe.plugin.labels import certified_mask
from qeframe.learn.prediction import ppt_gate, proof_stages
from qeframe.quantum.realignment import fnf_certificate, realignment_norms
from qeframe.data.reader import open_dataset
from qeframe.learn.train import DatasetArrays

HEADER = (
    "| dataset | family | PPT-ent cuts | realignment (FNF) | plain CCNR | witness library | both stages "
    "| proved-sep cuts | proof stages on sep | FNF states/s |"
)


def _rate(hits: np.ndarray, mask: np.ndarray) -> str:
    return f"{100 * hits[mask].mean():.1f} %" if mask.any() else "—"


def main(names: list[str]) -> None:
    print(HEADER)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        a = DatasetArrays.from_dataset(open_dataset(name))
        npt = ppt_gate(a.rho)
        proved = certified_mask(a.labels, a.provenance)
        t0 = time.process_time()
        fnf = fnf_certificate(a.rho).entangled
        cpu = time.process_time() - t0
        ccnr = realignment_norms(a.rho) > 1 + 1e-9
        wit = proof_stages(a.rho, ["witness"], ~npt).astype(bool)
        both = proof_stages(a.rho, ["witness", "realignment"], ~npt).astype(bool)
        families = sorted(set(a.family.tolist()))
        for fam in families + (["(all)"] if len(families) > 1 else []):
            rows = np.ones(len(a.rho), bool) if fam == "(all)" else a.family == fam
            ent = proved[rows] & (a.labels[rows] == 1) & ~npt[rows]
            sep = proved[rows] & (a.labels[rows] == 0)
            on_sep = int((fnf[rows] | both[rows])[sep].sum())
            print(
                f"| {name} | {fam} | {int(ent.sum())} | {_rate(fnf[rows], ent)} | {_rate(ccnr[rows], ent)} | "
                f"{_rate(wit[rows], ent)} | {_rate(both[rows], ent)} | {int(sep.sum())} | {on_sep} | "
                + (
                    f"{len(a.rho) / cpu:.0f} |"
                    if fam in ("(all)", families[-1]) and rows.all() or fam == "(all)"
                    else " |"
                )
            )


if __name__ == "__main__":
    main(sys.argv[1:])
