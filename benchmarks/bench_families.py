"""Throughput of the paper's state families on one core: generation, and generation + negativity labels.

For every configuration below (the groups of the paper's Table I and Appendix) the script times
``family.generate(count, rng, n)`` and then :class:`~qeframe_plugins.labelers.negativity.NegativityLabeler`
on the result, and writes states per second to ``benchmarks/results/families.json``::

    .venv/bin/python benchmarks/bench_families.py                  # 3 qubits, 20 000 states each
    .venv/bin/python benchmarks/bench_families.py --n-qubits 3 4 --count 5000

The process is pinned to one CPU (``sched_setaffinity``) and BLAS/OpenMP to one thread before
numpy is imported, so the numbers are per core even where the labeler starts threads. Each timing is the best of ``--repeat``
runs (the machine may be shared).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if hasattr(os, "sched_setaffinity"):  # one core for every thread, the labeler's included
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from qeframe_plugins.labelers.negativity import NegativityLabeler

from qeframe.plugin.registry import Registry

#: (label, family name, params) — the paper's generation recipes.
CONFIGS: list[tuple[str, str, dict]] = [
    ("circuit/separable", "circuit", {"kind": "separable"}),
    ("circuit/biseparable", "circuit", {"kind": "biseparable"}),
    ("circuit/entangled", "circuit", {"kind": "entangled"}),
    ("circuit/ghz", "circuit", {"kind": "ghz"}),
    ("circuit/w", "circuit", {"kind": "w"}),
    ("haar/separable", "haar", {"kind": "separable"}),
    ("haar/biseparable", "haar", {"kind": "biseparable"}),
    ("haar/entangled", "haar", {"kind": "entangled"}),
    ("product/separable-circuit-inner", "product", {"source": "circuit"}),
    (
        "product/separable-circuit-outer",
        "product",
        {"source": "circuit", "terms": (2, 16), "pure_factors": True},
    ),
    ("product/separable-haar-inner", "product", {"source": "haar"}),
    ("product/separable-traced", "product", {"source": "traced"}),
    (
        "product/biseparable-circuit-outer",
        "product",
        {"kind": "biseparable", "terms": (2, 16), "pure_factors": True},
    ),
    (
        "product/biseparable-haar-outer",
        "product",
        {"kind": "biseparable", "source": "haar", "terms": (2, 16), "pure_factors": True},
    ),
    ("mixture/circuit-entangled", "mixture", {}),
    ("mixture/circuit-entangled-npt", "mixture", {"keep": "npt"}),
    ("mixture/circuit-entangled-npt_all", "mixture", {"keep": "npt_all"}),
    ("mixture/haar-entangled-npt", "mixture", {"base": "haar", "keep": "npt"}),
    ("mixture/circuit-separable", "mixture", {"base_kind": "separable"}),
    ("reduced/circuit", "reduced", {}),
    ("reduced/haar", "reduced", {"source": "haar", "extra_qubits": 2}),
    ("reduced/circuit-max-rank", "reduced", {"max_rank": True}),
]


def best_of(repeat: int, fn, *args) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls ``fn(*args)`` and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def generate(family, count: int, n: int):
    """One timed call: a fresh generator per call, so that every repeat does the same work."""
    return family.generate(count, np.random.default_rng(0), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-qubits", type=int, nargs="+", default=[3])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "families.json")
    args = parser.parse_args()

    registry = Registry.load()
    labeler = NegativityLabeler()
    rows = []
    for n in args.n_qubits:
        count = args.count if n <= 3 else max(args.count // 4, 1)
        for label, name, params in CONFIGS:
            family = registry.create("family", name, params)
            t_gen, batch = best_of(args.repeat, generate, family, count, n)
            t_lab, _ = best_of(args.repeat, labeler.label, batch)
            row = {
                "config": label,
                "family": name,
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
                "n_qubits": n,
                "count": count,
                "generate_states_per_s": round(count / t_gen),
                "label_states_per_s": round(count / t_lab),
                "generate_and_label_states_per_s": round(count / (t_gen + t_lab)),
            }
            rows.append(row)
            print(
                f"n={n} {label:40s} gen {row['generate_states_per_s']:>9,d}/s   "
                f"gen+label {row['generate_and_label_states_per_s']:>9,d}/s"
            )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "what": "states per second on one core (best of repeats), generation and negativity labelling",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "numpy": np.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "results": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
