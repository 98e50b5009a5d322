"""``qeframe results render|show RUN_DIR``: a run folder's tables, from its ``results.json``.

``render`` writes ``results.md`` again with the current layout (:mod:`qeframe.evaluation.tables`),
keeping the page's heading (the first line, which names the run, the selected epoch and the
prediction layer); ``--out FILE`` writes elsewhere, e.g. a page under ``docs/results/``. ``show``
prints the same tables in the terminal, as ``qeframe run`` does at the end of a run. Neither
evaluates anything: the numbers are those in ``results.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from qeframe.cli.base import app, console, err_console
from qeframe.errors import QeframeError

results_app = typer.Typer(
    help="The tables of a run folder, from its results.json (render results.md, print).",
    no_args_is_help=True,
)
app.add_typer(results_app, name="results")

RunArgument = Annotated[Path, typer.Argument(help="Run folder (holds results.json).", show_default=False)]


def read_run_results(run_dir: Path) -> tuple[dict[str, Any], str]:
    """``(results, heading)`` of a run folder: ``results.json`` checked for the layout the tables
    read, and the heading of its ``results.md`` (else ``Results of <experiment> — run <run-id>``)."""
    from qeframe.evaluation.tables import check_results

    path = run_dir / "results.json"
    if not path.is_file():
        raise QeframeError(f"{str(run_dir)!r} has no results.json (is it a run folder of a finished run?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QeframeError(f"{path}: not valid JSON ({exc})") from None
    try:
        check_results(results)
    except QeframeError as exc:
        raise QeframeError(f"{path}: {str(exc).removeprefix('results.json: ')}") from None
    page = run_dir / "results.md"
    first = page.read_text(encoding="utf-8").split("\n", 1)[0] if page.is_file() else ""
    if first.startswith("# "):
        return results, first[2:]
    experiment = run_dir.parent.name
    spec = run_dir / "spec.json"
    if spec.is_file():
        try:
            experiment = json.loads(spec.read_text(encoding="utf-8")).get("experiment", experiment)
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    return results, f"Results of {experiment} — run {run_dir.name}"


@results_app.command("render")
def render_command(
    run_dir: RunArgument,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the Markdown here instead of RUN_DIR/results.md."),
    ] = None,
) -> None:
    """Write RUN_DIR/results.md again from RUN_DIR/results.json, in the current table layout."""
    from qeframe.evaluation.tables import results_markdown
    from qeframe.io import atomic_write_text

    results, heading = read_run_results(run_dir)
    target = out if out is not None else run_dir / "results.md"
    atomic_write_text(target, results_markdown(results, heading))
    err_console.print(f"wrote {target}", markup=False, highlight=False, soft_wrap=True)


@results_app.command("show")
def show_command(
    run_dir: RunArgument,
    per_cut: Annotated[
        bool, typer.Option("--per-cut/--no-per-cut", help="Also print the per-cut tables.")
    ] = True,
) -> None:
    """Print the tables of RUN_DIR/results.json in the terminal."""
    from qeframe.evaluation.tables import print_results

    results, heading = read_run_results(run_dir)
    console.print(heading, style="bold", markup=False, highlight=False)
    print_results(results, console, per_cut=per_cut)
