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

For each workload, in the same process and in interleaved rounds (each round times every backend
at every thread count once, so a change of the machine's load hits all of them alike):
``npt_mask`` with each backend (``numpy``: the float64 batch-last numpy factorisation, the
reference; ``mixed``: the float32 screen of :mod:`qeframe.quantum.npt_screen` with float64 for the
cuts it leaves open, the default without a C compiler; ``native``: the float64 C loop of
:mod:`qeframe.quantum.npt_native`, the default; ``compiled``: the fused ``torch.compile`` kernel of
:mod:`qeframe.quantum.npt_compiled`, skipped with ``--no-compiled``), ``negativities`` and the
``eigvalsh`` sign test. Then the labelers' NPT stage as they run it: ``npt_mask`` called as the
``verified``/``certified``/``negativity`` labelers call it (default backend and workers,
complex128 input) on ``--states`` Ginibre states (the workload of ``bench_certify.py``), beside
the same call with ``backend="mixed"`` and ``"numpy"``, and the ``verified`` labeler's whole
``label`` with its ``lambda_min`` evidence (``eigvalsh`` of the NPT cuts), which is timed apart
because it is not part of the sign test. Times are wall-clock over ``--repeats`` rounds (best and
median reported; the best is the usual estimate for a loaded machine) plus the process CPU time of
the best run. The compile time is measured in fresh subprocesses: ``warm`` (Inductor's disk cache
filled; for ``native``: the library in its cache, loaded) and, with ``--cold-compile``, ``cold``
(an empty cache directory; ``native_cold`` is always measured, it takes seconds). The answers of
every backend are checked against ``eigvalsh`` (``lambda_min < -tol``) on every cut farther than
1e-12 from the threshold, and against numpy's (disagreements are only allowed within 1e-13 of the
threshold); the report counts the cuts the float32 screen leaves to float64.

Every figure is written beside the same figure of the previous report (the JSON found at
``--out``) and the same-run ratios of every backend over ``numpy``. The headline
(``summary``) is the default backend's, the one every caller gets without configuration.
"""

from __future__ import annotations

import os

# One BLAS thread: the benchmark's own worker threads are the parallelism being measured.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from qeframe.quantum import npt_compiled, npt_native, ppt
from qeframe.quantum.cuts import n_cuts
from qeframe.quantum.ppt import (
    PPT_TOL,
    negativities,
    npt_backend,
    npt_chunk_size,
    npt_mask,
    pt_min_eigenvalues,
)
from qeframe.quantum.random import haar_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ppt_parts import (
    NATIVE_PROBE,
    compile_time,
    loadavg,
    machine_info,
    once,
    rate,
    summarise,
    timed,
)

#: npt_mask target (issue 16) on the project's 2-core reference machine, 3 qubits, all cuts, 2 threads.
TARGET_STATES_PER_S = 2_000_000
BACKENDS = ("numpy", "mixed", "native", "compiled")


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


# ------------------------------------------------------------------------------ screen, labelers
def undecided_cuts(rho: np.ndarray) -> int:
    """Cuts of ``rho`` that the float32 screen leaves to the float64 test."""
    n = int(np.log2(rho.shape[-1]))
    chunk = npt_chunk_size(n, ppt._NPT_MIXED_CHUNK_BYTES)
    return int(
        sum(ppt._npt_block_mixed(rho[s : s + chunk], PPT_TOL, n)[1].sum() for s in range(0, len(rho), chunk))
    )


def ginibre_states(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Normalised ``G G^dagger`` with complex Gaussian ``G`` (``bench_certify.py``'s workload)."""
    d = 2**n
    g = rng.standard_normal((count, d, d)) + 1j * rng.standard_normal((count, d, d))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.trace(rho, axis1=1, axis2=2).real[:, None, None]


