"""``qeframe run EXPERIMENT`` and ``qeframe classify FILE --run RUN_DIR``.

``run``: reads the experiment from ``registry.toml``, checks every plugin name and parameter it
uses, builds missing datasets (:func:`qeframe.data.store.ensure_dataset`), trains (:mod:`qeframe.learn.train`)
with a progress bar, evaluates on the test datasets (:mod:`qeframe.evaluation.evaluate`) and writes the run
folder (:mod:`qeframe.learn.runs`): ``spec.json``, ``plugins.json``, ``metrics.jsonl``, ``checkpoints/``,
``results.json``, ``results.md``, ``plots/``. ``--resume RUN_DIR`` continues a killed run from its
last complete checkpoint. ``run A B C --jobs N``: several experiments, each in a process of its own
(:mod:`qeframe.multirun`), after their datasets are built once; a comparison table closes it.

``classify``: applies a run's selected model to user matrices (``.npy`` ``(N, 2**n, 2**n)`` or
``.npz`` with key ``rho``), after validating them, and prints/writes per-cut probabilities; the
loading, validation and prediction are :class:`qeframe.detector.Detector`'s (the notebook API).

Data-parallel ``run`` (:mod:`qeframe.learn.distributed`): ``torchrun --nproc_per_node=K -m qeframe.cli run
EXPERIMENT`` (or ``--distributed``; automatic when torchrun starts more than one process). Rank 0
builds missing datasets while the other ranks wait for the stores to be complete; then every rank
joins the process group, loads the training and validation sets and trains its part of every
global batch. Rank 0 alone creates and writes the run folder — the same files as a
single-process run — evaluates on the test sets and prints; the other ranks leave after training.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Self

import numpy as np
import typer

from qeframe import __version__
from qeframe.cli.base import DEFAULT_REGISTRY, JsonOption, RegistryOption, app, console, err_console
from qeframe.errors import QeframeError, SpecError

DeviceOption = Annotated[
    str, typer.Option("--device", help="Where to compute: auto (CUDA when available), cpu or cuda.")
]
_CLASSIFY_PRINT_ROWS = 50


class _RichTrainProgress:
    """A rich progress bar over the batches of each epoch, and one summary line per epoch (stderr)."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            disable=not enabled,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("train", total=n_batches, epoch=epoch, epochs=epochs)
        else:
            self.progress.reset(self.task, total=n_batches, epoch=epoch, epochs=epochs)

    def batch_end(self) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def epoch_end(self, record: Any) -> None:
        if not self.enabled:
            return
        loss = record["loss"]
        terms = ", ".join(f"{k} {v:.4f}" for k, v in loss.items() if v is not None)
        val = record.get("validation_mean")
        train_acc = record.get("train_accuracy")
        self.progress.console.print(
            f"epoch {record['epoch']}: loss {terms}"
            + (f"; train acc {100 * train_acc:.2f}%" if train_acc is not None else "")
            + (f"; val acc {100 * val:.2f}%" if val is not None else "")
            + (f"; {record['samples_per_s']:.0f} samples/s" if record.get("samples_per_s") else ""),
            markup=False,
            highlight=False,
        )


def _plugins_record(registry: Any, device: Any, precision: str, components: dict[str, Any]) -> dict[str, Any]:
    import torch

    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    )
    return {
        "plugins": registry.plugin_versions(),
        "components": components,
        "qeframe": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": device_name,
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
    }


def _wait_for_datasets(names: list[str], registry_file: Any, data_dir: Path, poll_s: float = 1.0) -> None:
    """Block until the stores of ``names`` are complete and of the current spec (a data-parallel
    rank other than 0 waiting for rank 0's build). No timeout: torchrun stops the other ranks when
    rank 0 fails."""
    from qeframe.data.reader import store_status

    while True:
        pending = [
            n for n in names if store_status(n, registry_file.dataset(n), data_dir=data_dir) != "built"
        ]
        if not pending:
            return
        time.sleep(poll_s)


def _component_info(registry: Any, kind: str, name: str) -> dict[str, str]:
    info = registry.info(kind, name)
    return {"name": name, "plugin": info.plugin, "distribution": info.distribution, "version": info.version}


