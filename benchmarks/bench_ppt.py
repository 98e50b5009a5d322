"""Throughput of the per-cut PPT test (``npt_mask``) and of full negativities (``eigvalsh``).

Measures density matrices per second, every cut of every matrix included, for ``n``-qubit mixed
states of two kinds, and writes the numbers with the machine's description to JSON::

    .venv/bin/python benchmarks/bench_ppt.py --n 3 --states 100000 --out benchmarks/results/ppt.json

Workloads (drawn from ``numpy.random.default_rng(--seed)``):

* ``mixtures``: mixtures of 2-4 Haar-random pure states with Dirichlet(1) weights (mostly NPT);
* ``near-boundary``: the same mixtures with white noise ``(1-p) rho + p I/d``, ``p`` 0.9-1.1 times
  the noise level at which the state's most negative cut becomes PPT (about half the cuts PPT,
  many of them within 1e-3 of the threshold) — the regime where a sign test has to be exact;
* ``all``: both, shuffled together (the headline number).

For each workload and each thread count: ``npt_mask`` (batched Cholesky sign test) and
``negativities`` (``eigvalsh`` of every cut's partial transpose). Times are wall-clock over
``--repeats`` runs (best and median reported; the best is the usual estimate for a quiet machine)
plus the process CPU time of the best run. The answers of ``npt_mask`` are checked against
``eigvalsh`` (``lambda_min < -tol``) on every cut farther than 1e-12 from the threshold.
"""

from __future__ import annotations

import os

# One BLAS thread: the benchmark's own worker threads are the parallelism being measured.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime as _dt
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import qeframe
from qeframe.quantum.cuts import n_cuts
from qeframe.quantum.ppt import PPT_TOL, negativities, npt_chunk_size, npt_mask, pt_min_eigenvalues
from qeframe.quantum.random import haar_state

#: npt_mask target on the project's 2-core reference machine, 3 qubits, all cuts.
TARGET_STATES_PER_S = 200_000


