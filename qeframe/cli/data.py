"""``qeframe data build|merge|info|export|verify|migrate|list``: build and inspect stores ``data/<name>/``.

``build``, ``merge`` and ``list`` read the registry file (``--registry``, default ``./registry.toml``);
``info``, ``export``, ``verify`` and ``migrate`` read only the store. Every store is checked against
the hashes of its manifest before it is used (:mod:`qeframe.data.verify`); ``verify`` does it on
demand. Every command takes ``--data-dir`` (default ``data``); tables also come as ``--json``. Sharded builds (:mod:`qeframe.data.shards`): ``build NAME --shard i/N``
builds one shard store ``data/<name>.shard-i-of-N/``, ``merge NAME`` merges the ``N`` shards into
``data/<name>/``, ``build NAME --shards N [--executor E]`` does both through an executor plugin.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from qeframe.cli.base import DEFAULT_REGISTRY, JsonOption, RegistryOption, console, data_app, print_table
from qeframe.errors import QeframeError

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
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Build only shard INDEX/COUNT (0 <= INDEX < COUNT) into data/<name>.shard-INDEX-of-COUNT/; "
            "merge the shards with `qeframe data merge`.",
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option("--shards", help="Build COUNT shards through --executor, then merge them."),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="Executor plugin that runs the --shards builds (default: local)."),
    ] = None,
    executor_params: Annotated[
        list[str] | None,
        typer.Option("--executor-param", help="KEY=VALUE parameter of the executor (repeatable)."),
    ] = None,
    clean: Annotated[
        bool, typer.Option("--clean", help="With --shards: remove the shard stores after the merge.")
    ] = False,
    registry: RegistryOption = DEFAULT_REGISTRY,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Build dataset stores; an interrupted build resumes, an up-to-date store is kept (unless --force)."""
    from qeframe.config.specs import load_registry_file, validate_dataset_plugins
    from qeframe.data.format import read_manifest
    from qeframe.data.merge import build_sharded
    from qeframe.data.reader import store_status
    from qeframe.data.shards import build_shard, parse_shard, shard_dir_name
    from qeframe.data.store import build_dataset
    from qeframe.plugin.registry import get_registry

    if shard is not None and (shards is not None or executor is not None):
        raise QeframeError(
            "--shard builds one shard here; --shards/--executor build them all: give one or the other"
        )
    one_shard = parse_shard(shard) if shard is not None else None
    if executor is not None and shards is None:
        raise QeframeError("--executor runs the shards of a build: give --shards N as well")
    if shards is not None and shards < 1:
        raise QeframeError(f"--shards must be at least 1, got {shards}")
    if (executor_params or clean) and shards is None:
        raise QeframeError("--executor-param and --clean go with --shards N")
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
    runner = (
        reg.create("executor", executor or "local", _key_values(executor_params or [], "--executor-param"))
        if shards is not None
        else None
    )
    rows: list[list[Any]] = []
    for name, spec in specs.items():
        if one_shard is not None:
            index, count = one_shard
            path = data_dir / shard_dir_name(name, index, count)
            previous = read_manifest(path)
            t0 = time.perf_counter()
            m = build_shard(
                name,
                spec,
                index,
                count,
                data_dir=data_dir,
                registry=reg,
                workers=workers,
                shard_size=shard_size,
                progress=progress and not as_json,
                force=force,
            )
            seconds = time.perf_counter() - t0
            fresh = m != previous
            rate = round(m["n_rows"] / max(m["build"]["seconds"], 1e-9)) if fresh else None
            rows.append(
                [
                    f"{name} [shard {index}/{count}]",
                    m["n_rows"],
                    "built" if fresh else "up to date",
                    round(seconds, 2),
                    rate,
                    m["content_hash"][:16],
                ]
            )
            continue
        before = store_status(name, spec, data_dir=data_dir)
        if runner is not None:
            assert shards is not None
            t0 = time.perf_counter()
            ds = build_sharded(
                name,
                spec,
                shards,
                runner,  # type: ignore[arg-type]
                data_dir=data_dir,
                registry=reg,
                workers=workers or 1,
                shard_size=shard_size,
                progress=progress and not as_json,
                force=force,
                clean=clean,
            )
            seconds = time.perf_counter() - t0
            fresh = force or before != "built"
            rows.append(
                [
                    name,
                    len(ds),
                    f"built ({shards} shards, {runner.name})" if fresh else "up to date",
                    round(seconds, 2),
                    round(len(ds) / max(seconds, 1e-9)) if fresh else None,
                    ds.content_hash[:16],
                ]
            )
            continue
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
        elif before == "stale" and not force and "migrated" in ds.manifest:
            status, rate = "migrated", None
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