def _check_experiment(
    experiment: str, registry_file: Any, reg: Any, epochs: int | None, compile: bool = False
) -> tuple[Any, list[str], int]:
    """Check every plugin name and parameter an experiment uses, before anything is built.

    Returns ``(spec, dataset names it reads, n_qubits)``; ``epochs`` overrides ``training.epochs``,
    ``compile`` sets ``training.compile``.
    """
    from qeframe.config.specs import validate_dataset_plugins
    from qeframe.evaluation.evaluate import validate_baselines
    from qeframe.learn.train import validate_experiment_plugins

    spec = registry_file.experiment(experiment)
    updates: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
    if compile:
        updates["compile"] = True
    if updates:
        spec = spec.model_copy(update={"training": spec.training.model_copy(update=updates)})
    key = f"experiments.{experiment}"
    validate_experiment_plugins(experiment, spec, reg)
    validate_baselines(spec.evaluation, reg, key=f"{key}.evaluation.baselines")
    names = list(
        dict.fromkeys([spec.train, *spec.validation, *spec.test, *(spec.prediction.calibrate_on or [])])
    )
    if spec.router is not None:  # ensemble experiment: check the router now; it may need `fit_on`
        from qeframe.learn.ensemble import validate_router

        names += [n for n in validate_router(experiment, spec, registry_file, reg) if n not in names]
    for name in names:
        validate_dataset_plugins(name, registry_file.dataset(name), reg)
    sizes = {name: registry_file.dataset(name).n_qubits for name in names}
    if len(set(sizes.values())) != 1:
        raise SpecError(f"{key}: datasets have different numbers of qubits: {sizes}")
    return spec, names, sizes[spec.train]


