"""Helpers of ``bench_ppt.py`` and ``bench_ppt_threads.py``: timing (best/median wall-clock and the
CPU time of the best run), the machine's description, the load, and the compile/build time of the
``compiled`` and ``native`` NPT kernels in fresh processes."""

from __future__ import annotations

import json
import os
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
from qeframe.quantum import npt_native


# ------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Best and median wall-clock seconds of ``fn()`` over ``repeats`` runs (after one warm-up),
    and the process CPU seconds of the best run."""
    fn()
    runs = [once(fn) for _ in range(repeats)]
    return summarise([r[0] for r in runs], [r[1] for r in runs])


def once(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call of ``fn()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def summarise(walls: list[float], cpus: list[float]) -> dict[str, float]:
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


# ------------------------------------------------------------------------------ compile time
COMPILE_PROBE = """
import os, time, json
t0, c0 = time.perf_counter(), time.process_time()
from qeframe.quantum import npt_compiled
ok = npt_compiled.kernel({n}) is not None
print(json.dumps({{"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "ok": ok,
                  "failure": npt_compiled.failure({n})}}))
"""
NATIVE_PROBE = """
import os, time, json
from qeframe.quantum import npt_native
t0, c0 = time.perf_counter(), time.process_time()
ok = npt_native.library() is not None
print(json.dumps({{"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "ok": ok,
                  "failure": npt_native.failure()}}))
"""


def compile_time(n: int, cache_dir: str | None, probe: str = COMPILE_PROBE) -> dict[str, Any]:
    """Seconds to import and compile the kernel in a fresh process (``cache_dir``: an Inductor
    cache directory, None for the default one). CPU seconds are the parent's view of the child
    (its own process time, compiler subprocesses included via ``RUSAGE_CHILDREN``)."""
    import resource
    import tempfile

    env = dict(os.environ)
    tmp = None
    if cache_dir == "fresh":
        tmp = tempfile.TemporaryDirectory(prefix="qeframe-inductor-")
        env["TORCHINDUCTOR_CACHE_DIR" if probe == COMPILE_PROBE else npt_native.CACHE_ENV] = tmp.name
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", probe.format(n=n)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if tmp is not None:
        tmp.cleanup()
    try:
        inner = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        inner = {"ok": False, "failure": proc.stderr.strip().splitlines()[-1:] or None}
    return {
        "process_wall_s": wall,
        "process_cpu_s_with_compilers": (after.ru_utime + after.ru_stime)
        - (before.ru_utime + before.ru_stime),
        "in_process": inner,
    }
