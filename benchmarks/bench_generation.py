"""Generation speed and statistics: the trig-free gate sampler (store format 2) against its float64
reference (store format 1), per family entry of a dataset, on the same counts in the same run.

For every family entry of ``--dataset`` (default ``paper-train-verified``) it draws ``--states``
states twice, once with ``qeframe_plugins.families._circuits.random_gate_params`` (float32 SIMD
sine/cosine renormalised in float64) and once with ``reference_gate_params`` (float64 angles and
``sin``/``cos``, the format-1 sampler; same layout), from independent seeds, and reports per entry:

* CPU seconds per state of ``family.generate`` for both samplers and their ratio;
* the statistics of the recipe for both samplers: per-cut NPT fraction (``npt_mask``), the
  dataset labeler's keep rate, quartiles of the purity ``tr rho^2``, of the spectrum (largest
  eigenvalue of ``rho``) and of ``lambda_min(rho^{T_A})`` per cut;
* two-sample tests of agreement: a two-proportion z-test per cut's NPT fraction and for the keep
  rate, and a two-sample Kolmogorov-Smirnov test for purity, largest eigenvalue and each cut's
  ``lambda_min``. Under the null (same distribution) p-values are uniform, so about 0.1 % of them
  fall below 0.001; the summary counts them next to that expectation. The continuous features are
  rounded to 1e-12 before the KS tests: quantities that are constant by construction (``lambda_min``
  of every cut of a GHZ or W state is LU-invariant) differ between the samplers only by rounding
  (the float32-derived gates round differently at the 1e-16 level).

    .venv/bin/python benchmarks/bench_generation.py --states 3000 --out benchmarks/results/generation.json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, report_header, write_report


def _quartiles(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.quantile(x, [0.25, 0.5, 0.75])]


def _features(batch: Any, labeler: Any) -> dict[str, Any]:
    from qeframe.quantum.ops import purity
    from qeframe.quantum.ppt import npt_mask, pt_min_eigenvalues

    rho = batch.rho
    lam = pt_min_eigenvalues(rho)
    return {
        "npt": npt_mask(rho),
        "keep": np.asarray(labeler.label(batch).keep, dtype=bool),
        "purity": np.round(purity(rho), 12),
        "top_eigenvalue": np.round(np.linalg.eigvalsh(rho)[:, -1], 12),
        "pt_min": np.round(lam, 12),
    }


def _two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when both are 0 or 1)."""
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / math.sqrt(var)
    return float(math.erfc(abs(z) / math.sqrt(2)))


def _summary(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "npt_fraction_per_cut": [float(v) for v in f["npt"].mean(axis=0)],
        "keep_rate": float(f["keep"].mean()),
        "purity_quartiles": _quartiles(f["purity"]),
        "top_eigenvalue_quartiles": _quartiles(f["top_eigenvalue"]),
        "pt_min_quartiles_per_cut": [_quartiles(f["pt_min"][:, c]) for c in range(f["pt_min"].shape[1])],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="paper-train-verified")
    parser.add_argument("--registry", type=Path, default=Path("registry.toml"))
    parser.add_argument("--states", type=int, default=3000, help="states per entry and sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generation.json")
    args = parser.parse_args(argv)

    from qeframe_plugins.families import _circuits

    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import generation_context
    from qeframe.plugin.registry import Registry

    before = os.getloadavg()
    spec = load_registry_file(args.registry).dataset(args.dataset)
    ctx = generation_context(args.dataset, spec, Registry.load())
    samplers = {"new": _circuits.random_gate_params, "reference": _circuits.reference_gate_params}
    entries, p_values = [], []
    for e, (entry, family) in enumerate(zip(spec.families, ctx.families, strict=True)):
        row: dict[str, Any] = {"entry": e, "tag": entry.tag, "family": entry.family, "params": entry.params}
        feats = {}
        for s, (name, sampler) in enumerate(samplers.items()):
            _circuits.random_gate_params = sampler  # the circuit engine looks it up at call time
            rng = np.random.default_rng([args.seed, e, s])
            t0 = time.process_time()
            batch = family.generate(args.states, rng, spec.n_qubits)
            row[f"{name}_cpu_us_per_state"] = round((time.process_time() - t0) / args.states * 1e6, 2)
            feats[name] = _features(batch, ctx.labeler)
            row[name] = _summary(feats[name])
        _circuits.random_gate_params = samplers["new"]
        row["speedup"] = round(row["reference_cpu_us_per_state"] / row["new_cpu_us_per_state"], 3)
        a, b, n = feats["new"], feats["reference"], args.states
        tests = {
            f"npt_cut{c}": _two_proportion_p(int(a["npt"][:, c].sum()), n, int(b["npt"][:, c].sum()), n)
            for c in range(a["npt"].shape[1])
        }
        tests["keep_rate"] = _two_proportion_p(int(a["keep"].sum()), n, int(b["keep"].sum()), n)
        for key in ("purity", "top_eigenvalue"):
            if np.ptp(a[key]) > 1e-9 or np.ptp(b[key]) > 1e-9:
                tests[f"ks_{key}"] = float(stats.ks_2samp(a[key], b[key]).pvalue)
        for c in range(a["pt_min"].shape[1]):
            tests[f"ks_pt_min_cut{c}"] = float(stats.ks_2samp(a["pt_min"][:, c], b["pt_min"][:, c]).pvalue)
        row["p_values"] = {k: round(v, 6) for k, v in tests.items()}
        p_values += list(tests.values())
        entries.append(row)
        print(
            f"{e:2d} {entry.tag or entry.family:40s} new {row['new_cpu_us_per_state']:8.1f} us  "
            f"ref {row['reference_cpu_us_per_state']:8.1f} us  x{row['speedup']:.2f}  "
            f"min p {min(tests.values()):.4f}",
            flush=True,
        )
    total_new = sum(r["new_cpu_us_per_state"] for r in entries)
    total_ref = sum(r["reference_cpu_us_per_state"] for r in entries)
    report = {
        **report_header("generation"),
        "dataset": args.dataset,
        "states_per_entry_and_sampler": args.states,
        "seed": args.seed,
        "load_average": load_average(before),
        "entries": entries,
        "summary": {
            "cpu_us_per_state_sum_new": round(total_new, 1),
            "cpu_us_per_state_sum_reference": round(total_ref, 1),
            "speedup_of_the_sum": round(total_ref / total_new, 3),
            "tests": len(p_values),
            "p_below_0.001": int(sum(p < 1e-3 for p in p_values)),
            "expected_p_below_0.001_if_equal": round(len(p_values) * 1e-3, 2),
            "min_p": float(min(p_values)),
            "bonferroni_min_p_times_tests": float(min(1.0, min(p_values) * len(p_values))),
        },
    }
    write_report(args.out, report)
    print(f"wrote {args.out}: {report['summary']}")
    return report


if __name__ == "__main__":
    main()
