"""Detection rates of the filter-normal-form certificate (``ccnr_fnf``) on built dataset stores.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/fnf_certificate.py DATASET ...`` (stores under data/,
built with ``qeframe data build``). Per dataset and family: the share of PPT cuts with a proved
"entangled" label that the certificate proves entangled (plain CCNR beside it), the number of
cuts with a proved "separable" label it calls entangled (must be 0: it is a proof), and states/s.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from qeframe.labels import certified_mask
from qeframe.prediction import ppt_gate
from qeframe.quantum.realignment import fnf_certificate, realignment_norms
from qeframe.store import open_dataset
from qeframe.train import DatasetArrays


def main(names: list[str]) -> None:
    print("| dataset | family | PPT-ent cuts | FNF proved | CCNR proved | proved-sep cuts | FNF on sep | states/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        a = DatasetArrays.from_dataset(open_dataset(name))
        npt = ppt_gate(a.rho)
        proved = certified_mask(a.labels, a.provenance)
        t0 = time.process_time()
        cert = fnf_certificate(a.rho)
        cpu = time.process_time() - t0
        ccnr = realignment_norms(a.rho) > 1 + 1e-9
        for fam in sorted(set(a.family.tolist())) + ["(all)"]:
            rows = np.ones(len(a.rho), bool) if fam == "(all)" else a.family == fam
            ent = proved[rows] & (a.labels[rows] == 1) & ~npt[rows]
            sep = proved[rows] & (a.labels[rows] == 0)
            n_ent, n_sep = int(ent.sum()), int(sep.sum())
            f = cert.entangled[rows]
            rate = lambda m: f"{100 * m[ent].mean():.1f} %" if n_ent else "—"  # noqa: E731
            print(
                f"| {name} | {fam} | {n_ent} | {rate(f)} | {rate(ccnr[rows])} | {n_sep} | {int(f[sep].sum())} | "
                + (f"{len(a.rho) / cpu:.0f} |" if fam == "(all)" else " |")
            )


if __name__ == "__main__":
    main(sys.argv[1:])
