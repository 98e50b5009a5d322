"""Summary statistics of dataset entries' rows, written as the reference of the recipe-statistics test.

Draws ``--n`` kept rows of each entry exactly as a build does (family, ``local_randomize``, labeler
and its dropping; blocks 0, 1, 2, ... of the entry) and stores per entry the per-cut NPT fractions,
label and provenance fractions, purity and eigenvalue summaries (``tests/recipe_stats.py``)::

    python benchmarks/recipe_statistics.py --n 2000 --out tests/fixtures/recipe_statistics.json

``tests/fixtures/recipe_statistics.json`` was written by this script from the generators of store
format 3 (commit c12ac19: the first four sets in one run, the cut-filter set in a second run of
this script with the c12ac19 package installed), before format 4 changed any random stream;
``tests/data/test_recipe_statistics.py`` draws from the current generators and checks every entry
against it within sampling error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The entries whose random streams store format 4 changed: every Table I entry (the verified
#: training set's, which also covers the product family's biseparable "comb" rejection) and the
#: certified PPT-cut families that drew Haar states with the normalised-Gaussian sampler.
DEFAULT_DATASETS = (
    "paper-train-verified",
    "paper-train-ppt",
    "paper-test-ppt-entangled",
    "paper-test-ppt-entangled-cutfilter",
    "paper-test-ppt-separable",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=list(DEFAULT_DATASETS))
    parser.add_argument("--n", type=int, default=2000, help="kept rows per entry")
    parser.add_argument("--registry", type=Path, default=ROOT / "registry.toml")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "recipe_statistics.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import subprocess

    from recipe_stats import draw_rows, summarize

    from qeframe.config.specs import load_registry_file
    from qeframe.data.format import STORE_FORMAT
    from qeframe.data.store import generation_context
    from qeframe.plugin.registry import Registry

    registry_file = load_registry_file(args.registry)
    registry = Registry.load()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    report = {
        "script": "benchmarks/recipe_statistics.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "store_format": STORE_FORMAT,
        "n": args.n,
        "entries": {},
    }
    for name in args.datasets:
        spec = registry_file.datasets[name]
        ctx = generation_context(name, spec, registry)
        for e, fam in enumerate(spec.families):
            t0 = time.process_time()
            rows = draw_rows(ctx, e, args.n, count=fam.count)
            report["entries"][f"{name}:{fam.tag}"] = summarize(rows)
            print(f"{name}:{fam.tag}  {time.process_time() - t0:.1f} CPU-s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, separators=(",", ":")) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
