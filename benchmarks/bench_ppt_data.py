"""Benchmark the certified PPT-cut data (issue 13): per-family speed, a full build, proofs per provenance.

Writes ``benchmarks/results/ppt_data.json``::

    OMP_NUM_THREADS=1 python benchmarks/bench_ppt_data.py                     # paper-train-ppt, 2 workers
    python benchmarks/bench_ppt_data.py --dataset quickstart-train-ppt --per-family 2000 --out /tmp/p.json

1. **Per family** (one process, one thread): states/s of generation alone and of generation plus
   the ``certified`` labeler without SDPs, after a warm-up that builds the cached witnesses.
2. **Build**: the dataset (default ``paper-train-ppt``) built from ``registry.toml`` into a
   temporary folder with ``--workers`` processes — wall time, CPU seconds of parent and workers.
3. **Certified PPT cuts** of the built store: a cut is PPT when ``lambda_min(rho^{T_A}) >= -1e-10``
   (recomputed from the stored matrices); the report counts the PPT cuts with a proved label
   (``!= -1``), split by label and provenance, and the share of every provenance over all cuts.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, report_header, write_report

FAMILIES = [
    ("filtered-horodecki", {}),
    ("witnessed-horodecki", {"noise": "white"}),
    ("witnessed-horodecki", {"noise": "product"}),
    ("witnessed-horodecki", {"noise": "separable"}),
    ("filtered-separable", {"source": "upb"}),
    ("filtered-separable", {"source": "acin"}),
    ("product-lowrank", {}),
    ("cut-separable", {}),
    ("spectrum-separable", {}),
    ("boundary-separable", {}),
    ("cut-filtered-horodecki", {"noise": "none"}),
    ("cut-filtered-horodecki", {"noise": "white", "b_values": [0.35, 0.6]}),
    ("cut-filtered-horodecki", {"noise": "separable", "b_values": [0.35, 0.6]}),
    ("cut-filtered-horodecki", {"noise": "range-product", "b_values": [0.35, 0.6]}),
]


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def per_family(registry, count: int, seed: int) -> tuple[list[dict], float]:
    labeler = registry.create("labeler", "certified", {"sdp": False, "progress": False})
    labeler.certify(np.eye(8)[None] / 8)  # warm-up
    library_s = time.perf_counter()
    labeler._witness_matrices(8)  # the witness library: built and verified once per process
    library_s = time.perf_counter() - library_s
    print(f"witness library: {library_s:.2f} s", flush=True)
    rows = []
    for name, params in FAMILIES:
        fam = registry.create("family", name, {**params, "local_randomize": True})
        labeler.label(fam.generate(64, np.random.default_rng(seed)))  # warm-up: witnesses, caches
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        batch = fam.generate(count, rng)
        t1 = time.perf_counter()
        labeler.label(batch)
        t2 = time.perf_counter()
        rows.append(
            {
                "family": name,
                "params": params,
                "states": count,
                "generate_states_per_s": round(count / (t1 - t0), 1),
                "generate_and_label_states_per_s": round(count / (t2 - t0), 1),
            }
        )
        print(rows[-1], flush=True)
    return rows, library_s


def certified_ppt_cuts(ds) -> dict:
    from qeframe.plugin.labels import provenance_names
    from qeframe.quantum.ppt import pt_min_eigenvalues

    rho, labels, prov = ds.rho, ds.labels, ds.provenance
    ppt = pt_min_eigenvalues(rho) >= -1e-10
    names = provenance_names(prov)
    proved = ppt & (labels != -1)

    def counts(mask: np.ndarray) -> dict[str, int]:
        values, n = np.unique(names[mask], return_counts=True)
        return {str(v): int(c) for v, c in zip(values, n, strict=True)}

    total = labels.size
    return {
        "cuts": int(total),
        "ppt_cuts": int(ppt.sum()),
        "certified_ppt_cuts": int(proved.sum()),
        "certified_ppt_entangled": int((ppt & (labels == 1)).sum()),
        "certified_ppt_separable": int((ppt & (labels == 0)).sum()),
        "unknown_ppt_cuts": int((ppt & (labels == -1)).sum()),
        "ppt_cuts_by_provenance": counts(ppt),
        "ppt_entangled_by_provenance": counts(ppt & (labels == 1)),
        "ppt_separable_by_provenance": counts(ppt & (labels == 0)),
        "share_of_all_cuts_by_provenance": {
            k: round(v / total, 4) for k, v in counts(np.ones_like(ppt)).items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="paper-train-ppt")
    parser.add_argument("--registry", type=Path, default=Path("registry.toml"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-family", type=int, default=10000, help="states per family in part 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ppt_data.json")
    args = parser.parse_args(argv)

    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import build_dataset
    from qeframe.plugin.registry import Registry

    load0 = os.getloadavg()
    registry = Registry.load()
    report = report_header("ppt_data")
    report["families"], report["witness_library_s"] = per_family(registry, args.per_family, args.seed)

    spec = load_registry_file(args.registry).dataset(args.dataset)
    data_dir = Path(tempfile.mkdtemp(prefix="qeframe-ppt-bench-"))
    try:
        cpu0, t0 = _cpu(), time.perf_counter()
        ds = build_dataset(
            args.dataset,
            spec,
            data_dir=data_dir,
            registry=registry,
            workers=args.workers,
            progress=False,
            force=True,
        )
        wall = time.perf_counter() - t0
        cpu1 = _cpu()
        report["build"] = {
            "dataset": args.dataset,
            "states": len(ds),
            "workers": args.workers,
            "wall_s": round(wall, 2),
            "states_per_s": round(len(ds) / wall, 1),
            "parent_cpu_s": round(cpu1[0] - cpu0[0], 2),
            "workers_cpu_s": round(cpu1[1] - cpu0[1], 2),
            "content_hash": ds.content_hash,
        }
        print(report["build"], flush=True)
        t1 = time.perf_counter()
        report["certified"] = certified_ppt_cuts(ds)
        report["certified"]["count_s"] = round(time.perf_counter() - t1, 2)
        print(report["certified"], flush=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    report["load_average"] = load_average(load0)
    write_report(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
