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
