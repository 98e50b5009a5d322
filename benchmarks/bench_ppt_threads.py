"""What bounds ``npt_mask`` on two threads: CPU per thread, the other processes' CPU, the GIL.

On a shared machine a second worker thread helps only when a second core is free, so every timed
call here also records how much CPU *other* processes used meanwhile (from ``/proc/stat``: all
busy time of the machine minus this process's), and each figure is reported over all rounds and
over the *quiet* rounds only (others used under 0.1 CPU). Writes JSON::

    .venv/bin/python benchmarks/bench_ppt_threads.py --out benchmarks/results/ppt_threads.json

Measured, on the ``all`` workload of ``bench_ppt.py`` (``--states``), in interleaved rounds (each
round runs every variant once):

Each measurement is the mean of ``INNER`` (5) calls in a row, so that ``/proc/stat``'s 10 ms ticks
resolve the other processes' share.

* ``threads``: ``npt_mask(rho, workers=w, backend=b)`` for ``w`` in 1, 2 and each backend
  (``mixed``, ``native``), plus ``processes``: the same work split over two processes of one
  thread each (no GIL at all; what two threads could reach). Per variant: best and median rate,
  process CPU / wall (how many cores it used), others' CPU, and for threads the sum of the
  per-thread CPU inside the chunks (``time.thread_time``) and this process's voluntary
  (sleeping, e.g. waiting for the GIL) and involuntary (preempted) context switches per call;
* ``gil``: the mixed backend's Python time per chunk, i.e. the time of the same numpy calls on
  32 states (the calls, no data) against a whole chunk: the fraction of a chunk that holds the GIL;
* ``switch_interval``: the mixed backend on two threads with ``sys.setswitchinterval`` 0.5, 5
  (the default) and 50 ms;
* ``chunk_sweep``: the mixed backend's chunk budget (``_NPT_MIXED_CHUNK_BYTES``) on 1 and 2 threads;
* ``evidence``: the labelers' ``lambda_min`` evidence of their NPT cuts, per cut, on Ginibre
  states (``bench_ppt.py``'s labeler workload): ``pt_min_eigenvalues_where`` (numpy ``eigvalsh``,
  what the labelers store) on 1 and 2 worker threads, beside ``torch.linalg.eigvalsh`` of the same
  matrices with 1 and 2 intra-op threads and its largest difference from the stored values.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None
import threading
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import previous_report, write_report
from _ppt_parts import loadavg, machine_info
from bench_ppt import workloads

from qeframe.quantum import npt_native, ppt
from qeframe.quantum.ppt import PPT_TOL, npt_mask

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
QUIET_OTHERS_CPU = 0.1


def machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``), None where unavailable."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / _TICK  # all but idle and iowait


#: Calls per measurement: ``/proc/stat`` counts in ticks of 10 ms, so a window of several calls
#: (a few tenths of a second) keeps the others' CPU within a few per cent.
INNER = 5


def measured(fn) -> dict[str, float]:
    """Per call of ``fn()`` (the mean over ``INNER`` calls in a row): wall seconds, and the cores
    used by this process (its CPU per wall second, plus any CPU seconds ``fn`` returns: helper
    processes) and by all other processes of the machine."""
    r0 = resource.getrusage(resource.RUSAGE_SELF) if resource else None
    b0, c0, t0 = machine_busy_s(), time.process_time(), time.perf_counter()
    extra = 0.0
    for _ in range(INNER):
        got = fn()
        extra += got if isinstance(got, float) else 0.0
    wall, mine = time.perf_counter() - t0, time.process_time() - c0 + extra
    b1 = machine_busy_s()
    others = None if b0 is None else max(0.0, (b1 - b0) - mine) / wall
    row = {"wall_s": wall / INNER, "cores_used": mine / wall, "others_cores": others}
    if r0 is not None:  # context switches of this process per call: sleeps (GIL waits) and preemptions
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        row["voluntary_switches"] = (r1.ru_nvcsw - r0.ru_nvcsw) / INNER
        row["involuntary_switches"] = (r1.ru_nivcsw - r0.ru_nivcsw) / INNER
    return row


def summary(rows: list[dict[str, float]], states: int) -> dict[str, Any]:
    def one(sub: list[dict[str, float]]) -> dict[str, Any] | None:
        if not sub:
            return None
        walls = np.array([r["wall_s"] for r in sub])
        k = int(np.argmin(walls))
        return {
            "runs": len(sub),
            "states_per_s_best": states / walls[k],
            "states_per_s_median": states / float(np.median(walls)),
            "cores_used_of_best": sub[k]["cores_used"],
            "others_cores_median": float(np.median([r["others_cores"] or 0.0 for r in sub])),
            **{
                f"{key}_of_best": sub[k][key]
                for key in ("thread_cpu_s", "voluntary_switches", "involuntary_switches")
                if key in sub[k]
            },
        }

    quiet = [r for r in rows if r["others_cores"] is not None and r["others_cores"] < QUIET_OTHERS_CPU]
    return {"all_rounds": one(rows), "quiet_rounds": one(quiet)}


# ------------------------------------------------------------------------------ per-thread CPU
_thread_cpu: dict[int, float] = {}


def _count_thread_cpu(fn):
    def wrapped(*args, **kwargs):
        c0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            key = threading.get_ident()
            _thread_cpu[key] = _thread_cpu.get(key, 0.0) + time.thread_time() - c0

    return wrapped


# ------------------------------------------------------------------------------ two processes
def _worker(conn, rho, backend):
    npt_mask(rho, workers=1, backend=backend)  # warm-up (and the native library's load)
    while (msg := conn.recv()) is not None:
        c0 = time.process_time()
        npt_mask(rho, workers=1, backend=msg)
        conn.send(time.process_time() - c0)


class Pair:
    """Two processes with half of ``rho`` each, run together on request."""

    def __init__(self, rho: np.ndarray, backend: str):
        ctx = get_context("fork" if sys.platform.startswith("linux") else "spawn")
        half = len(rho) // 2
        self.conns, self.procs = [], []
        for part in (rho[:half], rho[half:]):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, np.ascontiguousarray(part), backend))
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def run(self, backend: str) -> float:
        for c in self.conns:
            c.send(backend)
        return float(sum(c.recv() for c in self.conns))  # CPU of both

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join()


# ------------------------------------------------------------------------------ GIL share
def gil_share(rho: np.ndarray, repeats: int) -> dict[str, float]:
    """The mixed backend's per-chunk time on a whole chunk and on 32 states (the same numpy calls,
    nearly no data: the Python and call overhead, during which the GIL is held)."""
    n = 3
    chunk = ppt.npt_chunk_size(n, ppt._NPT_MIXED_CHUNK_BYTES)

    def per_call(block):
        ppt._npt_block_mixed(block, PPT_TOL, n)
        best = np.inf
        for _ in range(repeats):
            t0 = time.thread_time()
            ppt._npt_block_mixed(block, PPT_TOL, n)
            best = min(best, time.thread_time() - t0)
        return best

    full, tiny = per_call(rho[:chunk]), per_call(rho[:32])
    return {"chunk_states": chunk, "chunk_cpu_s": full, "calls_only_cpu_s": tiny, "gil_share": tiny / full}


def evidence(count: int, seed: int, repeats: int) -> dict[str, Any]:
    """Seconds per NPT cut of the labelers' evidence, numpy (stored) against torch."""
    import torch
    from bench_ppt import ginibre_states

    from qeframe.quantum.ppt import partial_transposes, pt_min_eigenvalues_where

    rho = ginibre_states(3, count, np.random.default_rng(seed + 1))
    mask = npt_mask(rho)
    cuts = int(mask.sum())
    out: dict[str, Any] = {"states": count, "npt_cuts": cuts}
    stored = pt_min_eigenvalues_where(rho, mask)
    pts = torch.from_numpy(np.ascontiguousarray(partial_transposes(rho)[mask]))
    calls = {
        f"numpy_eigvalsh/workers={w}": (lambda w=w: pt_min_eigenvalues_where(rho, mask, workers=w), None)
        for w in (1, 2)
    }
    calls |= {f"torch_eigvalsh/threads={t}": (lambda: torch.linalg.eigvalsh(pts)[:, 0], t) for t in (1, 2)}
    threads_before = torch.get_num_threads()
    for key, (fn, t) in calls.items():
        if t is not None:
            torch.set_num_threads(t)
        fn()
        best = min(measured(fn)["wall_s"] for _ in range(repeats))
        out[key] = {"us_per_cut": best / cuts * 1e6, "cuts_per_s": cuts / best}
    torch.set_num_threads(threads_before)
    values = torch.linalg.eigvalsh(pts)[:, 0].numpy()
    out["torch_max_abs_diff_from_stored"] = float(np.abs(values - stored[mask]).max())
    out["torch_bitwise_equal_fraction"] = float((values == stored[mask]).mean())
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ppt_threads.json"))
    args = parser.parse_args(argv)
    previous = previous_report(args.out)
    load_start = loadavg()
    rho = workloads(3, args.states, args.seed)["all"]
    backends = ["mixed"] + (["native"] if npt_native.library() is not None else [])
    report: dict[str, Any] = {"benchmark": "ppt_threads", "states": args.states, "rounds": args.rounds}

    # 1) threads vs processes, every backend, interleaved rounds
    ppt._npt_block_mixed = _count_thread_cpu(ppt._npt_block_mixed)
    npt_native.not_positive_definite = _count_thread_cpu(npt_native.not_positive_definite)
    pair = Pair(rho, backends[0])
    rows: dict[str, list[dict[str, float]]] = {}
    for b in backends:
        npt_mask(rho, backend=b)
    for _ in range(args.rounds):
        for b in backends:
            for w in (1, 2):
                _thread_cpu.clear()
                row = measured(lambda b=b, w=w: npt_mask(rho, workers=w, backend=b))
                row["thread_cpu_s"] = sum(_thread_cpu.values()) / INNER
                rows.setdefault(f"{b}/threads={w}", []).append(row)
            rows.setdefault(f"{b}/processes=2", []).append(measured(lambda b=b: pair.run(b)))
    pair.close()
    report["threads"] = {k: summary(v, args.states) for k, v in rows.items()}
    print({k: round(v["all_rounds"]["states_per_s_best"]) for k, v in report["threads"].items()}, flush=True)

    # 2) the GIL's share of a mixed chunk
    report["gil"] = gil_share(rho, repeats=10)
    print(report["gil"], flush=True)

    # 3) switch interval, 4) chunk budget (mixed, interleaved)
    default_interval, default_budget = sys.getswitchinterval(), ppt._NPT_MIXED_CHUNK_BYTES
    sweep: dict[str, list[dict[str, float]]] = {}
    for _ in range(max(3, args.rounds // 4)):
        for interval in (0.0005, 0.005, 0.05):
            sys.setswitchinterval(interval)
            row = measured(lambda: npt_mask(rho, workers=2, backend="mixed"))
            sweep.setdefault(f"switch_interval={interval * 1e3:g}ms/threads=2", []).append(row)
        sys.setswitchinterval(default_interval)
        for budget_mb in (2, 4, 8, 16):
            ppt._NPT_MIXED_CHUNK_BYTES = budget_mb << 20
            for w in (1, 2):
                row = measured(lambda w=w: npt_mask(rho, workers=w, backend="mixed"))
                sweep.setdefault(f"budget={budget_mb}MiB/threads={w}", []).append(row)
        ppt._NPT_MIXED_CHUNK_BYTES = default_budget
    report["evidence"] = evidence(args.states // 5, args.seed, max(3, args.rounds // 4))
    print(report["evidence"], flush=True)
    report["switch_interval"] = {
        k: summary(v, args.states) for k, v in sweep.items() if k.startswith("switch")
    }
    report["chunk_sweep"] = {k: summary(v, args.states) for k, v in sweep.items() if k.startswith("budget")}

    report |= {
        "machine": machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "quiet_means": f"other processes used < {QUIET_OTHERS_CPU} CPU during the run",
        "previous": {
            "loadavg_start": (previous or {}).get("loadavg_start"),
            "threads_best": {
                k: (v.get("all_rounds") or {}).get("states_per_s_best")
                for k, v in ((previous or {}).get("threads") or {}).items()
            },
        },
    }
    write_report(args.out, report)
    for k, v in report["threads"].items():
        a, q = v["all_rounds"], v["quiet_rounds"]
        quiet = f"quiet {q['runs']:2d}: {q['states_per_s_best']:>11,.0f}/s" if q else "quiet  0"
        print(
            f"{k:24s} best {a['states_per_s_best']:>11,.0f}/s median {a['states_per_s_median']:>11,.0f}/s "
            f"cores used {a['cores_used_of_best']:.2f} others {a['others_cores_median']:.2f} | {quiet}"
        )
    print(f"wrote {args.out} (load {load_start} -> {report['loadavg_end']})")
    return report


if __name__ == "__main__":
    main()
