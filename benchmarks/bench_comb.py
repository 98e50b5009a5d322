"""Comb draws per second: the ``product`` family's "comb" entries under the verified labeler, against
the general circuit engine in the same run.

The verified training set keeps a comb biseparable state only when both of its non-product cuts are
NPT (about 2-3 % of the draws), so these entries cost most of ``paper-train-verified``'s CPU time
(``docs/performance.md``, "Data generation"). For every product entry of ``--dataset`` with a
``local_terms`` range (the comb mixing mode) this draws ``--draws`` states in blocks of the build's
size with ``family.generate`` and labels them with the dataset's labeler, by three paths from the same
seeds, in ``--rounds`` interleaved rounds (a path's CPU time is its sum over the rounds):

* ``new``: what a build runs now — one- and two-qubit circuit factors in closed form
  (``qeframe_plugins.families._small_circuits``) and the labeler's drop rule passed to the family
  (``generate(..., drop=labeler.drop_rule())``: the screen of ``_screened``);
* ``unscreened``: the closed forms without the drop rule;
* ``reference``: the general engine for the factors, no drop rule (the code path of main before this
  work, ``_common.engine_product_factors``).

It reports per entry and path: CPU µs per draw (generation and labelling), draws/s, the keep rate,
the projected CPU seconds of the entry (``count / keep rate × CPU per draw``), the ratios to the
reference, and whether the labeller's output — kept rows, labels, evidence — is bit-identical
across the paths (sha256 over every block).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_comb.py --draws 20480 --out benchmarks/results/comb.json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import engine_product_factors, load_average, previous_report, report_header, write_report

PATHS = ("new", "unscreened", "reference")


def _run(
    family: Any, labeler: Any, n_qubits: int, draws: int, block: int, seed: list[int], screen: bool
) -> dict[str, Any]:
    """Generate and label ``draws`` states in blocks: CPU seconds, kept count, sha256 of the labeller's
    output (kept rows, labels, provenance, evidence)."""
    rng = np.random.default_rng(seed)
    drop = labeler.drop_rule() if screen else None
    digest = hashlib.sha256()
    gen = lab = 0.0
    kept = 0
    for start in range(0, draws, block):
        t0 = time.process_time()
        batch = family.generate(min(block, draws - start), rng, n_qubits, drop=drop)
        t1 = time.process_time()
        out = labeler.label(batch)
        t2 = time.process_time()
        gen, lab = gen + t1 - t0, lab + t2 - t1
        kept += int(np.count_nonzero(out.keep))
        for array in (batch.rho[out.keep], out.labels, out.provenance, out.evidence):
            digest.update(np.ascontiguousarray(array).data)
    return {"generate_s": gen, "label_s": lab, "kept": kept, "sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="paper-train-verified")
    parser.add_argument("--registry", type=Path, default=Path("registry.toml"))
    parser.add_argument("--draws", type=int, default=20480, help="draws per entry, path and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "comb.json")
    args = parser.parse_args(argv)

    from qeframe.config.specs import load_registry_file
    from qeframe.data.build import block_size_for
    from qeframe.data.store import generation_context
    from qeframe.plugin.registry import Registry

    previous = previous_report(args.out)
    old_rows = {r["tag"]: r for r in (previous or {}).get("entries", [])}
    before = os.getloadavg()
    spec = load_registry_file(args.registry).dataset(args.dataset)
    ctx = generation_context(args.dataset, spec, Registry.load())
    block = block_size_for(spec.n_qubits)
    entries = []
    for e, (entry, family) in enumerate(zip(spec.families, ctx.families, strict=True)):
        if entry.family != "product" or "local_terms" not in entry.params:
            continue
        totals = {p: {"generate_s": 0.0, "label_s": 0.0, "kept": 0} for p in PATHS}
        same = True
        for r in range(args.rounds):
            runs = {}
            for path in PATHS if r % 2 == 0 else PATHS[::-1]:
                seed = [args.seed, e, r]
                args_ = (family, ctx.labeler, spec.n_qubits, args.draws, block, seed, path == "new")
                if path == "reference":
                    with engine_product_factors():
                        runs[path] = _run(*args_)
                else:
                    runs[path] = _run(*args_)
            same &= len({run["sha256"] for run in runs.values()}) == 1
            for path, run in runs.items():
                for key in ("generate_s", "label_s", "kept"):
                    totals[path][key] += run[key]
        n = args.draws * args.rounds
        row: dict[str, Any] = {"entry": e, "tag": entry.tag, "params": entry.params, "draws": n}
        for path, t in totals.items():
            cpu = t["generate_s"] + t["label_s"]
            rate = t["kept"] / n
            row[path] = {
                "cpu_us_per_draw": round(cpu / n * 1e6, 2),
                "generate_us_per_draw": round(t["generate_s"] / n * 1e6, 2),
                "label_us_per_draw": round(t["label_s"] / n * 1e6, 2),
                "draws_per_s": round(n / cpu, 1),
                "keep_rate": round(rate, 5),
                "projected_entry_cpu_s": round(entry.count / max(rate, 1e-9) * cpu / n, 1),
            }
        row["speedup"] = round(row["reference"]["cpu_us_per_draw"] / row["new"]["cpu_us_per_draw"], 3)
        row["speedup_unscreened"] = round(
            row["reference"]["cpu_us_per_draw"] / row["unscreened"]["cpu_us_per_draw"], 3
        )
        row["same_rows"] = same
        if entry.tag in old_rows:
            row["previous"] = {k: old_rows[entry.tag].get(k) for k in ("new", "speedup")}
        entries.append(row)
        print(
            f"{entry.tag:40s} new {row['new']['cpu_us_per_draw']:7.1f} us/draw  "
            f"unscreened {row['unscreened']['cpu_us_per_draw']:7.1f}  "
            f"ref {row['reference']['cpu_us_per_draw']:7.1f}  x{row['speedup']:.2f}  "
            f"keep {row['new']['keep_rate']:.4f}  same rows {same}",
            flush=True,
        )
    proj = {p: round(sum(r[p]["projected_entry_cpu_s"] for r in entries), 1) for p in PATHS}
    report = {
        **report_header("comb"),
        "dataset": args.dataset,
        "draws_per_entry_path_round": args.draws,
        "rounds": args.rounds,
        "block": block,
        "seed": args.seed,
        "load_average": load_average(before),
        "entries": entries,
        "summary": {
            "projected_cpu_s_new": proj["new"],
            "projected_cpu_s_unscreened": proj["unscreened"],
            "projected_cpu_s_reference": proj["reference"],
            "saved_cpu_s": round(proj["reference"] - proj["new"], 1),
            "all_rows_identical": all(r["same_rows"] for r in entries),
        },
        "previous": None if previous is None else {k: previous.get(k) for k in ("date", "summary")},
    }
    write_report(args.out, report)
    print(f"wrote {args.out}: {report['summary']}")
    return report


if __name__ == "__main__":
    main()
