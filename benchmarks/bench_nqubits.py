"""Costs as the number of qubits grows (issue 15): generation, labelling, store, training, PPT test.

For each ``n`` in ``--qubits`` (default 3..6) it measures, and writes to JSON with the machine's
description and the load average::

* **generate** — states/s of each family in :data:`FAMILIES` (``StateFamily.generate``, batched);
* **label** — states/s of the ``negativity`` and ``verified`` labelers on a mixed workload, and the
  ``certified`` labeler per stage on mixtures (PPT cuts decided by exact stages or the DPS-2 SDP;
  the SDP is skipped above ``max_extension_dim``, which is why it stops being practical);
* **store** — bytes per state on disk (:func:`qeframe.data.build.row_shapes` and the store's dtypes:
  ``rho`` complex128 dominates, ``16 * 4**n`` bytes);
* **train** — samples/s of one Adam step (forward + backward, batch ``--batch``) and the peak
  resident memory growth, per backbone, each in a fresh subprocess (``ru_maxrss`` after the steps
  minus before), float32 on the CPU;
* **ppt** — PPT-test matrices/s: ``npt_mask`` over every cut (``n_cuts`` partial transposes per
  state), i.e. states/s times ``n_cuts``.

Times are CPU seconds of this process (``time.process_time``) next to wall seconds: on a shared
machine the CPU time is the stable number. One BLAS thread unless ``--threads``.

    .venv/bin/python benchmarks/bench_nqubits.py --out benchmarks/results/nqubits.json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_average, report_header, write_report

#: (label, family, params) measured for generation.
FAMILIES: list[tuple[str, str, dict[str, Any]]] = [
    ("circuit-separable", "circuit", {"kind": "separable"}),
    ("circuit-entangled", "circuit", {"kind": "entangled"}),
    ("haar-entangled", "haar", {"kind": "entangled"}),
    ("haar-biseparable", "haar", {"kind": "biseparable"}),
    ("product-separable", "product", {"kind": "separable", "source": "haar"}),
    ("mixture-eq7", "mixture", {"base": "circuit", "base_kind": "entangled"}),
    ("reduced-eq8", "reduced", {"source": "circuit", "extra_qubits": 1}),
    ("horodecki", "horodecki", {}),
    ("embedded-horodecki", "embedded", {"source": "horodecki"}),
]

#: (label, backbone, params) measured for training.
BACKBONES: list[tuple[str, str, dict[str, Any]]] = [
    ("cnn", "cnn", {}),
    ("cnn-bn", "cnn", {"batch_norm": True}),
    ("tensor_network-chi8", "tensor_network", {"bond_dim": 8}),
    ("perm_equivariant", "perm_equivariant", {}),
]

#: Backbones with more parameters than this are not trained (the paper's CNN at 6 qubits has
#: ~1.2e8 parameters, almost all in its first fully connected layer).
MAX_PARAMETERS = 30_000_000


def _timed(fn) -> tuple[Any, float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def bench_generate(n: int, count: int, registry) -> dict[str, Any]:
    out = {}
    for label, family, params in FAMILIES:
        fam = registry.create("family", family, params)
        if not fam.supports(n):
            continue
        _, cpu, wall = _timed(lambda fam=fam: fam.generate(count, np.random.default_rng(0), n))
        out[label] = {"states": count, "cpu_s": cpu, "wall_s": wall, "states_per_cpu_s": count / cpu}
    return out


def _mixed_workload(n: int, count: int, registry) -> Any:
    from qeframe.plugin.interfaces import StateBatch

    rng = np.random.default_rng(1)
    parts = [
        registry.create("family", "mixture", {"base": "circuit", "base_kind": "entangled"}).generate(
            count // 2, rng, n
        ),
        registry.create("family", "product", {"kind": "separable", "source": "haar"}).generate(
            count - count // 2, rng, n
        ),
    ]
    return StateBatch.concatenate(parts)


def bench_label(n: int, count: int, certified_count: int, registry) -> dict[str, Any]:
    from qeframe.plugin.labels import provenance_names

    batch = _mixed_workload(n, count, registry)
    out: dict[str, Any] = {}
    for name in ("negativity", "verified"):
        lab = registry.create("labeler", name, {"drop_unknown": False} if name == "verified" else {})
        _, cpu, wall = _timed(lambda lab=lab: lab.label(batch))
        out[name] = {"states": count, "cpu_s": cpu, "wall_s": wall, "states_per_cpu_s": count / cpu}
    if certified_count == 0:
        return out
    # certified: mixtures with white noise so that many cuts are PPT (the expensive case)
    rng = np.random.default_rng(2)
    small = registry.create("family", "mixture", {"base": "haar", "base_kind": "entangled"}).generate(
        certified_count, rng, n
    )
    d = 2**n
    p = rng.uniform(0.05, 0.5, certified_count)[:, None, None]
    rho = p * small.rho + (1 - p) * np.eye(d)[None] / d
    lab = registry.create("labeler", "certified", {"progress": False, "workers": 1})
    cert, cpu, wall = _timed(lambda: lab.certify(rho))
    names = provenance_names(cert.provenance)
    stages, counts = np.unique(names, return_counts=True)
    cuts = cert.labels.size
    out["certified"] = {
        "states": certified_count,
        "cuts": cuts,
        "cpu_s": cpu,
        "wall_s": wall,
        "ms_per_cut_wall": 1e3 * wall / cuts,
        "proved_share": float((cert.labels >= 0).mean()),
        "cuts_per_stage": {str(s): int(c) for s, c in zip(stages, counts)},
        "note": "workers=1; SDP cost is in wall time (solver threads), unknown = SDP skipped or inconclusive",
    }
    return out


def bench_store(n: int) -> dict[str, Any]:
    from qeframe.data.build import ARRAY_DTYPES, row_shapes

    shapes = row_shapes(n)
    per_array = {
        name: int(np.dtype(ARRAY_DTYPES[name]).itemsize * int(np.prod(shapes[name], dtype=np.int64)))
        for name in shapes
        if name in ARRAY_DTYPES
    }
    return {"bytes_per_state": sum(per_array.values()), "per_array": per_array}


def bench_ppt(n: int, count: int, registry) -> dict[str, Any]:
    from qeframe.quantum.cuts import n_cuts
    from qeframe.quantum.ppt import npt_mask

    rho = _mixed_workload(n, count, registry).rho
    _, cpu, wall = _timed(lambda: npt_mask(rho, workers=1))
    matrices = count * n_cuts(n)
    return {
        "states": count,
        "matrices": matrices,
        "cpu_s": cpu,
        "wall_s": wall,
        "matrices_per_cpu_s": matrices / cpu,
    }


_TRAIN_CHILD = r"""
import json, resource, sys, time, torch
from qeframe.plugin.registry import get_registry
torch.manual_seed(0)
n, name, params, batch, steps, max_params = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
model = get_registry().create("backbone", name, params).build(n)
count = sum(p.numel() for p in model.parameters())
if count > max_params:
    print(json.dumps({"parameters": count, "skipped": f"more than {max_params} parameters"})); sys.exit(0)
