"""``qeframe certify FILE``: certified per-cut labels of user-supplied density matrices.

Reads ``.npy`` (an array ``(N, 2**n, 2**n)`` or one ``(2**n, 2**n)`` matrix) or ``.npz`` (key
``rho``), validates it with :func:`qeframe.quantum.validation.validate_density_matrices`, runs the
``certified`` labeler found through the registry, prints a table (or ``--json``) and optionally
writes ``--out labels.json`` / ``labels.npz``:

* JSON: ``{"file", "n_qubits", "n_states", "cuts", "samples": [{"index", "labels", "provenance",
  "evidence", "reasons"}], "summary"}`` (per-cut lists in cut order; evidence NaN -> null);
* NPZ: ``labels`` int8 ``(N, n_cuts)``, ``provenance`` uint8 codes, ``provenance_names`` str,
  ``evidence`` float64, ``reasons`` str, ``cuts`` str.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from qeframe.cli.base import JsonOption, app, console, err_console, print_table
from qeframe.errors import QeframeError

_VERDICT = {1: "entangled", 0: "separable", -1: "unknown"}


def _write(out: Path, record: dict[str, Any], cert: Any) -> None:
    suffix = out.suffix.lower()
    if suffix == ".json":
        out.write_text(json.dumps(record, indent=2) + "\n")
    elif suffix == ".npz":
        np.savez(
            out,
            labels=cert.labels,
            provenance=cert.provenance,
            provenance_names=cert.provenance_names().astype(str),
            evidence=cert.evidence,
            reasons=np.asarray(cert.reasons, dtype=str),
            cuts=np.asarray(cert.cuts, dtype=str),
        )
    else:  # checked before any work; kept for direct callers
        raise QeframeError(f"unsupported output type {out.suffix!r}; allowed: .json, .npz")


def _cell(label: int, provenance: str, evidence: float) -> str:
    value = "" if not np.isfinite(evidence) else f" {evidence:.4g}"
    return f"{_VERDICT[int(label)]} ({provenance}{value})"


@app.command("certify")
def certify_command(
    file: Annotated[Path, typer.Argument(help="A .npy array (N, 2**n, 2**n) or a .npz with key 'rho'.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the labels to this .json or .npz file.")
    ] = None,
    as_json: JsonOption = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes for the SDPs (default: all cores).")
    ] = None,
    sdp: Annotated[
        bool, typer.Option("--sdp/--no-sdp", help="Run the DPS-2 SDP on undecided PPT cuts.")
    ] = True,
    margin: Annotated[
        float, typer.Option("--margin", min=1e-9, max=0.5, help="DPS-2: entangled when p* < 1 - margin.")
    ] = 1e-3,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Rows of the terminal table (0: all); files get every row.")
    ] = 50,
) -> None:
    r"""Certified per-cut labels (1 entangled / 0 separable / -1 unknown) with provenance and evidence.

    Stages: NPT -> entangled; PPT with a rank criterion, a 2x2 / 2x3 support, a product or the
    separable ball -> separable; DPS-2 symmetric-extension SDP -> entangled (needs
    pip install 'qeframe\[certify]'); otherwise unknown, with the reason.
    """
    from qeframe.io import load_density_matrices
    from qeframe.plugin.registry import get_registry

    if out is not None and out.suffix.lower() not in (".json", ".npz"):
        raise QeframeError(f"unsupported output type {out.suffix!r} for --out; allowed: .json, .npz")
    rho = load_density_matrices(file)
    labeler = get_registry().create(
        "labeler", "certified", {"workers": workers, "sdp": sdp, "margin": margin, "progress": not as_json}
    )
    if not hasattr(labeler, "certify"):
        raise QeframeError(f"the installed 'certified' labeler ({type(labeler).__name__}) has no certify()")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cert = labeler.certify(rho)
    for w in caught:
        err_console.print(f"warning: {w.message}", markup=False, highlight=False, soft_wrap=True)

    n_qubits = int(rho.shape[-1]).bit_length() - 1
    record = {"file": str(file), "n_qubits": n_qubits, "n_states": int(rho.shape[0]), **cert.to_dict()}
    if out is not None:
        _write(out, record, cert)
    if as_json:
        print(json.dumps(record, indent=2))
        return

    names = cert.provenance_names()
    shown = range(rho.shape[0]) if limit == 0 else range(min(limit, rho.shape[0]))
    rows = [
        [i] + [_cell(cert.labels[i, j], names[i, j], cert.evidence[i, j]) for j in range(len(cert.cuts))]
        for i in shown
    ]
    print_table(f"certified labels: {file.name} ({n_qubits} qubits)", ["#", *cert.cuts], rows, False)
    if len(shown) < rho.shape[0]:
        console.print(f"({rho.shape[0] - len(shown)} more rows; use --limit 0, --json or --out)")
    provenances = sorted({p for counts in cert.summary().values() for p in counts})
    summary = cert.summary()
    print_table(
        "provenance counts per cut",
        ["cut", *provenances],
        [[cut] + [summary[cut].get(p, 0) for p in provenances] for cut in [*cert.cuts, "all"]],
        False,
    )
    unknown = np.flatnonzero((cert.labels == -1).any(axis=1))
    if unknown.size:
        i = int(unknown[0])
        j = int(np.flatnonzero(cert.labels[i] == -1)[0])
        console.print(
            f"{int((cert.labels == -1).sum())} cut(s) unknown; e.g. state {i} cut {cert.cuts[j]}: {cert.reasons[i, j]}",
            markup=False,
            highlight=False,
        )
    if out is not None:
        console.print(f"wrote {out}", markup=False, highlight=False)