# ------------------------------------------------------------------------------ workloads
def mixtures(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Mixtures of 2-4 Haar states with Dirichlet(1) weights: ``(count, 2**n, 2**n)`` complex128."""
    d = 2**n
    out = np.empty((count, d, d), dtype=np.complex128)
    rank = rng.integers(2, 5, size=count)
    for r in (2, 3, 4):  # loop over ranks, not samples
        idx = np.flatnonzero(rank == r)
        psi = haar_state(d, idx.size * r, rng).reshape(idx.size, r, d)
        w = rng.dirichlet(np.ones(r), size=idx.size)
        out[idx] = np.einsum("nk,nki,nkj->nij", w, psi, psi.conj())
    return out


def near_boundary(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Mixtures plus white noise at 0.9-1.1x the critical level of their most negative cut."""
    rho = mixtures(n, count, rng)
    d = 2**n
    lam = pt_min_eigenvalues(rho).min(axis=1)
    p_crit = np.clip(-lam * d / (1 - lam * d), 0, 1)  # (1-p) lam + p/d = 0
    p = np.clip(rng.uniform(0.9, 1.1, count) * p_crit, 0, 1)
    return (1 - p)[:, None, None] * rho + p[:, None, None] * np.eye(d) / d


def workloads(n: int, count: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    half = count // 2
    mix = mixtures(n, count - half, rng)
    near = near_boundary(n, half, rng)
    both = np.concatenate([mix, near])[rng.permutation(count)]
    return {"all": both, "mixtures": mix, "near-boundary": near}


# ------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Best and median wall-clock seconds of ``fn()`` over ``repeats`` runs (after one warm-up),
    and the process CPU seconds of the best run."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    best = int(np.argmin(walls))
    return {"best_s": walls[best], "median_s": statistics.median(walls), "cpu_s_of_best": cpus[best]}


def rate(count: int, t: dict[str, float]) -> dict[str, float]:
    return {
        "states_per_s_best": count / t["best_s"],
        "states_per_s_median": count / t["median_s"],
        "cpu_s_per_state": t["cpu_s_of_best"] / count,
        **t,
    }


# ------------------------------------------------------------------------------ machine
def machine_info() -> dict[str, Any]:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_name = f"{blas.get('name')} {blas.get('version')}"
    except (KeyError, TypeError, ValueError):  # pragma: no cover - numpy without the dict mode
        blas_name = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_model": cpu_model or platform.processor() or None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": blas_name,
        "blas_threads_env": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "qeframe": qeframe.__version__,
        "git_commit": commit,
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3, help="number of qubits (default 3)")
    parser.add_argument(
        "--states", type=int, default=100_000, help="states per npt_mask run (default 100000)"
    )
    parser.add_argument(
        "--eig-states",
        type=int,
        default=20_000,
        help="states per negativities run (eigvalsh is slower; default 20000)",
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="worker thread counts (default 1 2)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/ppt.json"), help="JSON output path"
    )
    args = parser.parse_args(argv)

    try:
        previous = json.loads(args.out.read_text())  # the committed figures, reported beside the new ones
    except (OSError, ValueError):
        previous = None
    load_start = loadavg()
    print(f"generating {args.states} {args.n}-qubit states ...", flush=True)
    data = workloads(args.n, args.states, args.seed)
    cuts = n_cuts(args.n)

    # exactness: npt_mask against eigvalsh on every workload (away from the threshold)
    exactness = {}
    for name, rho in data.items():
        lam = pt_min_eigenvalues(rho)
        mask = npt_mask(rho)
        away = np.abs(lam + PPT_TOL) > 1e-12
        exactness[name] = {
            "npt_fraction": float((lam < -PPT_TOL).mean()),
            "cuts_within_1e-3_of_threshold": int((np.abs(lam + PPT_TOL) < 1e-3).sum()),
            "cuts_within_1e-12_of_threshold": int((~away).sum()),
            "mismatches_away_from_threshold": int((mask != (lam < -PPT_TOL))[away].sum()),
        }
        if exactness[name]["mismatches_away_from_threshold"]:
            raise SystemExit(f"npt_mask disagrees with eigvalsh on {name}: {exactness[name]}")

    results: dict[str, Any] = {"npt_mask": {}, "negativities": {}, "eigvalsh_sign_test": {}}
    for name, rho in data.items():
        eig_rho = rho[: args.eig_states]
        for threads in args.threads:
            key = f"{name}/threads={threads}"
            few = max(1, args.repeats // 2)
            t = timed(lambda r=rho, w=threads: npt_mask(r, workers=w), args.repeats)
            results["npt_mask"][key] = rate(len(rho), t)
            t = timed(lambda r=eig_rho, w=threads: negativities(r, workers=w), few)
            results["negativities"][key] = rate(len(eig_rho), t)
            t = timed(lambda r=eig_rho, w=threads: pt_min_eigenvalues(r, workers=w) < -PPT_TOL, few)
            results["eigvalsh_sign_test"][key] = rate(len(eig_rho), t)
            print(
                f"{key:28s} npt_mask {results['npt_mask'][key]['states_per_s_best']:>11,.0f} states/s   "
                f"negativities {results['negativities'][key]['states_per_s_best']:>9,.0f} states/s",
                flush=True,
            )

    headline = max(results["npt_mask"][f"all/threads={t}"]["states_per_s_best"] for t in args.threads)
    # same-run ratios against the eigvalsh sign test, and the previous report's figures
    ratios = {
        key: round(
            results["npt_mask"][key]["states_per_s_best"]
            / results["eigvalsh_sign_test"][key]["states_per_s_best"],
            2,
        )
        for key in results["npt_mask"]
    }
    prev = None
    if previous is not None:
        prev = {
            "created": previous.get("created"),
            "git_commit": (previous.get("machine") or {}).get("git_commit"),
            "loadavg_start": previous.get("loadavg_start"),
            "npt_mask_states_per_s_best": {
                k: v.get("states_per_s_best")
                for k, v in previous.get("results", {}).get("npt_mask", {}).items()
            },
        }
    report = {
        "benchmark": "ppt",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "units": "states (density matrices) per second, all cuts of each state included",
        "config": {
            "n_qubits": args.n,
            "n_cuts": cuts,
            "states": args.states,
            "eig_states": min(args.eig_states, args.states),
            "threads": args.threads,
            "repeats": args.repeats,
            "seed": args.seed,
            "tol": PPT_TOL,
            "npt_chunk_states": npt_chunk_size(args.n),
        },
        "machine": machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "exactness": exactness,
        "results": results,
        "npt_mask_over_eigvalsh_same_run": ratios,
        "previous": prev,
        "summary": {
            "npt_mask_states_per_s": headline,
            "npt_mask_cut_tests_per_s": headline * cuts,
            "target_states_per_s": TARGET_STATES_PER_S if args.n == 3 else None,
            "meets_target": bool(headline >= TARGET_STATES_PER_S) if args.n == 3 else None,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"npt_mask best: {headline:,.0f} states/s ({headline * cuts:,.0f} cut tests/s); wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
