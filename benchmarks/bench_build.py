"""Benchmark dataset builds: states per second and wall time per dataset.

Builds the given datasets of a registry file into a temporary folder (removed afterwards unless
``--keep``) with the installed plugins and writes ``benchmarks/results/build.json``::

    python benchmarks/bench_build.py --registry registry.toml --workers 2 paper-train paper-validation
    python benchmarks/bench_build.py --all

Per dataset it records the wall time, states/s, the CPU seconds of the parent process (ordering,
hashing, writing shards) and of the worker processes (generating and labelling), and the store size,
next to the figures of the previous report at ``--out`` (the committed one) and the load average.
With ``--reference KIND`` every dataset is built a second time in the same run with a reference
generator, and the ratios are reported: on a shared machine the ratio in one run is the figure that
counts. ``format3``: the generators as store format 3 ran them, whole-batch passes instead of the
cache-sized chunks of :func:`qeframe.quantum.random.unit_complex` and
``qeframe_plugins.families._circuits.plan_statevectors`` (the rows are bit-identical, which the
report checks: ``same_content``); ``format1``: the float64 gate sampler of store format 1
(``qeframe_plugins.families._circuits.reference_gate_params``) in place of the trig-free one;
``engine``: the ``product`` family's one- and two-qubit ``circuit`` factors from the general circuit
engine instead of ``qeframe_plugins.families._small_circuits`` (same stream, bit-identical rows:
``same_content``).

    python benchmarks/bench_build.py --reference format3 paper-val paper-train-negativity
    python benchmarks/bench_build.py --reference engine --out benchmarks/results/build_verified.json paper-train-verified
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


@contextlib.contextmanager
def reference_generator(kind: str):
    """Swap in the reference generator ``kind`` (see the module docstring) for the block."""
    if kind == "engine":
        from _common import engine_product_factors

        with engine_product_factors():
            yield
        return
    from qeframe_plugins.families import _circuits

    from qeframe.quantum import random as qrandom

    saved = (_circuits.random_gate_params, _circuits.PLAN_CHUNK, qrandom.UNIT_COMPLEX_CHUNK)
    if kind == "format1":
        _circuits.random_gate_params = _circuits.reference_gate_params
    else:
        _circuits.PLAN_CHUNK = qrandom.UNIT_COMPLEX_CHUNK = 2**62
    try:
        yield
    finally:
        _circuits.random_gate_params, _circuits.PLAN_CHUNK, qrandom.UNIT_COMPLEX_CHUNK = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="datasets of the registry file to build")
    parser.add_argument("--all", action="store_true", help="build every dataset of the registry file")
    parser.add_argument("--registry", type=Path, default=Path("registry.toml"))
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--shard-size", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "build.json")
    parser.add_argument("--keep", type=Path, default=None, help="build into this folder and keep it")
    parser.add_argument(
        "--plugin", action="append", default=[], help="extra plugin module to register (import path)"
    )
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument(
        "--reference",
        choices=("format3", "format1", "engine"),
        default=None,
        help="also build each dataset with a reference generator (format 3's unchunked passes, or "
        "format 1's float64 gate sampler, or the general circuit engine for the product family's one- and "
        "two-qubit factors) and report the ratios",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import previous_report

    previous = previous_report(args.out)
    previous_rows = {r["dataset"]: r for r in (previous or {}).get("datasets", [])}
    load_before = os.getloadavg()

    from qeframe import __version__
    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import build_dataset
    from qeframe.plugin.registry import Registry

    registry_file = load_registry_file(args.registry)
    names = sorted(registry_file.datasets) if args.all else args.names
    if not names:
        parser.error("give dataset names or --all")
    registry = Registry.load(plugins=[(m, importlib.import_module(m)) for m in args.plugin])
    workers = args.workers or os.cpu_count() or 1
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="qeframe-bench-"))
    results = []

    def build(name: str) -> dict:
        spec = registry_file.dataset(name)
        cpu0, t0 = _cpu(), time.perf_counter()
        ds = build_dataset(
            name,
            spec,
            data_dir=data_dir,
            registry=registry,
            workers=workers,
            shard_size=args.shard_size,
            progress=args.progress,
            force=True,
        )
        wall = time.perf_counter() - t0
        cpu1 = _cpu()
        size = sum(f.stat().st_size for f in ds.path.rglob("*") if f.is_file())
        return {
            "dataset": name,
            "states": len(ds),
            "n_qubits": spec.n_qubits,
            "wall_s": round(wall, 3),
            "states_per_s": round(len(ds) / wall, 1),
            "parent_cpu_s": round(cpu1[0] - cpu0[0], 3),
            "workers_cpu_s": round(cpu1[1] - cpu0[1], 3),
            "store_bytes": size,
            "parent_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "content_hash": ds.content_hash,
            "workers": ds.manifest["build"]["workers"],
            "load_average_after": round(os.getloadavg()[0], 2),
        }

    try:
        for name in names:
            row = build(name)
            old = previous_rows.get(name)
            if old is not None:
                row["previous"] = {k: old.get(k) for k in ("wall_s", "workers_cpu_s", "states_per_s")}
                row["previous"]["load_average"] = (previous or {}).get("load_average")
            if args.reference:
                with reference_generator(args.reference):  # forked workers inherit it
                    ref = build(name)
                row[f"reference_{args.reference}"] = {
                    k: ref[k] for k in ("wall_s", "workers_cpu_s", "states_per_s", "load_average_after")
                }
                row[f"reference_{args.reference}"]["same_content"] = (
                    ref["content_hash"] == row["content_hash"]
                )
                row["speedup_vs_reference"] = {
                    "wall": round(ref["wall_s"] / row["wall_s"], 3),
                    "workers_cpu": round(ref["workers_cpu_s"] / max(row["workers_cpu_s"], 1e-9), 3),
                }
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    total_states = sum(r["states"] for r in results)
    total_wall = sum(r["wall_s"] for r in results)
    report = {
        "benchmark": "build",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "qeframe_version": __version__,
        "registry": str(args.registry),
        "workers": workers,
        "shard_size": args.shard_size,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "previous": None
        if previous is None
        else {k: previous.get(k) for k in ("date", "load_average", "total", "workers")},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "datasets": results,
        "total": {
            "states": total_states,
            "wall_s": round(total_wall, 3),
            "states_per_s": round(total_states / total_wall, 1) if total_wall else None,
            "workers_cpu_s": round(sum(r["workers_cpu_s"] for r in results), 3),
            "parent_cpu_s": round(sum(r["parent_cpu_s"] for r in results), 3),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"wrote {args.out}: {total_states} states in {total_wall:.1f} s ({report['total']['states_per_s']} states/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
