"""``qeframe run EXPERIMENT`` and ``qeframe classify FILE --run RUN_DIR``: argument parsing and printing.

``run`` calls :func:`qeframe.experiment.run_experiment` (one experiment: check, build the missing
datasets, train, evaluate, write the run folder; ``--resume RUN_DIR`` continues a killed run, whose
``spec.json`` names its experiment) or, with several experiments, :func:`qeframe.experiment.run_many`
(each in a process of its own, ``--jobs`` at a time, after their datasets are built once; a
comparison table closes it), and prints the tables or ``--json``. Data-parallel training:
``torchrun --nproc_per_node=K -m qeframe.cli run EXPERIMENT`` (or ``--distributed``), see
:mod:`qeframe.experiment.single`.

``classify``: applies a run's selected model to user matrices (``.npy`` ``(N, 2**n, 2**n)`` or
``.npz`` with key ``rho``), after validating them, and prints/writes per-cut probabilities; the
loading, validation and prediction are :class:`qeframe.detector.Detector`'s (the notebook API).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from qeframe.cli.base import DEFAULT_REGISTRY, JsonOption, RegistryOption, app, console
from qeframe.errors import QeframeError

DeviceOption = Annotated[
    str, typer.Option("--device", help="Where to compute: auto (CUDA when available), cpu or cuda.")
]
_CLASSIFY_PRINT_ROWS = 50


@app.command("run")
def run_command(
    experiments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Experiment name(s) in the registry file; several run side by side as separate processes "
            "(--jobs). May be left out with --resume RUN_DIR.",
            show_default=False,
        ),
    ] = None,
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
    (logs, summary.md, summary.json) close the command. With --resume RUN_DIR alone, the run
    folder's spec.json names the experiment.
    """
    from qeframe.evaluation.tables import print_results
    from qeframe.experiment import run_experiment, run_many
    from qeframe.learn.distributed import wants_distributed

    experiments = experiments or []
    chatty = not as_json if show_progress is None else show_progress  # stderr progress
    if len(experiments) > 1:
        if resume is not None:
            raise QeframeError("--resume continues one run: give one experiment")
        if wants_distributed(distributed):
            raise QeframeError("--distributed trains one experiment: give one experiment")
        many = run_many(
            experiments,
            jobs=jobs,
            registry=registry,
            data_dir=data_dir,
            runs_dir=runs_dir,
            device=device,
            epochs=epochs,
            compile=compile,
            progress=not as_json,
        )
        _print_many(many, as_json)
        return
    if not experiments and resume is None:
        raise QeframeError("name an experiment to run (or continue one with --resume RUN_DIR)")
    result = run_experiment(
        experiments[0] if experiments else None,
        registry=registry,
        data_dir=data_dir,
        runs_dir=runs_dir,
        device=device,
        epochs=epochs,
        compile=compile,
        resume=resume,
        distributed=distributed,
        progress=chatty,
    )
    if result is None:  # a data-parallel rank other than 0: rank 0 prints
        return
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    console.print(f"[bold]{result.heading}[/bold]")
    print_results(result.results, console)
    console.print(f"run folder: {result.run}", markup=False, highlight=False)


def _print_many(many: Any, as_json: bool) -> None:
    """Print :func:`~qeframe.experiment.run_many`'s outcome; a failed experiment makes it an error."""
    from qeframe.evaluation.tables import print_tables

    if as_json:
        print(json.dumps(many.to_json(), indent=2))
    else:
        print_tables(many.tables, console)
        console.print(f"summary: {many.log_dir / 'summary.md'}", markup=False, highlight=False)
    failed = [j for j in many.jobs if j.status != "done"]
    if failed:
        detail = "; ".join(f"{j.experiment} (log {j.log})" for j in failed)
        raise QeframeError(f"{len(failed)} of {len(many.jobs)} experiments failed: {detail}")


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
        caption="E entangled, S separable, ? unknown; 'npt': proved by the negative partial transpose; "
        "'witness', 'realignment', 'aligned_witness': proved entangled by those stages; 'pure', 'rank', "
        "'support', 'product', 'ball', 'spectrum': proved separable (prediction.separable_proofs)",
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