def _key_values(items: list[str], option: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: v}``; each value parsed as JSON when it is JSON, else kept as text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise QeframeError(f"{option} {item!r}: use KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@data_app.command("merge")
def merge_command(
    name: Annotated[str, typer.Argument(help="Dataset whose shards to merge (as named in the registry).")],
    sources: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            help="A shard folder, or a folder holding <name>.shard-i-of-N folders (repeatable; "
            "default: --data-dir).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Processes for extra blocks no shard holds (default: all cores)."
        ),
    ] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help="States per shard file.")] = 16384,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Recompute every shard's array hashes first.")
    ] = True,
    clean: Annotated[bool, typer.Option("--clean", help="Remove the shard stores after the merge.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    registry: RegistryOption = DEFAULT_REGISTRY,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Merge the shards built with `data build NAME --shard i/N` into data/<name>/ (as one build makes it)."""
    import shutil

    from qeframe.config.specs import load_registry_file
    from qeframe.data.merge import merge_shards
    from qeframe.plugin.registry import get_registry

    spec = load_registry_file(registry).dataset(name)
    t0 = time.perf_counter()
    ds = merge_shards(
        name,
        spec,
        data_dir=data_dir,
        sources=sources or None,
        registry=get_registry(),
        workers=workers,
        shard_size=shard_size,
        progress=progress and not as_json,
        verify=verify,
    )
    seconds = time.perf_counter() - t0
    merged = ds.manifest["build"]["merged_from"]
    if clean:
        for s in merged:
            shutil.rmtree(s["path"], ignore_errors=True)
    print_table(
        f"merged dataset store ({data_dir})",
        ["dataset", "states", "shards", "blocks computed", "seconds", "content hash"],
        [
            [
                name,
                len(ds),
                len(merged),
                ds.manifest["build"]["merge_generated_blocks"],
                round(seconds, 2),
                ds.content_hash[:16],
            ]
        ],
        as_json,
    )


@data_app.command("info")
def info_command(
    name: Annotated[str, typer.Argument(help="Dataset name (a folder of --data-dir).")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Per-family counts, per-cut label balance and provenance counts of a built store (its manifest)."""
    from qeframe.data.reader import open_dataset

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
    from qeframe.data.export import export_npz
    from qeframe.data.reader import open_dataset

    ds = open_dataset(name, data_dir=data_dir)
    export_npz(ds, out)
    console.print(f"wrote {len(ds)} states of {name!r} to {out}", highlight=False)


def _store_names(names: list[str] | None, data_dir: Path) -> list[str]:
    """``names``, or every dataset store folder of ``data_dir`` (shard stores left out)."""
    from qeframe.data.format import SHARD_KIND, read_manifest

    if names:
        return list(dict.fromkeys(names))
    found = sorted(
        p.name
        for p in (data_dir.iterdir() if data_dir.is_dir() else [])
        if p.is_dir() and (m := read_manifest(p)) is not None and m.get("kind") != SHARD_KIND
    )
    if not found:
        raise QeframeError(f"no dataset stores in {data_dir}; build one with `qeframe data build NAME`")
    return found


@data_app.command("verify")
def verify_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Datasets to check (default: every store of --data-dir).")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Rehash every file of the stores and compare with their manifests; exit 2 naming the first
    corrupt file (with the expected and actual sha256) when one differs."""
    from qeframe.data.reader import open_dataset
    from qeframe.data.verify import check_store
    from qeframe.errors import StoreError

    rows: list[list[Any]] = []
    failures: list[str] = []
    for name in _store_names(names, data_dir):
        t0 = time.perf_counter()
        try:
            ds = open_dataset(name, data_dir=data_dir, verify=False)
        except StoreError as exc:
            rows.append([name, None, None, None, None, f"unreadable: {exc}"])
            failures.append(str(exc))
            continue
        damage = check_store(ds.path, ds.manifest, use_cache=False)
        seconds = time.perf_counter() - t0
        size = sum((p / f"{a}.npy").stat().st_size for p in ds.shard_paths for a in ds.manifest["arrays"])
        if damage:
            status = f"corrupt: {', '.join(str(d.path) for d in damage)}"
            failures.append(
                damage[0].message(f"dataset {name!r}", f"rebuild it with `qeframe data build {name} --force`")
            )
        else:
            status = "ok"
        rows.append(
            [
                name,
                len(ds),
                round(size / 2**20, 1),
                round(seconds, 2),
                round(size / 2**20 / max(seconds, 1e-9)),
                status,
            ]
        )
    print_table(
        f"dataset stores checked against their manifests ({data_dir})",
        ["dataset", "states", "MiB", "seconds", "MiB/s", "status"],
        rows,
        as_json,
    )
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise QeframeError(failures[0] + more)


@data_app.command("migrate")
def migrate_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Datasets to migrate (default: every store of --data-dir).")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Bring stores of an older store format up to this one without rebuilding, where their arrays
    are this format's (no family whose rows changed since): the arrays are checked against the old
    manifest and only the manifest is rewritten; any other store says to rebuild."""
    from qeframe.data.store import migrate

    rows: list[list[Any]] = []
    for name in _store_names(names, data_dir):
        t0 = time.perf_counter()
        status = migrate(name, data_dir=data_dir)
        rows.append([name, status, round(time.perf_counter() - t0, 2)])
    print_table(f"dataset stores ({data_dir})", ["dataset", "status", "seconds"], rows, as_json)


@data_app.command("list")
def list_command(
    registry: RegistryOption = DEFAULT_REGISTRY,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Datasets declared in the registry and the state of their stores (built, stale, partial, missing)."""
    from qeframe.config.specs import load_registry_file
    from qeframe.data.format import read_manifest
    from qeframe.data.reader import store_status
    from qeframe.data.shards import shard_status

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
            if m is not None and m.get("kind") == "shard":
                rows.append(
                    [
                        path.name,
                        m.get("spec", {}).get("split"),
                        m.get("n_qubits"),
                        m.get("n_rows"),
                        None,
                        None,
                        shard_status(path),
                    ]
                )
            elif m is not None:
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
