"""Benchmark sharded dataset builds: single build vs. shards through the local and Ray executors.

For each dataset of a registry file (default ``quickstart-train``) it builds, into temporary folders,
with ``force`` so that nothing is reused:

* ``single-w1`` / ``single-w2`` — ``build_dataset`` with 1 and 2 worker processes (the reference);
* ``local-w1`` / ``local-w2`` — ``build_sharded`` with ``--shards`` shards through the ``local``
  executor with 1 worker (the shards one after the other) and 2 workers (two at a time), then merged;
* ``ray`` — the same through the ``ray`` executor on a local Ray instance with ``--ray-cpus`` CPUs
  (the instance's start-up time is reported separately and not counted).

Per configuration: wall seconds, states per second (dataset states / wall seconds), the seconds of
the shard phase and of the merge, the states the shards generated (extras of dropping labelers
included) and whether the content hash equals the single build's. Writes
``benchmarks/results/shards.json``::

    .venv/bin/python benchmarks/bench_shards.py quickstart-train --shards 2
    .venv/bin/python benchmarks/bench_shards.py quickstart-train quickstart-val --no-ray --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _row(config: str, ds: Any, wall: float, reference: str | None) -> dict[str, Any]:
    build = ds.manifest["build"]
    tasks = build.get("shard_tasks", [])
    return {
        "config": config,
        "states": len(ds),
        "wall_s": round(wall, 3),
        "states_per_s": round(len(ds) / wall, 1),
        "shard_phase_s": build.get("shard_seconds"),
        "merge_s": build["seconds"] if tasks else None,
        "shard_task_s": [t["seconds"] for t in tasks] or None,
        "generated_by_shards": sum(t["generated"] for t in tasks) if tasks else None,
        "merge_generated_blocks": build.get("merge_generated_blocks"),
        "content_hash": ds.content_hash,
        "identical_to_single": None if reference is None else ds.content_hash == reference,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", default=["quickstart-train"], help="datasets of the registry file"
    )
    parser.add_argument("--registry", type=Path, default=Path("registry.toml"))
    parser.add_argument("--shards", type=int, default=2, help="number of shards (default 2)")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shards.json")
    args = parser.parse_args(argv)

    from qeframe import __version__
    from qeframe.config.specs import load_registry_file
    from qeframe.data.merge import build_sharded
    from qeframe.data.store import build_dataset
    from qeframe.plugin.registry import get_registry

    registry_file = load_registry_file(args.registry)
    registry = get_registry()
    ray_info: dict[str, Any] = {"used": False}
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print(
                "ray is not installed: skipping the ray executor (pip install 'qeframe[ray]')",
                file=sys.stderr,
            )
        else:
            t0 = time.perf_counter()
            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
            ray_info = {
                "used": True,
                "version": ray.__version__,
                "num_cpus": args.ray_cpus,
                "init_s": round(time.perf_counter() - t0, 2),
            }
    root = Path(tempfile.mkdtemp(prefix="qeframe-bench-shards-"))
    results: list[dict[str, Any]] = []
    try:
        for name in args.names:
            spec = registry_file.dataset(name)
            rows: list[dict[str, Any]] = []
            reference = None
            for workers in (1, 2):
                t0 = time.perf_counter()
                ds = build_dataset(
                    name,
                    spec,
                    data_dir=root / f"single-{workers}",
                    registry=registry,
                    workers=workers,
                    progress=False,
                    force=True,
                )
                rows.append(_row(f"single-w{workers}", ds, time.perf_counter() - t0, reference))
                reference = reference or ds.content_hash
            executors = [
                (f"local-w{w}", registry.create("executor", "local", {"workers": w})) for w in (1, 2)
            ]
            if ray_info["used"]:
                executors.append(("ray", registry.create("executor", "ray")))
            for config, executor in executors:
                t0 = time.perf_counter()
                ds = build_sharded(
                    name,
                    spec,
                    args.shards,
                    executor,
                    data_dir=root / config,
                    registry=registry,  # type: ignore[arg-type]
                    progress=False,
                    force=True,
                )
                rows.append(_row(config, ds, time.perf_counter() - t0, reference))
            for r in rows:
                print(
                    f"{name:24s} {r['config']:10s} {r['wall_s']:8.2f} s {r['states_per_s']:10.1f} states/s"
                    f"  identical={r['identical_to_single']}",
                    flush=True,
                )
            results.append(
                {
                    "dataset": name,
                    "n_states": len(ds),
                    "n_qubits": spec.n_qubits,
                    "labeler": spec.labeler.name,
                    "shards": args.shards,
                    "runs": rows,
                }
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if ray_info["used"]:
            import ray

            ray.shutdown()
    out = {
        "benchmark": "sharded dataset builds",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "qeframe_version": __version__,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        },
        "ray": ray_info,
        "note": "wall_s counts the whole build (shards and merge); states_per_s = dataset states / wall_s",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
