"""One experiment end to end: :func:`run_experiment` (what ``qeframe run EXPERIMENT`` calls).

Reads the experiment from the registry file, checks every plugin name and parameter it uses
(:func:`check_experiment`), builds missing datasets (:func:`qeframe.data.store.ensure_dataset`),
trains (:class:`qeframe.learn.train.Trainer`, or :func:`qeframe.experiment.ensemble.run_ensemble`
for an experiment with a router), fits the prediction layer (:func:`qeframe.learn.prediction.fit_for_run`),
evaluates on the test datasets (:func:`qeframe.evaluation.evaluate.evaluate`) and writes the run
folder (:class:`qeframe.learn.runs.RunDir`): ``spec.json``, ``plugins.json``, ``metrics.jsonl``,
``checkpoints/``, ``results.json``, ``results.md``, ``plots/``. ``resume=RUN_DIR`` continues a
killed run from its last complete checkpoint.

Data-parallel (:mod:`qeframe.learn.distributed`): under ``torchrun --nproc_per_node=K`` with
``distributed=True`` (automatic when torchrun starts more than one process), rank 0 builds missing
datasets while the other ranks wait for the stores to be complete; then every rank joins the
process group, loads the training and validation sets and trains its part of every global batch.
Rank 0 alone writes the run folder, evaluates and returns the result; the other ranks return
``None`` after training.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qeframe.errors import QeframeError, SpecError

if TYPE_CHECKING:
    import torch

    from qeframe.config.specs import ExperimentSpec, RegistryFile
    from qeframe.learn.distributed import DistContext
    from qeframe.learn.runs import RunDir
    from qeframe.plugin.registry import Registry


@dataclass(frozen=True)
class RunOptions:
    """Where an experiment reads and writes, and the command-line overrides of its spec.

    Attributes:
        registry: the registry file (``--registry``).
        data_dir: folder of the dataset stores (``--data-dir``).
        runs_dir: folder of the run folders (``--runs-dir``).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda`` (``--device``).
        epochs: overrides ``training.epochs`` when set (``--epochs``).
        compile: sets ``training.compile`` (``--compile``).
        progress: progress bars and one line per epoch on stderr (``--progress``).
    """

    registry: Path = Path("registry.toml")
    data_dir: Path = Path("data")
    runs_dir: Path = Path("runs")
    device: str = "auto"
    epochs: int | None = None
    compile: bool = False
    progress: bool = False


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns (on rank 0).

    Attributes:
        experiment: the experiment's name.
        run: the run folder.
        results: the ``results.json`` document (per test set and convention; see ``docs/concepts.md``).
        heading: the one-line title of ``results.md``.
        selected_epoch: the epoch whose weights the run keeps (``None`` for an ensemble).
        members: per-member summaries of an ensemble experiment (``None`` for a single model).
    """

    experiment: str
    run: Path
    results: dict[str, Any]
    heading: str
    selected_epoch: int | None = None
    members: list[dict[str, Any]] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        """The document ``qeframe run EXPERIMENT --json`` prints."""
        if self.members is not None:
            return {"run": str(self.run), "members": self.members, "results": self.results}
        return {"run": str(self.run), "selected_epoch": self.selected_epoch, "results": self.results}


@dataclass(frozen=True)
class _Prepared:
    """An experiment checked and its datasets loaded: what training and evaluation need."""

    experiment: str
    spec: ExperimentSpec
    registry_file: RegistryFile
    registry: Registry
    names: list[str]
    datasets: dict[str, Any]
    n_qubits: int
    device: torch.device
    spec_hash: str
    ctx: DistContext | None  # data-parallel context; None in one process

    @property
    def key(self) -> str:
        return f"experiments.{self.experiment}"

    @property
    def main_rank(self) -> bool:
        return self.ctx is None or self.ctx.is_main


