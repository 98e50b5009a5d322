"""The ``qeframe`` command line: the typer app, its shared options and helpers, and :func:`main`.

The commands live in the sibling modules ``run``, ``data``, ``certify`` and ``results``; importing the package
:mod:`qeframe.cli` (which any import of this module does first) registers them on :data:`app`.

Conventions: every command that reads the registry takes ``--registry PATH`` (default
``./registry.toml``); tables also come as ``--json``; a user error prints one line to stderr and
exits with status 2, without a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qeframe import __version__
from qeframe.errors import QeframeError

app = typer.Typer(
    name="qeframe",
    help="Learn to detect per-bipartition quantum entanglement, with plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build and inspect dataset stores (data/<name>/).", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

RegistryOption = Annotated[Path, typer.Option("--registry", help="Path of the registry file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
DEFAULT_REGISTRY = Path("registry.toml")

# typer ships its own copy of click; its ClickException is the base of typer.BadParameter.
_CLICK_EXCEPTION: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"qeframe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """qeframe: learn to detect per-bipartition quantum entanglement."""


def print_table(title: str, columns: list[str], rows: list[list[Any]], as_json: bool) -> None:
    """Print ``rows`` as a rich table, or as a JSON list of objects with ``--json``."""
    if as_json:
        print(json.dumps([dict(zip(columns, row)) for row in rows], indent=2, default=str))
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:  # cells are data, not rich markup: "qeframe[ray]" must print as is
        table.add_row(*("" if v is None else escape(str(v)) for v in row))
    console.print(table)


@app.command("plugins")
def plugins_command(as_json: JsonOption = False) -> None:
    """List installed plugins: kind, name, providing distribution and version, description."""
    from qeframe.plugin.registry import get_registry

    reg = get_registry()
    rows: list[list[Any]] = [
        [c.kind, c.name, c.distribution, c.version, c.description] for c in reg.components()
    ]
    broken = [[b.plugin, b.distribution, b.version, b.error] for b in reg.broken]
    if as_json:
        print(
            json.dumps(
                {
                    "plugins": [
                        dict(zip(["kind", "name", "distribution", "version", "description"], r)) for r in rows
                    ],
                    "broken": [dict(zip(["plugin", "distribution", "version", "error"], b)) for b in broken],
                },
                indent=2,
            )
        )
        return
    print_table("qeframe plugins", ["kind", "name", "distribution", "version", "description"], rows, False)
    if broken:
        print_table("broken plugins", ["plugin", "distribution", "version", "error"], broken, False)


@app.command("reference")
def reference_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown here instead of printing it.")
    ] = None,
) -> None:
    """Print the registry.toml reference generated from the pydantic models of the built-in plugins."""
    from qeframe.config.reference import registry_reference
    from qeframe.plugin.registry import get_registry

    text = registry_reference(get_registry())
    if out is None:
        print(text, end="")
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}", markup=False, highlight=False)


#: OpenMP's wait policy that :func:`main` sets unless the user set one (see :func:`openmp_defaults`).
OMP_WAIT_POLICY_DEFAULT = "PASSIVE"


def openmp_defaults(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` unless it is set already.

    Must run before torch (and with it OpenMP) is loaded: OpenMP reads the variable once, when the
    library is initialised. With the default (active) policy, a thread that reaches the end of a
    parallel region spins instead of sleeping; on a machine whose cores are busy with other
    processes, the spinning threads and the preempted ones wait for each other, and a training
    step of the quickstart's CNN with torch's 2 threads ran 4-10x slower in wall time and burnt
    4-10x more CPU-seconds per sample than with ``PASSIVE`` (docs/training-speed.md, "Threads under
    load"). Child processes (dataset-build workers, ``--jobs``) inherit the variable.
    """
    environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY_DEFAULT)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``qeframe`` script: user errors become one line and exit status 2.

    Sets OpenMP's wait policy first (:func:`openmp_defaults`); torch is imported later, by the commands.
    """
    openmp_defaults()
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # e.g. typer turns Ctrl-C into exit code 130 without raising
            if code == 130:
                err_console.print("interrupted", markup=False)
            sys.exit(code)
    except QeframeError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
    except SystemExit:
        raise
    except (typer.Exit, typer.Abort) as exc:
        sys.exit(getattr(exc, "exit_code", 1))
    except _CLICK_EXCEPTION as exc:  # usage errors: click prints its own message
        exc.show()
        sys.exit(exc.exit_code)