def labelers_stage(n: int, count: int, evidence_count: int, seed: int, repeats: int) -> dict[str, Any]:
    """The labelers' NPT stage as they run it: ``npt_mask(rho, tol=...)`` with the default backend
    and workers on complex128 states (what ``verified``, ``certified`` and ``negativity`` call),
    beside ``backend="numpy"``; and the ``verified`` labeler's ``label`` (NPT stage, purity,
    bookkeeping and the ``eigvalsh`` evidence of its NPT cuts) on ``evidence_count`` states."""
    from qeframe_plugins.labelers.verified import VerifiedLabeler, npt_evidence

    from qeframe.plugin.interfaces import StateBatch

    rho = ginibre_states(n, count, np.random.default_rng(seed + 1))
    tol = VerifiedLabeler.Params().tol
    out: dict[str, Any] = {"states": count, "workload": "ginibre", "tol": tol}
    out["default_backend"] = npt_backend(n, count)
    calls = {
        "npt_stage_default": lambda: npt_mask(rho, tol=tol),
        "npt_stage_mixed": lambda: npt_mask(rho, tol=tol, backend="mixed"),
        "npt_stage_numpy": lambda: npt_mask(rho, tol=tol, backend="numpy"),
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in calls}
    for fn in calls.values():
        fn()  # warm-up
    for _ in range(repeats):  # interleaved rounds
        for key, fn in calls.items():
            runs[key].append(once(fn))
    for key, r in runs.items():
        out[key] = rate(count, summarise([w for w, _ in r], [c for _, c in r]))
    for ref in ("mixed", "numpy"):
        out[f"default_over_{ref}_wall"] = round(
            out["npt_stage_default"]["states_per_s_best"] / out[f"npt_stage_{ref}"]["states_per_s_best"], 3
        )
    sub = rho[:evidence_count]
    batch = StateBatch.build(sub, -1, "unknown", pure=False)
    labeler = VerifiedLabeler(VerifiedLabeler.Params(drop_unknown=False))
    few = max(1, repeats // 2)
    out["verified_label_with_evidence"] = rate(len(sub), timed(lambda: labeler.label(batch), few))
    mask = npt_mask(sub)
    out["npt_evidence_alone"] = rate(len(sub), timed(lambda: npt_evidence(sub, mask), few))
    out["npt_fraction"] = float(mask.mean())
    npt_s = 1 / out["npt_stage_default"]["states_per_s_best"]
    out["npt_stage_with_evidence_states_per_s"] = 1 / (
        npt_s + 1 / out["npt_evidence_alone"]["states_per_s_best"]
    )
    return out


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
        "--cold-compile",
        action="store_true",
        help="also time a compile into an empty Inductor cache (tens of seconds to minutes)",
    )
    parser.add_argument(
        "--no-compiled", action="store_true", help="skip the compiled backend (and its compile timing)"
    )
    parser.add_argument(
        "--labeler-evidence-states",
        type=int,
        default=20_000,
        help="states for the verified labeler's label() with its eigvalsh evidence (default 20000)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/ppt.json"), help="JSON output path"
    )
    args = parser.parse_args(argv)
    with_compiled = not args.no_compiled and args.n <= npt_compiled.MAX_QUBITS

    try:
        previous = json.loads(args.out.read_text())  # the committed figures, reported beside the new ones
    except (OSError, ValueError):
        previous = None
    load_start = loadavg()
    compiles: dict[str, Any] = {}
    # the default backend and the labelers' stage before anything is compiled in this process
    # (``auto`` switches to a kernel once one exists)
    default_backend = npt_backend(args.n, args.states)
    print(f"labelers' NPT stage on {args.states} Ginibre states ...", flush=True)
    labelers = labelers_stage(args.n, args.states, args.labeler_evidence_states, args.seed, args.repeats)
    print(f"labelers: {json.dumps(labelers)}", flush=True)
    compiles["native_cold"] = compile_time(args.n, "fresh", NATIVE_PROBE)  # the C build: seconds
    compiles["native_warm"] = compile_time(args.n, None, NATIVE_PROBE)
    if with_compiled:
        if args.cold_compile:
            print("compiling the kernel into an empty cache ...", flush=True)
            compiles["cold"] = compile_time(args.n, "fresh")
        compiles["warm_first"] = compile_time(args.n, None)  # fills the default cache if needed
        compiles["warm"] = compile_time(args.n, None)
        print(f"compile: {json.dumps(compiles)}", flush=True)
    backends = [b for b in BACKENDS if b != "compiled" or with_compiled]
    if "compiled" in backends and npt_compiled.kernel(args.n) is None:
        backends.remove("compiled")
    if npt_native.library() is None:
        backends.remove("native")
    print(f"generating {args.states} {args.n}-qubit states ...", flush=True)
    data = workloads(args.n, args.states, args.seed)
    cuts = n_cuts(args.n)

    # exactness: each backend against eigvalsh (away from the threshold) and against each other
    exactness: dict[str, Any] = {}
    for name, rho in data.items():
        lam = pt_min_eigenvalues(rho)
        truth = lam < -PPT_TOL
        away = np.abs(lam + PPT_TOL) > 1e-12
        masks = {b: npt_mask(rho, backend=b) for b in backends}
        entry: dict[str, Any] = {
            "npt_fraction": float(truth.mean()),
            "cuts_within_1e-3_of_threshold": int((np.abs(lam + PPT_TOL) < 1e-3).sum()),
            "cuts_within_1e-12_of_threshold": int((~away).sum()),
        }
        for b, mask in masks.items():
            entry[f"{b}_mismatches_away_from_threshold"] = int((mask != truth)[away].sum())
        for b, mask in masks.items():
            if b == "numpy":
                continue
            differ = mask != masks["numpy"]
            entry[f"{b}_disagreements_with_numpy"] = int(differ.sum())
            entry[f"{b}_disagreements_with_numpy_farther_than_1e-13"] = int(
                (differ & (np.abs(lam + PPT_TOL) > 1e-13)).sum()
            )
        if "mixed" in masks:
            entry["mixed_cuts_left_to_float64"] = undecided_cuts(rho)
            entry["cuts"] = int(rho.shape[0] * cuts)
        exactness[name] = entry
        bad = [k for k, v in entry.items() if ("mismatches" in k or "farther" in k) and v]
        if bad:
            raise SystemExit(f"npt_mask disagrees on {name}: {entry}")

    results: dict[str, Any] = {f"npt_mask[{b}]": {} for b in backends}
    results |= {"negativities": {}, "eigvalsh_sign_test": {}}
    for name, rho in data.items():
        eig_rho = rho[: args.eig_states]
        runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for b in backends:
            npt_mask(rho, backend=b)  # warm-up
        for _ in range(args.repeats):  # interleaved rounds: every backend and thread count once
            for threads in args.threads:
                for b in backends:
                    call = lambda r=rho, w=threads, b=b: npt_mask(r, workers=w, backend=b)
                    runs.setdefault((b, threads), []).append(once(call))
        for threads in args.threads:
            key = f"{name}/threads={threads}"
            few = max(1, args.repeats // 2)
            line = f"{key:28s}"
            for b in backends:
                r = runs[b, threads]
                results[f"npt_mask[{b}]"][key] = rate(
                    len(rho), summarise([w for w, _ in r], [c for _, c in r])
                )
                line += f" {b} {results[f'npt_mask[{b}]'][key]['states_per_s_best']:>11,.0f}/s"
            t = timed(lambda r=eig_rho, w=threads: negativities(r, workers=w), few)
            results["negativities"][key] = rate(len(eig_rho), t)
            t = timed(lambda r=eig_rho, w=threads: pt_min_eigenvalues(r, workers=w) < -PPT_TOL, few)
            results["eigvalsh_sign_test"][key] = rate(len(eig_rho), t)
            line += f"   negativities {results['negativities'][key]['states_per_s_best']:>9,.0f}/s"
            print(line + f"   load {loadavg()}", flush=True)

    same_run: dict[str, Any] = {}
    for key in results["npt_mask[numpy]"]:
        ref = results["npt_mask[numpy]"][key]
        row = {
            "numpy_over_eigvalsh": ref["states_per_s_best"]
            / results["eigvalsh_sign_test"][key]["states_per_s_best"],
        }
        for b in backends[1:]:
            new = results[f"npt_mask[{b}]"][key]
            row[f"{b}_over_numpy_wall"] = new["states_per_s_best"] / ref["states_per_s_best"]
            row[f"{b}_over_numpy_cpu"] = ref["cpu_s_per_state"] / new["cpu_s_per_state"]
        same_run[key] = {k: round(v, 3) for k, v in row.items()}
    best = results[f"npt_mask[{default_backend}]"]
    headline = max(best[f"all/threads={t}"]["states_per_s_best"] for t in args.threads)

    prev = None
    if previous is not None:
        prev_results = previous.get("results", {})
        if "npt_mask" in prev_results and "npt_mask[numpy]" not in prev_results:  # report before backends
            prev_results = {"npt_mask[numpy]": prev_results["npt_mask"], **prev_results}
        prev = {
            "created": previous.get("created"),
            "git_commit": (previous.get("machine") or {}).get("git_commit"),
            "loadavg_start": previous.get("loadavg_start"),
            "states_per_s_best": {
                series: {k: v.get("states_per_s_best") for k, v in figures.items()}
                for series, figures in prev_results.items()
                if series != "npt_mask" or "npt_mask[numpy]" not in prev_results
            },
        }
    beside = {
        series: {
            key: {
                "now": fig["states_per_s_best"],
                "previous": ((prev or {}).get("states_per_s_best", {}).get(series) or {}).get(key),
                "numpy_same_run": results["npt_mask[numpy]"][key]["states_per_s_best"]
                if series.startswith("npt_mask")
                else None,
            }
            for key, fig in figures.items()
        }
        for series, figures in results.items()
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
            "backends": backends,
            "npt_chunk_states": {
                "numpy": npt_chunk_size(args.n),
                "mixed": npt_chunk_size(args.n, ppt._NPT_MIXED_CHUNK_BYTES),
                "native": npt_native.CHUNK_STATES,
                "compiled": npt_compiled.CHUNK_STATES,
            },
        },
        "machine": machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "compile": compiles,
        "exactness": exactness,
        "results": results,
        "same_run_ratios": same_run,
        "beside_previous_and_reference": beside,
        "previous": prev,
        "labelers_npt_stage": labelers,
        "summary": {
            "backend": default_backend,
            "npt_mask_states_per_s": headline,
            "npt_mask_cut_tests_per_s": headline * cuts,
            "numpy_states_per_s": max(
                results["npt_mask[numpy]"][f"all/threads={t}"]["states_per_s_best"] for t in args.threads
            ),
            **{
                f"{b}_states_per_s": max(
                    results[f"npt_mask[{b}]"][f"all/threads={t}"]["states_per_s_best"] for t in args.threads
                )
                if b in backends
                else None
                for b in ("mixed", "native", "compiled")
            },
            "labelers_npt_stage_states_per_s": labelers["npt_stage_default"]["states_per_s_best"],
            "labelers_npt_stage_with_evidence_states_per_s": labelers["npt_stage_with_evidence_states_per_s"],
            "target_states_per_s": TARGET_STATES_PER_S if args.n == 3 else None,
            "meets_target": bool(headline >= TARGET_STATES_PER_S) if args.n == 3 else None,
            "labelers_meet_target": bool(
                labelers["npt_stage_default"]["states_per_s_best"] >= TARGET_STATES_PER_S
            )
            if args.n == 3
            else None,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(
        f"npt_mask[{default_backend}] (default) best: {headline:,.0f} states/s "
        f"({headline * cuts:,.0f} cut tests/s); numpy {report['summary']['numpy_states_per_s']:,.0f}/s; "
        f"labelers' NPT stage {report['summary']['labelers_npt_stage_states_per_s']:,.0f}/s; wrote {args.out}"
    )
    return report


if __name__ == "__main__":
    main()
