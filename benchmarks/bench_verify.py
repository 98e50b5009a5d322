"""Benchmark the store check (:mod:`qeframe.data.verify`) against loading the arrays it protects.

Writes a paper-size store (default 580 000 three-qubit states, the size of ``paper-train-verified``,
``registry.toml``; random arrays of the stored dtypes and shapes, in files of 16 384 rows as
``data build`` writes them) through the store writer (:class:`qeframe.data.writer.StoreWriter`) into
a temporary folder, then measures in one process, with the page cache warm for both:

* **check**: :func:`qeframe.data.verify.check_store` without the cache (every file rehashed), MB/s;
* **load**: what training reads — every array of :class:`qeframe.data.reader.Dataset` loaded into
  memory (``np.array`` of each, the concatenation of the files), MB/s;
* **cached check**: ``check_store`` again (the per-process cache: only ``stat`` calls);

and reports wall and CPU seconds and the ratio check / load. Results go to
``benchmarks/results/verify.json``::

    OMP_NUM_THREADS=1 python benchmarks/bench_verify.py            # 580 000 states
    python benchmarks/bench_verify.py --states 50000 --threads 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def write_store(root: Path, states: int, file_rows: int) -> tuple[Path, dict]:
    import numpy as np

    from qeframe.data.build import ARRAY_DTYPES, row_shapes
    from qeframe.data.format import Summary
    from qeframe.data.writer import StoreWriter

    n = 3
    shapes = row_shapes(n)
    store = root / "bench"
    store.mkdir()
    writer = StoreWriter(store, {"format": 3, "bench": True}, n)
    writer.start(force=True, counts=None, accept=lambda infos: False)
    summary = Summary(n, 1)
    rng = np.random.default_rng(0)
    row = 0
    while row < states:
        rows = min(file_rows, states - row)
        arrays = {}
        for name, dtype in ARRAY_DTYPES.items():
            shape = (rows, *shapes[name])
            if dtype.kind == "c":
                arrays[name] = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
            elif dtype.kind == "f":
                arrays[name] = rng.standard_normal(shape).astype(dtype)
            else:
                arrays[name] = rng.integers(0, 2, shape).astype(dtype)
        file = writer.new_file(rows)
        file.append(arrays, {"entry": 0, "block": 0, "start": 0, "rows": rows, "generated": rows, "kept": rows})
        writer.commit(file)
        summary.hash(arrays)
        row += rows
    manifest = {
        "format": 3,
        "shards": writer.files,
        "content_hash": summary.content_hash(),
        "arrays": {name: {} for name in ARRAY_DTYPES},
    }
    return store, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", type=int, default=580_000)
    parser.add_argument("--file-rows", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=None, help="hashing threads (default: verify.THREADS)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "verify.json")
    args = parser.parse_args()

    import numpy as np

    from qeframe.data import verify
    from qeframe.data.build import ARRAY_DTYPES

    if args.threads is not None:
        verify.THREADS = args.threads
    root = Path(tempfile.mkdtemp(prefix="qeframe-bench-verify-"))
    try:
        (store, manifest), write_s, _ = timed(lambda: write_store(root, args.states, args.file_rows))
        files = [store / f["name"] / f"{a}.npy" for f in manifest["shards"] for a in ARRAY_DTYPES]
        mb = sum(p.stat().st_size for p in files) / 1e6

        def load():
            for name in ARRAY_DTYPES:
                parts = [np.load(store / f["name"] / f"{name}.npy") for f in manifest["shards"]]
                np.concatenate(parts)

        def check():
            assert verify.check_store(store, manifest, use_cache=False) == []

        load()  # warm the page cache for both
        runs = {"check": [], "load": []}
        for _ in range(args.repeat):
            for label, fn in (("check", check), ("load", load)):
                runs[label].append(timed(fn)[1:])
        verify.check_store(store, manifest)
        _, cached_s, _ = timed(lambda: verify.check_store(store, manifest))
        best = {k: min(v) for k, v in runs.items()}
        report = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
            "states": args.states,
            "files": len(manifest["shards"]),
            "store_mb": round(mb, 1),
            "hash_threads": verify.THREADS,
            "write_seconds": round(write_s, 2),
            "check_seconds": round(best["check"][0], 3),
            "check_cpu_seconds": round(best["check"][1], 3),
            "check_mb_per_s": round(mb / best["check"][0]),
            "load_seconds": round(best["load"][0], 3),
            "load_cpu_seconds": round(best["load"][1], 3),
            "load_mb_per_s": round(mb / best["load"][0]),
            "check_over_load": round(best["check"][0] / best["load"][0], 2),
            "check_over_load_cpu": round(best["check"][1] / best["load"][1], 2),
            "cached_check_seconds": round(cached_s, 5),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
