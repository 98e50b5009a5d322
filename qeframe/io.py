"""Atomic files: the one writer every qeframe file that must never be seen half-written goes through.

A file is written to a temporary name beside it (``.<name>.<pid>.tmp``), flushed and ``fsync``-ed,
moved into place with :func:`os.replace` (atomic on POSIX and Windows), and its folder is
``fsync``-ed so that the rename itself survives a power cut. A reader therefore sees the old file or
the new one, never a mix; an error leaves no temporary file behind. Used for dataset manifests
(:mod:`qeframe.data`), run folders, checkpoint configs, results and ensemble records
(:mod:`qeframe.learn`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def temporary_path(path: Path) -> Path:
    """The temporary name :func:`atomic_write_text` writes ``path`` under: ``.<name>.<pid>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def fsync_dir(path: str | Path) -> None:
    """``fsync`` the folder ``path`` (makes renames in it durable); a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably (see the module docstring)."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def atomic_write_json(path: str | Path, data: Any, *, sort_keys: bool = True) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON (keys sorted unless ``sort_keys=False``,
    for documents whose key order means something, such as table rows or a manifest); NaN and
    infinities are refused (they are not JSON)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when the file is absent, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_density_matrices(path: str | Path, *, n_qubits: int | None = None) -> Any:
    """The density matrices in a user's file, validated: the one loader of ``classify``, ``certify``
    and any other command that reads matrices.

    ``.npy`` (the array) or ``.npz`` (its array ``rho``), read without pickle, then checked by
    :func:`qeframe.quantum.validation.validate_density_matrices` (shape ``(N, 2**n, 2**n)`` or
    ``(2**n, 2**n)``, with ``n == n_qubits`` when given; finite, Hermitian, trace 1, positive
    semidefinite). Returns ``(N, 2**n, 2**n)`` complex128 in the file's (big-endian) qubit order.

    Raises:
        QeframeError: one line for a missing, unreadable or unsupported file or a missing ``rho``;
            :class:`~qeframe.errors.InvalidDensityMatrixError` naming the failed check and the index.
    """
    import numpy as np

    from qeframe.errors import QeframeError
    from qeframe.quantum.validation import validate_density_matrices

    path = Path(path)
    if not path.is_file():
        raise QeframeError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise QeframeError(
            f"unsupported file type {suffix or '(none)'!r} for {path}; expected .npy or .npz (array 'rho')"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with loaded:
                if "rho" not in loaded.files:
                    raise QeframeError(
                        f"{path} has no array 'rho'; it has: {', '.join(loaded.files) or 'nothing'}"
                    )
                loaded = loaded["rho"]
    except QeframeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise QeframeError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return validate_density_matrices(loaded, n_qubits=n_qubits)