def check_experiment(
    experiment: str,
    registry_file: RegistryFile,
    registry: Registry,
    epochs: int | None = None,
    compile: bool = False,
) -> tuple[ExperimentSpec, list[str], int]:
    """Check every plugin name and parameter an experiment uses, before anything is built.

    Returns ``(spec, dataset names it reads, n_qubits)``; ``epochs`` overrides ``training.epochs``,
    ``compile`` sets ``training.compile``. Errors (:class:`~qeframe.errors.SpecError`) name the
    ``registry.toml`` key.
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
    validate_experiment_plugins(experiment, spec, registry)
    validate_baselines(spec.evaluation, registry, key=f"{key}.evaluation.baselines")
    names = list(
        dict.fromkeys([spec.train, *spec.validation, *spec.test, *(spec.prediction.calibrate_on or [])])
    )
    if spec.router is not None:  # ensemble experiment: check the router now; it may need `fit_on`
        from qeframe.learn.ensemble import validate_router

        names += [n for n in validate_router(experiment, spec, registry_file, registry) if n not in names]
    for name in names:
        validate_dataset_plugins(name, registry_file.dataset(name), registry)
    sizes = {name: registry_file.dataset(name).n_qubits for name in names}
    if len(set(sizes.values())) != 1:
        raise SpecError(f"{key}: datasets have different numbers of qubits: {sizes}")
    return spec, names, sizes[spec.train]


def resumed_experiment(resume: str | Path) -> str:
    """The experiment a run folder belongs to (its ``spec.json``), for ``qeframe run --resume RUN_DIR``."""
    from qeframe.learn.runs import RunDir

    run = RunDir.open(resume, create=False)
    if not run.spec_file.is_file():
        raise QeframeError(
            f"--resume {resume}: the run has no spec.json to tell its experiment; "
            "name it: qeframe run EXPERIMENT --resume RUN_DIR"
        )
    experiment = run.read_spec().get("experiment")
    if not isinstance(experiment, str) or not experiment:
        raise QeframeError(f"--resume {resume}: spec.json names no experiment")
    return experiment


def run_experiment(
    name: str | None = None,
    *,
    registry: str | Path = Path("registry.toml"),
    data_dir: str | Path = Path("data"),
    runs_dir: str | Path = Path("runs"),
    device: str = "auto",
    epochs: int | None = None,
    compile: bool = False,
    resume: str | Path | None = None,
    distributed: bool = False,
    progress: bool = False,
) -> ExperimentResult | None:
    """Train and evaluate experiment ``name`` of the registry file; write its run folder.

    Args:
        name: an experiment of ``registry``; may be left out with ``resume`` (the run folder's
            ``spec.json`` names its experiment).
        registry, data_dir, runs_dir, device, epochs, compile, progress: see :class:`RunOptions`.
        resume: a run folder of this experiment to continue from its last complete checkpoint.
        distributed: train data-parallel over the processes torchrun started (automatic when
            ``WORLD_SIZE > 1``).

    Returns:
        the :class:`ExperimentResult` (``None`` on data-parallel ranks other than 0).

    Raises:
        QeframeError: a user error (unknown experiment, bad parameter, a run of another experiment,
            ...), with a one-line message.
    """
    options = RunOptions(
        registry=Path(registry),
        data_dir=Path(data_dir),
        runs_dir=Path(runs_dir),
        device=device,
        epochs=epochs,
        compile=compile,
        progress=progress,
    )
    if name is None:
        if resume is None:
            raise QeframeError("name an experiment (or give --resume RUN_DIR)")
        name = resumed_experiment(resume)
    return _run(name, options, resume=None if resume is None else Path(resume), distributed=distributed)


def _run(
    experiment: str, options: RunOptions, *, resume: Path | None, distributed: bool
) -> ExperimentResult | None:
    """:func:`run_experiment` once the experiment is named: check, build or load, train, evaluate."""
    from qeframe.config.specs import load_registry_file
    from qeframe.data.store import ensure_dataset
    from qeframe.learn.arrays import DatasetArrays, resolve_device
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
    from qeframe.plugin.registry import get_registry

    registry_file = load_registry_file(options.registry)
    reg = get_registry()
    key = f"experiments.{experiment}"
    spec, names, n_qubits = check_experiment(experiment, registry_file, reg, options.epochs, options.compile)
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
    options = replace(options, progress=main_rank and options.progress)
    torch_device = (
        distributed_device(options.device, env[2]) if env is not None else resolve_device(options.device)
    )
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
        _wait_for_datasets(names, registry_file, options.data_dir)
        names = list(dict.fromkeys([spec.train, *spec.validation]))
    datasets = {}
    for name in names:
        ds = ensure_dataset(
            name, registry_file, data_dir=options.data_dir, registry=reg, progress=options.progress
        )
        datasets[name] = DatasetArrays.from_dataset(ds)

    ctx = SINGLE
    if parallel:
        ctx, torch_device = init_distributed(options.device)
    prepared = _Prepared(
        experiment=experiment,
        spec=spec,
        registry_file=registry_file,
        registry=reg,
        names=names,
        datasets=datasets,
        n_qubits=n_qubits,
        device=torch_device,
        spec_hash=spec_hash,
        ctx=ctx if parallel else None,
    )
    try:
        return _train_and_evaluate(prepared, options, run, resume=resume is not None)
    finally:
        shutdown(ctx)


def _wait_for_datasets(
    names: list[str], registry_file: RegistryFile, data_dir: Path, poll_s: float = 1.0
) -> None:
    """Block until the stores of ``names`` are complete and of the current spec (a data-parallel
    rank other than 0 waiting for rank 0's build). No timeout: torchrun stops the other ranks when
    rank 0 fails."""
    from qeframe.data.store import store_status

    while True:
        pending = [
            n for n in names if store_status(n, registry_file.dataset(n), data_dir=data_dir) != "built"
        ]
        if not pending:
            return
        time.sleep(poll_s)


def _train_and_evaluate(
    job: _Prepared, options: RunOptions, run: RunDir | None, *, resume: bool
) -> ExperimentResult | None:
    """The part of a run after the datasets are loaded: train, evaluate, write.

    Only rank 0 of a data-parallel run (``job.ctx``) writes the run folder, evaluates and returns.
    """
    from qeframe.evaluation.evaluate import evaluate
    from qeframe.evaluation.plots import write_plots
    from qeframe.evaluation.tables import results_markdown
    from qeframe.io import atomic_write_json, atomic_write_text
    from qeframe.learn.prediction import fit_for_run
    from qeframe.learn.runs import RunDir
    from qeframe.learn.train import Trainer
    from qeframe.plugin.progress import TrainingProgress

    spec, ctx, chatty = job.spec, job.ctx, options.progress
    if run is None:  # created only now, so that a failed or interrupted dataset build leaves no empty run
        run = RunDir.create(options.runs_dir, job.experiment, job.spec_hash) if job.main_rank else None
        if ctx is not None:  # the other ranks use rank 0's folder
            run = RunDir(Path(ctx.broadcast_object(str(run.path) if run is not None else None)))
    assert run is not None

    trainer = Trainer(
        spec.model,
        spec.training,
        job.n_qubits,
        registry=job.registry,
        device=job.device,
        spec_hash=job.spec_hash,
        key=job.key,
        distributed=ctx,
    )
    if job.main_rank:
        _write_run_records(run, job, options.registry, trainer)
    if spec.router is not None:  # ensemble of per-domain models
        from qeframe.experiment.ensemble import run_ensemble

        progress = TrainingProgress(enabled=chatty)
        if chatty:
            progress.log(f"{'resuming' if resume else 'run folder'} {run.path}")
        with progress:
            outcome = run_ensemble(
                job.experiment,
                spec,
                job.datasets,
                run,
                registry=job.registry,
                device=job.device,
                amp_dtype=trainer.amp_dtype,
                spec_hash=job.spec_hash,
                resume=resume,
                progress=progress,
                log=progress.log if chatty else None,
            )
        members = [m.summary() for m in outcome.result.members]
        return ExperimentResult(job.experiment, run.path, outcome.results, outcome.heading, members=members)

    progress = TrainingProgress(enabled=chatty)
    if resume:
        done = trainer.resume(run)
        if chatty:
            progress.log(f"resuming {run.path} after epoch {done}")
    elif chatty:
        progress.log(f"run folder {run.path}")
    if chatty and ctx is not None:
        progress.log(
            f"data-parallel: {ctx.world_size} processes ({ctx.backend}), global batch "
            f"{spec.training.batch_size} split into parts of about {spec.training.batch_size // ctx.world_size}"
        )
    with progress:
        result = trainer.fit(
            job.datasets[spec.train], [job.datasets[n] for n in spec.validation], run=run, progress=progress
        )
    if ctx is not None:
        from qeframe.learn.distributed import barrier

        barrier(ctx)  # every collective of training has completed on every rank
    if not job.main_rank:  # rank 0 alone evaluates and writes the tables
        return None
    prediction = fit_for_run(
        run, result.model, spec, job.datasets, device=job.device, amp_dtype=trainer.amp_dtype
    )
    results = evaluate(
        [job.datasets[n] for n in spec.test],
        model=result.model,
        device=job.device,
        amp_dtype=trainer.amp_dtype,
        evaluation=spec.evaluation,
        registry=job.registry,
        prediction=prediction,
    )
    atomic_write_json(run.results_json, results, sort_keys=False)
    heading = (
        f"Results of {job.experiment} — run {run.run_id} (epoch {result.best_epoch} selected by "
        f"{spec.training.select}; gated: {prediction.describe()})"
    )
    atomic_write_text(run.results_md, results_markdown(results, heading))
    write_plots(run.plots, run.read_metrics(), results, prediction.fit if prediction.calibrated else None)
    return ExperimentResult(job.experiment, run.path, results, heading, selected_epoch=result.best_epoch)


def _component_info(registry: Registry, kind: str, name: str) -> dict[str, str]:
    info = registry.info(kind, name)
    return {"name": name, "plugin": info.plugin, "distribution": info.distribution, "version": info.version}


def _write_run_records(run: RunDir, job: _Prepared, registry_path: Path, trainer: Any) -> None:
    """``spec.json`` and ``plugins.json`` of a run (rank 0)."""
    import numpy as np
    import torch

    from qeframe import __version__
    from qeframe.io import atomic_write_json

    registry_file, spec, reg = job.registry_file, job.spec, job.registry
    atomic_write_json(
        run.spec_file,
        {
            "experiment": job.experiment,
            "spec": spec.model_dump(mode="json"),
            "spec_hash": job.spec_hash,
            "datasets": {
                n: {
                    "spec": registry_file.dataset(n).canonical(),
                    "spec_hash": registry_file.dataset(n).spec_hash(),
                    "identity_hash": registry_file.dataset(n).identity_hash(),
                }
                for n in job.names
            },
            "registry_file": str(registry_path),
        },
    )
    device = trainer.device
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    )
    record = {
        "plugins": reg.plugin_versions(),
        "components": {
            "backbone": _component_info(reg, "backbone", spec.model.backbone),
            "symmetries": [_component_info(reg, "symmetry", s.name) for s in spec.training.symmetries],
        },
        "qeframe": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": device_name,
        "precision": trainer.precision,
        "torch_threads": torch.get_num_threads(),
        "distributed": job.ctx.describe() if job.ctx is not None else None,
    }
    atomic_write_json(run.plugins_file, record)
