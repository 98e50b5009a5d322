"""The whole quickstart, timed by phase: ``qeframe run quickstart`` from an empty data folder.

Runs ``qeframe run EXPERIMENT`` once per experiment, each in a fresh process with a fresh data
folder and run folder (under a temporary directory), and measures

* the process tree's CPU seconds (user + sys, the child and its reaped dataset-build workers,
  from ``os.wait4``) and wall seconds of the whole command;
* inside the child, per phase (wall and CPU of the process and its reaped children): start-up
  (Python, ``qeframe.cli``, torch imports), data build and loading (``ensure_dataset``), training
  (``Trainer.fit``; its epochs and the per-epoch validation), the prediction layer's fit, the
  evaluation on the test sets (model, gated rows and the PPT/CCNR baselines), plots, the rest;
* the accuracy the run reports: mean per-cut accuracy (%) of the ``model`` and ``gated`` rows on
  every test set (convention ``paper``).

The reference is the quickstart recipe before issue 16 (``quickstart-previous`` below: the paper's
CNN at full width, 10 epochs at lr 0.003, the Siamese terms from epoch 5), run in the same
invocation, so that the ratio of the two is measured under the same load::

    python benchmarks/bench_quickstart.py --seeds 0 1 2 --out benchmarks/results/quickstart.json

``--seeds`` runs each of ``--experiments`` (default ``quickstart``) once per ``training.seed`` (a
temporary registry file derived from ``registry.toml`` holds the variants; the data are the same);
the reference runs once, with its own seed (``--no-reference`` leaves it out). ``--jobs 2`` runs
two commands side by side (they then share the cores: compare CPU seconds, not wall times). The report keeps the
figures of the report it replaces under ``previous``. The 1-minute load average is recorded
before and after every run: absolute times on a shared machine depend on it; the ratios and the
CPU seconds much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, previous_report, report_header, write_report

ROOT = Path(__file__).resolve().parents[1]

#: The quickstart before issue 16's change (``[experiments.quickstart]`` of commit c12ac19, kept in
#: registry.toml as the template ``quickstart-paper-cnn``), the reference.
PREVIOUS = """
[experiments.quickstart-previous]
extends = "quickstart-paper-cnn"
description = "the quickstart recipe before issue 16 (reference of benchmarks/bench_quickstart.py)"
"""


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _tree_cpu() -> float:
    return _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)


# --------------------------------------------------------------------------------------------------
# the child: one `qeframe run`, with timers around its phases


def child(argv: list[str], phases_out: Path, t_start: float) -> None:
    """Run ``qeframe run ARGV`` in this process with phase timers; write the phases as JSON."""
    from qeframe.cli.base import openmp_defaults

    openmp_defaults()  # what the `qeframe` script does first
    phases: dict[str, dict[str, float]] = {}

    def timed(phase: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), _tree_cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                p = phases.setdefault(phase, {"wall_s": 0.0, "cpu_s": 0.0, "calls": 0})
                p["wall_s"] += time.perf_counter() - w0
                p["cpu_s"] += _tree_cpu() - c0
                p["calls"] += 1

        return wrapper

    import importlib

    import qeframe.cli  # noqa: F401  (registers the commands; torch is imported by them)
    from qeframe.learn.train import Trainer

    store, evaluate, plots, prediction = (
        importlib.import_module(f"qeframe.{m}")
        for m in ("data.store", "evaluation.evaluate", "evaluation.plots", "learn.prediction")
    )

    startup = {"wall_s": time.time() - t_start, "cpu_s": _tree_cpu()}
    store.ensure_dataset = timed("data", store.ensure_dataset)
    Trainer.fit = timed("training", Trainer.fit)
    prediction.fit_for_run = timed("prediction_fit", prediction.fit_for_run)
    evaluate.evaluate = timed("evaluation", evaluate.evaluate)
    plots.write_plots = timed("plots", plots.write_plots)
    from qeframe.cli.base import app

    w0, c0 = time.perf_counter(), _tree_cpu()
    app(args=["run", *argv], standalone_mode=False)
    total = {"wall_s": time.perf_counter() - w0, "cpu_s": _tree_cpu() - c0}
    phases["other"] = {
        "wall_s": total["wall_s"] - sum(p["wall_s"] for p in phases.values()),
        "cpu_s": total["cpu_s"] - sum(p["cpu_s"] for p in phases.values()),
    }
    phases_out.write_text(json.dumps({"startup": startup, **phases}))


# --------------------------------------------------------------------------------------------------
# the parent


def _registry_with_variants(
    path: Path, experiments: list[str], seeds: list[int] | None, reference: bool
) -> list[str]:
    """Write registry.toml plus the reference and the seed variants to ``path``; the names to run."""
    text = (ROOT / "registry.toml").read_text(encoding="utf-8") + PREVIOUS
    names: list[str] = ["quickstart-previous"] if reference else []
    for exp in experiments:
        if not seeds:
            names.append(exp)
            continue
        for seed in seeds:
            name = f"{exp}-seed{seed}"
            text += (
                f'\n[experiments.{name}]\nextends = "{exp}"\n'
                f'description = "{exp} with training.seed = {seed}"\ntraining = {{ seed = {seed} }}\n'
            )
            names.append(name)
    path.write_text(text, encoding="utf-8")
    return names


def _accuracies(run_dir: Path) -> dict[str, dict[str, float]]:
    """``{test set: {"model": %, "gated": %}}`` (convention ``paper``) from the run's results.json."""
    results = json.loads((run_dir / "results.json").read_text())
    return {
        name: {
            k: round(100 * entry["paper"][k]["mean"], 2) for k in ("model", "gated") if k in entry["paper"]
        }
        for name, entry in results.items()
    }