d = 2 ** n
a = torch.randn(batch, d, d, dtype=torch.complex64); rho = a @ a.mH
rho = rho / rho.diagonal(dim1=1, dim2=2).sum(-1).real[:, None, None]
x = torch.stack([rho.real, rho.imag], 1); y = (torch.rand(batch, (2 ** (n - 1)) - 1) > 0.5).float()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
def step():
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
step()  # warm-up (allocations, Adam state)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0, w0 = time.process_time(), time.perf_counter()
for _ in range(steps):
    step()
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"parameters": count, "batch": batch, "steps": steps, "cpu_s": cpu, "wall_s": wall,
                  "samples_per_cpu_s": batch * steps / cpu, "samples_per_wall_s": batch * steps / wall,
                  "peak_rss_mib": after / 1024, "rss_growth_after_warmup_mib": (after - before) / 1024}))
"""


def bench_train(n: int, batch: int, steps: int) -> dict[str, Any]:
    out = {}
    for label, name, params in BACKBONES:
        proc = subprocess.run(
            [sys.executable, "-c", _TRAIN_CHILD, str(n), name, json.dumps(params), str(batch), str(steps),
             str(MAX_PARAMETERS)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            out[label] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
        else:
            out[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def markdown_table(report: dict[str, Any]) -> str:
    """The docs/n-qubits.md cost table of a report (one column per n)."""
    res = report["results"]
    ns = sorted(res, key=int)

    def cell(n: str, *path: str, fmt: str = "{:,.0f}") -> str:
        v: Any = res[n]
        for key in path:
            if not isinstance(v, dict) or key not in v:
                return "–"
            v = v[key]
        return fmt.format(v) if isinstance(v, (int, float)) else str(v)

    rows = [("cuts", [str(2 ** (int(n) - 1) - 1) for n in ns])]
    for label, _, _ in FAMILIES:
        rows.append(
            (
                f"generate `{label}` (states/CPU-s)",
                [cell(n, "generate", label, "states_per_cpu_s") for n in ns],
            )
        )
    for lab in ("negativity", "verified"):
        rows.append(
            (f"label `{lab}` (states/CPU-s)", [cell(n, "label", lab, "states_per_cpu_s") for n in ns])
        )
    rows.append(
        (
            "`certified`: wall ms per cut (noisy mixtures, SDPs in a pool)",
            [cell(n, "label", "certified", "ms_per_cut_wall") for n in ns],
        )
    )
    rows.append(
        (
            "`certified`: cuts proved (%)",
            [cell(n, "label", "certified", "proved_share", fmt="{:.0%}") for n in ns],
        )
    )
    rows.append(("store bytes per state", [cell(n, "store", "bytes_per_state") for n in ns]))
    rows.append(("PPT test `npt_mask` (matrices/CPU-s)", [cell(n, "ppt", "matrices_per_cpu_s") for n in ns]))
    for label, _, _ in BACKBONES:
        rows.append(
            (f"train `{label}` (samples/CPU-s)", [cell(n, "train", label, "samples_per_cpu_s") for n in ns])
        )
        rows.append(
            (f"train `{label}` peak RSS (MiB)", [cell(n, "train", label, "peak_rss_mib") for n in ns])
        )
        rows.append((f"`{label}` parameters", [cell(n, "train", label, "parameters") for n in ns]))
    lines = ["| quantity | " + " | ".join(f"n = {n}" for n in ns) + " |", "|---|" + "---:|" * len(ns)]
    lines += [f"| {name} | " + " | ".join(vals) + " |" for name, vals in rows]
    return "\n".join(lines)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[3, 4, 5, 6])
    parser.add_argument("--states", type=int, default=512, help="states per generation/label/PPT measurement")
    parser.add_argument(
        "--certified-states", type=int, default=8, help="states for the certified labeler (0: skip it)"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["generate", "label", "store", "train", "ppt"]
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/nqubits.json"))
    parser.add_argument("--table", type=Path, help="print the markdown table of an existing report and exit")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.table.read_text())))
        return

    from qeframe.plugin.registry import get_registry

    registry = get_registry()
    load0 = os.getloadavg()
    report = report_header("bench_nqubits")
    report.update(
        {"omp_threads": os.environ.get("OMP_NUM_THREADS"), "args": {k: str(v) for k, v in vars(args).items()}}
    )
    results: dict[str, Any] = {}
    for n in args.qubits:
        row: dict[str, Any] = {}
        steps = {
            "generate": lambda n=n: bench_generate(n, args.states, registry),
            "label": lambda n=n: bench_label(n, args.states, args.certified_states, registry),
            "store": lambda n=n: bench_store(n),
            "ppt": lambda n=n: bench_ppt(n, args.states, registry),
            "train": lambda n=n: bench_train(n, args.batch, args.steps),
        }
        for key, fn in steps.items():
            if key in args.skip:
                continue
            row[key] = fn()
            print(f"n={n} {key}: done", file=sys.stderr, flush=True)
        results[str(n)] = row
        report["results"] = results
        report["load_average"] = load_average(load0)
        report["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        write_report(args.out, report)  # after every n: a partial report survives an interrupted run
    print(
        json.dumps(
            {n: {k: list(v) if isinstance(v, dict) else v for k, v in r.items()} for n, r in results.items()}
        )
    )


if __name__ == "__main__":
    main()
