"""``qeframe data build|info|export|list``: build and inspect dataset stores ``data/<name>/``.

``build`` and ``list`` read the registry file (``--registry``, default ``./registry.toml``); ``info``
and ``export`` read only the store. Every command takes ``--data-dir`` (default ``data``); tables
also come as ``--json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli import DEFAULT_REGISTRY, JsonOption, RegistryOption, console, data_app, print_table
from .errors import QeframeError

DataDirOption = Annotated[Path, typer.Option("--data-dir", help="Folder holding the dataset stores.")]
DEFAULT_DATA_DIR = Path("data")


@data_app.command("build")
def build_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Datasets to build (as named in the registry).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Build every dataset of the registry.")] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes (default: all cores).")
    ] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help="States per shard file.")] = 16384,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when an up-to-date store exists.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    registry: RegistryOption = DEFAULT_REGISTRY,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Build dataset stores; an interrupted build resumes, an up-to-date store is kept (unless --force)."""
    from .registry import get_registry
    from .specs import load_registry_file, validate_dataset_plugins
    from .store import build_dataset, store_status

    registry_file = load_registry_file(registry)
    if all_ and names:
        raise QeframeError("give dataset names or --all, not both")
    selected = sorted(registry_file.datasets) if all_ else list(dict.fromkeys(names or []))
    if not selected:
        raise QeframeError(
            "give dataset names or --all; defined: " + (", ".join(sorted(registry_file.datasets)) or "none")
        )
    reg = get_registry()
    specs = {name: registry_file.dataset(name) for name in selected}
    for name, spec in specs.items():  # validate everything before building anything
        validate_dataset_plugins(name, spec, reg)
    rows: list[list[Any]] = []
    for name, spec in specs.items():
        before = store_status(name, spec, data_dir=data_dir)
        t0 = time.perf_counter()
        ds = build_dataset(
            name,
            spec,
            data_dir=data_dir,
            registry=reg,
            workers=workers,
            shard_size=shard_size,
            progress=progress and not as_json,
            force=force,
        )
        seconds = time.perf_counter() - t0
        if before == "built" and not force:
            status, rate = "up to date", None
        else:
            status = "resumed" if before == "partial" else "built"
            rate = round(ds.manifest["build"]["states_per_second"])
        rows.append([name, len(ds), status, round(seconds, 2), rate, ds.content_hash[:16]])
    print_table(
        f"dataset stores ({data_dir})",
        ["dataset", "states", "status", "seconds", "states/s", "content hash"],
        rows,
        as_json,
    )


@data_app.command("info")
def info_command(
    name: Annotated[str, typer.Argument(help="Dataset name (a folder of --data-dir).")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Per-family counts, per-cut label balance and provenance counts of a built store (its manifest)."""
    from .store import open_dataset

    m = open_dataset(name, data_dir=data_dir).manifest
    if as_json:
        print(json.dumps({k: v for k, v in m.items() if k != "shards"}, indent=2))
        return
    cuts = m["cuts"]
    console.print(
        f"[bold]{name}[/bold]  {m['n_samples']} states, {m['n_qubits']} qubits, split {m['split']}, "
        f"labeler {m['labeler']['name']}, seed {m['seed']}\n"
        f"spec {m['spec_hash'][:16]}  content {m['content_hash'][:16]}  "
        f"built {m['build']['finished']} with qeframe {m['qeframe_version']}",
        highlight=False,
    )

    def entangled(balance: dict[str, dict[str, int]]) -> list[str]:
        return [f"{balance[cut]['entangled'] / max(1, sum(balance[cut].values())):.1%}" for cut in cuts]

    print_table(
        "families (share labelled entangled per cut)",
        ["#", "label", "family", "count", "generated", *cuts],
        [
            [f["index"], f["label"], f["family"], f["count"], f["generated"], *entangled(f["label_balance"])]
            for f in m["families"]
        ],
        False,
    )
    print_table(
        "label balance per cut",
        ["cut", "entangled", "separable", "unknown", "truth entangled", "truth separable", "truth unknown"],
        [[cut, *m["label_balance"][cut].values(), *m["ground_truth_balance"][cut].values()] for cut in cuts],
        False,
    )
    names = sorted({p for cut in cuts for p in m["provenance_counts"][cut]})
    print_table(
        "label provenance per cut",
        ["cut", *names],
        [[cut, *(m["provenance_counts"][cut].get(p, 0) for p in names)] for cut in cuts],
        False,
    )


@data_app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="Dataset name (a folder of --data-dir).")],
    out: Annotated[Path, typer.Option("--out", help="The .npz file to write.")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Export a built store to one .npz: rho, labels, family, cuts, provenance names, ground truth."""
    from .store import export_npz, open_dataset

    ds = open_dataset(name, data_dir=data_dir)
    export_npz(ds, out)
    console.print(f"wrote {len(ds)} states of {name!r} to {out}", highlight=False)


@data_app.command("list")
def list_command(
    registry: RegistryOption = DEFAULT_REGISTRY,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Datasets declared in the registry and the state of their stores (built, stale, partial, missing)."""
    from .specs import load_registry_file
    from .store import read_manifest, store_status

    registry_file = load_registry_file(registry)
    rows: list[list[Any]] = []
    for name, spec in sorted(registry_file.datasets.items()):
        rows.append(
            [
                name,
                spec.split,
                spec.n_qubits,
                sum(e.count for e in spec.families),
                len(spec.families),
                spec.labeler.name,
                store_status(name, spec, data_dir=data_dir),
            ]
        )
    if data_dir.is_dir():  # stores on disk that the registry no longer declares
        for path in sorted(
            p for p in data_dir.iterdir() if p.is_dir() and p.name not in registry_file.datasets
        ):
            m = read_manifest(path)
            if m is not None:
                status = (
                    "built (not in registry)" if m.get("complete") is True else "partial (not in registry)"
                )
                rows.append(
                    [
                        path.name,
                        m.get("split"),
                        m.get("n_qubits"),
                        m.get("n_samples"),
                        len(m.get("families", [])),
                        m.get("labeler", {}).get("name"),
                        status,
                    ]
                )
    print_table(
        f"datasets ({registry})",
        ["dataset", "split", "qubits", "states", "families", "labeler", "store"],
        rows,
        as_json,
    )