def _run_several(
    experiments: list[str],
    *,
    registry: Path,
    data_dir: Path,
    runs_dir: Path,
    device: str,
    epochs: int | None,
    jobs: int,
    as_json: bool,
    compile: bool = False,
) -> None:
    """``qeframe run A B ...``: check all, build their datasets once, run each in a child process
    (:mod:`qeframe.multirun`), then print and write the comparison of their results."""
    import datetime as dt

    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import ensure_dataset
    from qeframe.evaluation.evaluate import (
        CONVENTIONS,
        TableData,
        comparison_tables,
        print_tables,
        tables_markdown,
    )
    from qeframe.io import atomic_write_json, atomic_write_text
    from qeframe.learn.train import resolve_device
    from qeframe.multirun import Job, child_command, run_jobs
    from qeframe.plugin.registry import get_registry

    twice = sorted({e for e in experiments if experiments.count(e) > 1})
    if twice:
        raise QeframeError(f"experiment named more than once: {', '.join(twice)}")
    registry_file = load_registry_file(registry)
    reg = get_registry()
    needed: list[str] = []
    for experiment in experiments:
        _, names, _ = _check_experiment(experiment, registry_file, reg, epochs, compile)
        needed += [n for n in names if n not in needed]
    resolve_device(device)  # `--device cuda` without CUDA fails here, not in every child
    for name in needed:
        ensure_dataset(name, registry_file, data_dir=data_dir, registry=reg, progress=not as_json)

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

    def report(job: Job) -> None:
        if as_json:
            return
        at = f"[{time.monotonic() - t0:7.1f}s]"
        if job.status == "running":
            line = f"{at} started {job.experiment} (log {job.log})"
        elif job.status == "done":
            line = f"{at} finished {job.experiment} in {job.wall_s:.1f} s: {job.run}"
        else:
            line = f"{at} FAILED {job.experiment} (exit status {job.returncode}): {job.error}"
        err_console.print(line, markup=False, highlight=False)

    if not as_json:
        err_console.print(
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
    if as_json:
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
        print(
            json.dumps(
                {
                    **summary,
                    "log_dir": str(log_dir),
                    "model_mean": means,
                    "gated_mean": gated,
                    "ppt_detection": detection,
                },
                indent=2,
            )
        )
    else:
        print_tables([status, *tables], console)
        console.print(f"summary: {log_dir / 'summary.md'}", markup=False, highlight=False)
    failed = [j for j in job_list if j.status != "done"]
    if failed:
        detail = "; ".join(f"{j.experiment} (log {j.log})" for j in failed)
        raise QeframeError(f"{len(failed)} of {len(job_list)} experiments failed: {detail}")


@app.command("run")
def run_command(
    experiments: Annotated[
        list[str],
        typer.Argument(
            help="Experiment name(s) in the registry file; several run side by side as separate processes (--jobs).",
            show_default=False,
        ),
    ],
    registry: RegistryOption = DEFAULT_REGISTRY,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Folder of the dataset stores.")] = Path(
        "data"
    ),
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder of the run folders.")] = Path("runs"),
    device: DeviceOption = "auto",
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in RUN_DIR from its last complete checkpoint."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override training.epochs.", min=1)] = None,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="Set training.compile: torch.compile the training step (CUDA graphs on one GPU; "
            "minutes of compilation, then a faster step).",
        ),
    ] = False,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Data-parallel training over the processes torchrun started "
            "(torchrun --nproc_per_node=K -m qeframe.cli run ...); automatic when WORLD_SIZE > 1.",
        ),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="With several experiments: how many run at the same time, one process each "
            "(on a GPU, several at once are faster: a training step is bound by launch overhead).",
        ),
    ] = 1,
    show_progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bar and one line per epoch on stderr (default: on, off with --json).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train and evaluate experiments; write runs/<experiment>/<run-id>/ and print the tables.

    With several experiments the datasets they read are built first, then each experiment runs in
    a process of its own, at most --jobs at a time; a comparison table and runs/_logs/<stamp>/
    (logs, summary.md, summary.json) close the command.
    """
    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import ensure_dataset
    from qeframe.learn.distributed import (
        NOT_UNDER_TORCHRUN,
        SINGLE,
        distributed_device,
        init_distributed,
        shutdown,
        torchrun_env,
        wants_distributed,
    )
    from qeframe.learn.runs import RunDir, experiment_spec_hash, resume_spec_hash
    from qeframe.learn.train import DatasetArrays, resolve_device
    from qeframe.plugin.registry import get_registry

    if len(experiments) > 1:
        if resume is not None:
            raise QeframeError("--resume continues one run: give one experiment")
        if wants_distributed(distributed):
            raise QeframeError("--distributed trains one experiment: give one experiment")
        _run_several(
            experiments,
            registry=registry,
            data_dir=data_dir,
            runs_dir=runs_dir,
            device=device,
            epochs=epochs,
            jobs=jobs,
            as_json=as_json,
            compile=compile,
        )
        return
    experiment = experiments[0]
    registry_file = load_registry_file(registry)
    reg = get_registry()
    key = f"experiments.{experiment}"
    spec, names, n_qubits = _check_experiment(experiment, registry_file, reg, epochs, compile)
    parallel = wants_distributed(distributed)
    env = torchrun_env() if parallel else None
    if parallel and env is None:
        raise QeframeError(NOT_UNDER_TORCHRUN)
    if parallel and spec.router is not None:
        raise QeframeError(
            f"{key}: ensemble experiments (with a router) are not trained data-parallel yet; "
            "run them in one process (without torchrun/--distributed)"
        )
    main_rank = env is None or env[0] == 0
    chatty = main_rank and (not as_json if show_progress is None else show_progress)  # stderr progress
    torch_device = distributed_device(device, env[2]) if env is not None else resolve_device(device)
    spec_hash = experiment_spec_hash(spec, registry_file.datasets)

    run: RunDir | None = None
    if resume is not None:
        run = RunDir.open(resume)
        recorded = run.read_spec().get("experiment") if run.spec_file.is_file() else experiment
        if recorded != experiment:
            raise QeframeError(
                f"--resume {resume}: that run is of experiment {recorded!r}, not {experiment!r}"
            )
        if run.spec_file.is_file():  # a run recorded before store format 3 keeps its hash
            spec_hash = resume_spec_hash(run.read_spec().get("spec_hash"), spec, registry_file.datasets)

    if not main_rank:  # rank 0 builds what is missing; load only what training reads
        _wait_for_datasets(names, registry_file, data_dir)
        names = list(dict.fromkeys([spec.train, *spec.validation]))
    datasets = {}
    for name in names:
        ds = ensure_dataset(name, registry_file, data_dir=data_dir, registry=reg, progress=chatty)
        datasets[name] = DatasetArrays.from_dataset(ds)

    ctx = SINGLE
    if parallel:
        ctx, torch_device = init_distributed(device)
    try:
        _train_and_evaluate(
            experiment=experiment,
            spec=spec,
            registry_file=registry_file,
            registry_path=registry,
            reg=reg,
            key=key,
            names=names,
            datasets=datasets,
            n_qubits=n_qubits,
            torch_device=torch_device,
            spec_hash=spec_hash,
            run=run,
            runs_dir=runs_dir,
            resume=resume is not None,
            ctx=ctx if parallel else None,
            as_json=as_json,
            chatty=chatty,
        )
    finally:
        shutdown(ctx)


def _train_and_evaluate(
    *,
    experiment: str,
    spec: Any,
    registry_file: Any,
    registry_path: Path,
    reg: Any,
    key: str,
    names: list[str],
    datasets: dict[str, Any],
    n_qubits: int,
    torch_device: Any,
    spec_hash: str,
    run: Any,
    runs_dir: Path,
    resume: bool,
    ctx: Any,
    as_json: bool,
    chatty: bool,
) -> None:
    """The part of ``qeframe run`` after the datasets are loaded: train, evaluate, write, print.

    ``ctx`` is the data-parallel :class:`~qeframe.learn.distributed.DistContext` (``None`` in one
    process); only its rank 0 writes the run folder, evaluates and prints. ``chatty``: progress
    bar and per-epoch lines on stderr (``--progress``); ``as_json``: stdout is one JSON document.
    """
    from qeframe.evaluation.evaluate import evaluate, print_results, results_markdown
    from qeframe.evaluation.plots import write_plots
    from qeframe.io import atomic_write_json, atomic_write_text
    from qeframe.learn.prediction import fit_for_run
    from qeframe.learn.runs import RunDir
    from qeframe.learn.train import Trainer

    main_rank = ctx is None or ctx.is_main
    if run is None:  # created only now, so that a failed or interrupted dataset build leaves no empty run
        run = RunDir.create(runs_dir, experiment, spec_hash) if main_rank else None
        if ctx is not None:  # the other ranks use rank 0's folder
            run = RunDir(Path(ctx.broadcast_object(str(run.path) if run is not None else None)))

    trainer = Trainer(
        spec.model,
        spec.training,
        n_qubits,
        registry=reg,
        device=torch_device,
        spec_hash=spec_hash,
        key=key,
        distributed=ctx,
    )
    if main_rank:
        _write_run_records(
            run, experiment, spec, spec_hash, registry_file, registry_path, names, reg, trainer, ctx
        )
    if spec.router is not None:  # ensemble of per-domain models: qeframe.learn.ensemble trains, evaluates, writes
        from qeframe.learn.ensemble import run_ensemble

        if chatty:
            err_console.print(f"{'resuming' if resume else 'run folder'} {run.path}", markup=False)
        with _RichTrainProgress(enabled=chatty) as progress:

            def log(message: str) -> None:
                progress.progress.console.print(message, markup=False, highlight=False)

            outcome = run_ensemble(
                experiment,
                spec,
                datasets,
                run,
                registry=reg,
                device=torch_device,
                amp_dtype=trainer.amp_dtype,
                spec_hash=spec_hash,
                resume=resume,
                progress=progress,
                log=log if chatty else None,
            )
        if as_json:
            members = [m.summary() for m in outcome.result.members]
            payload = {"run": str(run.path), "members": members, "results": outcome.results}
            print(json.dumps(payload, indent=2))
            return
        console.print(f"[bold]{outcome.heading}[/bold]")
        print_results(outcome.results, console)
        console.print(f"run folder: {run.path}", markup=False, highlight=False)
        return
    if resume:
        done = trainer.resume(run)
        if chatty:
            err_console.print(f"resuming {run.path} after epoch {done}", markup=False, highlight=False)
    elif chatty:
        err_console.print(f"run folder {run.path}", markup=False, highlight=False)
    if chatty and ctx is not None:
        err_console.print(
            f"data-parallel: {ctx.world_size} processes ({ctx.backend}), global batch "
            f"{spec.training.batch_size} split into parts of about {spec.training.batch_size // ctx.world_size}",
            markup=False,
            highlight=False,
        )

    with _RichTrainProgress(enabled=chatty) as progress:
        result = trainer.fit(
            datasets[spec.train], [datasets[n] for n in spec.validation], run=run, progress=progress
        )
    if ctx is not None:
        from qeframe.learn.distributed import barrier

        barrier(ctx)  # every collective of training has completed on every rank
    if not main_rank:  # rank 0 alone evaluates and writes the tables
        return
    prediction = fit_for_run(
        run, result.model, spec, datasets, device=torch_device, amp_dtype=trainer.amp_dtype
    )
    tests = [datasets[n] for n in spec.test]
    results = evaluate(
        tests,
        model=result.model,
        device=torch_device,
        amp_dtype=trainer.amp_dtype,
        evaluation=spec.evaluation,
        registry=reg,
        prediction=prediction,
    )
    atomic_write_json(run.results_json, results, sort_keys=False)
    heading = (
        f"Results of {experiment} — run {run.run_id} (epoch {result.best_epoch} selected by "
        f"{spec.training.select}; gated: {prediction.describe()})"
    )
    atomic_write_text(run.results_md, results_markdown(results, heading))
    write_plots(run.plots, run.read_metrics(), results, prediction.fit if prediction.calibrated else None)
    if as_json:
        print(
            json.dumps(
                {"run": str(run.path), "selected_epoch": result.best_epoch, "results": results}, indent=2
            )
        )
        return
    console.print(f"[bold]{heading}[/bold]")
    print_results(results, console)
    console.print(f"run folder: {run.path}", markup=False, highlight=False)


def _write_run_records(
    run: Any,
    experiment: str,
    spec: Any,
    spec_hash: str,
    registry_file: Any,
    registry: Path,
    names: list[str],
    reg: Any,
    trainer: Any,
    ctx: Any,
) -> None:
    """``spec.json`` and ``plugins.json`` of a run (rank 0)."""
    from qeframe.io import atomic_write_json

    atomic_write_json(
        run.spec_file,
        {
            "experiment": experiment,
            "spec": spec.model_dump(mode="json"),
            "spec_hash": spec_hash,
            "datasets": {
                n: {
                    "spec": registry_file.dataset(n).canonical(),
                    "spec_hash": registry_file.dataset(n).spec_hash(),
                    "identity_hash": registry_file.dataset(n).identity_hash(),
                }
                for n in names
            },
            "registry_file": str(registry),
        },
    )
    components = {
        "backbone": _component_info(reg, "backbone", spec.model.backbone),
        "symmetries": [_component_info(reg, "symmetry", s.name) for s in spec.training.symmetries],
    }
    record = _plugins_record(reg, trainer.device, trainer.precision, components)
    record["distributed"] = ctx.describe() if ctx is not None else None
    atomic_write_json(run.plugins_file, record)


# --------------------------------------------------------------------------------------------------
# classify


def _write_probabilities(out: Path, result: Any, payload: dict[str, Any]) -> None:
    """``--out``: the JSON payload, or a CSV with per cut P(entangled), the answer and its proof."""
    from qeframe.io import atomic_write_json, atomic_write_text

    if out.suffix.lower() == ".json":
        atomic_write_json(out, payload, sort_keys=False)
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        cuts = result.cuts
        writer.writerow(["index", *cuts, *(f"answer {c}" for c in cuts), *(f"proof {c}" for c in cuts)])
        for i, row in enumerate(result.probabilities):
            writer.writerow(
                [
                    i,
                    *(f"{p:.6f}" for p in row),
                    *result.answers[i],
                    *(proof or "" for proof in result.proof[i]),
                ]
            )
        atomic_write_text(out, buf.getvalue())


@app.command("classify")
def classify_command(
    file: Annotated[Path, typer.Argument(help=".npy (N, 2**n, 2**n) or .npz with key 'rho'.")],
    run: Annotated[Path, typer.Option("--run", help="Run folder whose selected model classifies.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the probabilities to a .json or .csv file.")
    ] = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Per-cut answers (entangled / separable / unknown) and P(entangled) of density matrices.

    NPT cuts are entangled with proof `npt` (the PPT gate); the run's model decides the PPT cuts,
    calibrated and with the abstention thresholds of the run's prediction.json (a run without one
    answers with the raw model probability, marked uncalibrated).
    """
    from qeframe.detector import Detector
    from qeframe.io import load_density_matrices

    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise QeframeError(f"--out {out}: unsupported file type; expected .json or .csv")
    detector = Detector.from_run(run, device=device)  # a damaged prediction.json fails here
    rho = load_density_matrices(file, n_qubits=detector.n_qubits)
    result = detector.predict(rho)  # the notebook API's code: same numbers
    answer = result.to_dict()
    payload = {"run": answer["run"], "epoch": answer["epoch"], "file": str(file), **answer}
    if out is not None:
        _write_probabilities(out, result, payload)
    if as_json:
        print(json.dumps(payload, indent=2, allow_nan=False, default=str))
        return
    from rich.table import Table

    table = Table(
        title=f"Answer and P(entangled) per cut — {detector.run.name}, epoch {detector.epoch}",
        caption="E entangled, S separable, ? unknown; 'npt': proved by the negative partial transpose; 'realignment', 'witness': proved by those stages",
    )
    table.add_column("index", justify="right")
    for cut in result.cuts:
        table.add_column(cut, justify="right")
    for i, cells in enumerate(result.rows(_CLASSIFY_PRINT_ROWS)):
        table.add_row(str(i), *cells)
    console.print(table)
    console.print(
        result.prediction if result.calibrated else f"note: {payload['note']}", markup=False, highlight=False
    )
    if len(result) > _CLASSIFY_PRINT_ROWS:
        console.print(
            f"… {len(result) - _CLASSIFY_PRINT_ROWS} more rows (use --out or --json)", highlight=False
        )
    if out is not None:
        console.print(f"wrote {out}", markup=False, highlight=False)
    sys.stdout.flush()
