"""Haar pure-state samplers, per state: the package's one (Eq. A3, :func:`qeframe.quantum.random.haar_state`)
against normalised complex Gaussians (the sampler ``haar_state`` was until store format 4), in one run.

    python benchmarks/bench_haar.py            # writes benchmarks/results/haar.json

Best of ``--repeat`` timings of ``size`` states per dimension, one thread; the ratio in one run is
the figure that counts on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def gaussian_states(dim: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The reference: ``g / |g|`` for standard complex Gaussian ``g`` ``(size, dim)``."""
    z = rng.standard_normal((size, dim)) + 1j * rng.standard_normal((size, dim))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="*", default=[2, 4, 8, 64])
    parser.add_argument("--entries", type=int, default=2**20, help="complex entries per timing")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "haar.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import load_average, previous_report, report_header, write_report

    from qeframe.quantum.random import haar_state

    before = os.getloadavg()
    previous = previous_report(args.out)
    rng = np.random.default_rng(0)
    rows = []
    for dim in args.dims:
        size = args.entries // dim
        best = {}
        for name, fn in (("a3", haar_state), ("gaussian", gaussian_states)):
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                fn(dim, size, rng)
                times.append(time.perf_counter() - t)
            best[name] = 1e9 * min(times) / size
        rows.append(
            {
                "dim": dim,
                "a3_ns_per_state": round(best["a3"], 1),
                "gaussian_ns_per_state": round(best["gaussian"], 1),
                "a3_over_gaussian": round(best["a3"] / best["gaussian"], 3),
            }
        )
        print(rows[-1], flush=True)
    report = {**report_header("haar"), "load_average": load_average(before), "rows": rows}
    if previous:
        report["previous"] = {"date": previous.get("date"), "rows": previous.get("rows")}
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