def run_one(
    name: str, registry: Path, work: Path, threads: int | None, epochs: int | None = None
) -> dict[str, Any]:
    """One ``qeframe run NAME`` with an empty data folder; CPU and wall of the process tree."""
    data, runs, phases = work / f"data-{name}", work / f"runs-{name}", work / f"phases-{name}.json"
    for p in (data, runs):
        shutil.rmtree(p, ignore_errors=True)
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    args = [name, "--registry", str(registry), "--data-dir", str(data), "--runs-dir", str(runs), "--json"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    load0 = os.getloadavg()
    t0 = time.time()
    log = work / f"log-{name}.txt"
    with log.open("wb") as err:  # a file, not a pipe: the progress output could fill a pipe
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(phases), repr(t0), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    if status != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{name}: qeframe run failed (status {status}):\n{tail}")
    run_dir = next((runs / name).iterdir())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    record = {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "user_s": round(usage.ru_utime, 1),
        "sys_s": round(usage.ru_stime, 1),
        "phases": {
            k: {kk: round(vv, 2) for kk, vv in v.items()} for k, v in json.loads(phases.read_text()).items()
        },
        "epochs": len(metrics),
        "epoch_train_s": [round(m["train_time_s"], 1) for m in metrics],
        "selected_epoch": metrics[-1].get("selected_epoch"),
        "accuracy": _accuracies(run_dir),
        "load": load_average(load0),
    }
    print(
        f"{name}: {record['wall_s']} s wall, {record['cpu_s']} CPU-s; pure model "
        f"{record['accuracy'].get('quickstart-test-pure', {}).get('model')} %, gated "
        f"{record['accuracy'].get('quickstart-test-pure', {}).get('gated')} %; load "
        f"{record['load']['before']} -> {record['load']['after']}",
        flush=True,
    )
    return record


def _summary(records: dict[str, dict[str, Any]], experiment: str) -> dict[str, Any] | None:
    """Mean and minimum of the seed variants of ``experiment`` (pure model/gated, CPU-s)."""
    runs = [r for n, r in records.items() if n == experiment or n.startswith(f"{experiment}-seed")]
    if not runs:
        return None

    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": round(sum(values) / len(values), 2), "min": round(min(values), 2)}

    pure = [r["accuracy"]["quickstart-test-pure"] for r in runs]
    return {
        "runs": len(runs),
        "pure_model": stats([p["model"] for p in pure]),
        "pure_gated": stats([p["gated"] for p in pure]),
        "cpu_s": stats([r["cpu_s"] for r in runs]),
        "wall_s": stats([r["wall_s"] for r in runs]),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[4:], Path(sys.argv[2]), float(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", nargs="+", default=["quickstart"])
    ap.add_argument("--no-reference", action="store_true", help="leave out quickstart-previous")
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side")
    ap.add_argument("--seeds", nargs="*", type=int, help="rerun each experiment with these training seeds")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the runs (default: torch's)")
    ap.add_argument("--epochs", type=int, help="override training.epochs (a quick check of the benchmark)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quickstart.json")
    args = ap.parse_args()
    previous = previous_report(args.out)
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as tmp:
        work = Path(tmp)
        names = _registry_with_variants(
            work / "registry.toml", args.experiments, args.seeds, reference=not args.no_reference
        )
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                name: pool.submit(run_one, name, work / "registry.toml", work, args.threads, args.epochs)
                for name in names
            }
            records = {name: f.result() for name, f in futures.items()}
    report = {
        **report_header("quickstart"),
        "threads": args.threads or "torch default",
        "epochs_override": args.epochs,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE (qeframe default)"),
        "runs": records,
        "jobs": args.jobs,
        "summary": {e: _summary(records, e) for e in [*args.experiments, "quickstart-previous"]},
    }
    ref = report["summary"].get("quickstart-previous")
    new = report["summary"].get("quickstart")
    if ref and new:
        report["ratios"] = {
            "cpu_s_quickstart_over_previous": round(new["cpu_s"]["mean"] / ref["cpu_s"]["mean"], 3),
            "wall_s_quickstart_over_previous": round(new["wall_s"]["mean"] / ref["wall_s"]["mean"], 3),
        }
    if previous is not None:
        report["previous"] = {k: previous.get(k) for k in ("date", "runs", "summary", "ratios")}
    write_report(args.out, report)
    print(json.dumps(report.get("summary"), indent=1))


if __name__ == "__main__":
    main()
