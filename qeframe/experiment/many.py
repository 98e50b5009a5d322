"""Several experiments side by side: :func:`run_many` (what ``qeframe run A B C --jobs 3`` calls).

The parent checks every experiment and builds every dataset they read once; then each experiment
runs in a child process of its own (``python -m qeframe.cli run EXPERIMENT --json``,
:mod:`qeframe.experiment.jobs`), at most ``jobs`` at a time. The comparison of their results and
the status of each child close it, written to ``<runs_dir>/_logs/<stamp>/`` (``summary.md``,
``summary.json``, one ``.log`` and ``.json`` per experiment).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qeframe.errors import QeframeError
from qeframe.experiment.jobs import Job, child_command, run_jobs
from qeframe.experiment.single import check_experiment


@dataclass
class ManyResult:
    """What :func:`run_many` returns.

    Attributes:
        experiments: the experiments, in the order given.
        jobs: one :class:`~qeframe.experiment.jobs.Job` per experiment, ended (``status`` ``done``
            or ``failed``, ``run`` the run folder, ``log`` its log).
        parallel: how many ran at the same time.
        log_dir: ``<runs_dir>/_logs/<stamp>/``.
        results: ``results.json`` of every experiment that finished.
        summary: the ``summary.json`` document.
        tables: the status table and the comparison tables (:class:`~qeframe.evaluation.tables.TableData`).
    """

    experiments: list[str]
    jobs: list[Job]
    parallel: int
    log_dir: Path
    results: dict[str, Any]
    summary: dict[str, Any]
    tables: list[Any]

    @property
    def failed(self) -> list[Job]:
        """The jobs that did not finish."""
        return [j for j in self.jobs if j.status != "done"]

    def to_json(self) -> dict[str, Any]:
        """The document ``qeframe run A B ... --json`` prints: the summary, the log folder and each
        experiment's model / gated mean accuracy and PPT detection per test set."""
        from qeframe.evaluation.metrics import CONVENTIONS

        results = self.results
        means = {
            e: {d: {c: block[c]["model"]["mean"] for c in CONVENTIONS} for d, block in r.items()}
            for e, r in results.items()
        }
        gated = {
            e: {
                d: {c: block[c]["gated"]["mean"] for c in CONVENTIONS if "gated" in block[c]}
                for d, block in r.items()
            }
            for e, r in results.items()
        }
        detection = {e: {d: block.get("ppt_detection") for d, block in r.items()} for e, r in results.items()}
        return {
            **self.summary,
            "log_dir": str(self.log_dir),
            "model_mean": means,
            "gated_mean": gated,
            "ppt_detection": detection,
        }


def run_many(
    names: Sequence[str],
    *,
    jobs: int = 1,
    registry: str | Path = Path("registry.toml"),
    data_dir: str | Path = Path("data"),
    runs_dir: str | Path = Path("runs"),
    device: str = "auto",
    epochs: int | None = None,
    compile: bool = False,
    progress: bool = False,
) -> ManyResult:
    """Check all experiments ``names``, build their datasets once, run each in a child process
    (at most ``jobs`` at a time), then write the comparison of their results.

    A failing experiment does not stop the others: see :attr:`ManyResult.failed`. ``progress``:
    the dataset builds' bars and one line per started / finished child on stderr. The other
    arguments are :func:`~qeframe.experiment.run_experiment`'s.

    Raises:
        QeframeError: an experiment named twice, or any error of the checks (before anything runs).
    """
    from rich.console import Console

    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import ensure_dataset
    from qeframe.evaluation.tables import TableData, comparison_tables, tables_markdown
    from qeframe.io import atomic_write_json, atomic_write_text
    from qeframe.learn.arrays import resolve_device
    from qeframe.plugin.registry import get_registry

    experiments = list(names)
    registry, data_dir, runs_dir = Path(registry), Path(data_dir), Path(runs_dir)
    if jobs < 1:
        raise QeframeError(f"jobs must be at least 1, not {jobs}")
    twice = sorted({e for e in experiments if experiments.count(e) > 1})
    if twice:
        raise QeframeError(f"experiment named more than once: {', '.join(twice)}")
    registry_file = load_registry_file(registry)
    reg = get_registry()
    needed: list[str] = []
    for experiment in experiments:
        _, used, _ = check_experiment(experiment, registry_file, reg, epochs, compile)
        needed += [n for n in used if n not in needed]
    resolve_device(device)  # `--device cuda` without CUDA fails here, not in every child
    for name in needed:
        ensure_dataset(name, registry_file, data_dir=data_dir, registry=reg, progress=progress)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = runs_dir / "_logs" / stamp
    job_list = [
        Job(
            e,
            child_command(
                e,
                registry=registry,
                data_dir=data_dir,
                runs_dir=runs_dir,
                device=device,
                epochs=epochs,
                compile=compile,
            ),
            log_dir / f"{e}.log",
            log_dir / f"{e}.json",
        )
        for e in experiments
    ]
    parallel = min(jobs, len(job_list))
    t0 = time.monotonic()
    stderr = Console(stderr=True)

    def report(job: Job) -> None:
        if not progress:
            return
        at = f"[{time.monotonic() - t0:7.1f}s]"
        if job.status == "running":
            line = f"{at} started {job.experiment} (log {job.log})"
        elif job.status == "done":
            line = f"{at} finished {job.experiment} in {job.wall_s:.1f} s: {job.run}"
        else:
            line = f"{at} FAILED {job.experiment} (exit status {job.returncode}): {job.error}"
        stderr.print(line, markup=False, highlight=False)

    if progress:
        stderr.print(
            f"{len(job_list)} experiments, {parallel} at a time, logs in {log_dir}",
            markup=False,
            highlight=False,
        )
    run_jobs(job_list, parallel, on_change=report)

    results = {
        j.experiment: json.loads((Path(j.run) / "results.json").read_text())
        for j in job_list
        if j.status == "done" and j.run is not None
    }
    tables = comparison_tables(results) if results else []
    summary = {
        "experiments": experiments,
        "jobs": parallel,
        "device": device,
        "wall_s": round(time.monotonic() - t0, 1),
        "runs": [j.record() for j in job_list],
    }
    atomic_write_json(log_dir / "summary.json", summary, sort_keys=False)
    status = TableData(
        f"{len(job_list)} experiments ({parallel} at a time on {device})",
        ["experiment", "status", "wall (s)", "run folder"],
        [
            [j.experiment, j.status, "—" if j.wall_s is None else f"{j.wall_s:.1f}", j.run or j.error or ""]
            for j in job_list
        ],
    )
    markdown = [f"# Runs started {stamp}", "", *tables_markdown([status, *tables])]
    atomic_write_text(log_dir / "summary.md", "\n".join(markdown))
    return ManyResult(experiments, job_list, parallel, log_dir, results, summary, [status, *tables])
