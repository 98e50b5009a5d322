"""What the benchmarks share: the machine/software header of their JSON report, the load average,
the previous (committed) report for side-by-side figures, and the atomic write."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def device_name(device: Any) -> str:
    """The CUDA device's name, else the processor's (``"cpu"`` when the platform does not say)."""
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"


def report_header(benchmark: str) -> dict[str, Any]:
    """``benchmark``, ``date`` (UTC), qeframe/torch/python versions, machine and CPU count."""
    import torch

    from qeframe import __version__

    return {
        "benchmark": benchmark,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "qeframe": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def load_average(before: tuple[float, ...]) -> dict[str, float]:
    """The 1-minute load average before (``os.getloadavg()`` taken then) and now."""
    return {"before": round(before[0], 2), "after": round(os.getloadavg()[0], 2)}


def previous_report(path: Path) -> dict[str, Any] | None:
    """The report at ``path`` before this run overwrites it (the committed figures), or ``None``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON to ``path`` through a temporary file (no torn file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)


@contextmanager
def engine_product_factors() -> Iterator[None]:
    """Within the block, the ``product`` family draws its one- and two-qubit ``circuit`` factors with
    the general circuit engine (``circuit_states``), as before ``_small_circuits``, and ignores a
    labeler's drop rule (no screen, ``_screened``): the same random stream and the same kept rows
    (the reference of ``bench_build.py --reference engine`` and ``bench_comb.py``). Forked build
    workers inherit the swap."""
    from qeframe_plugins.families import _common, product

    saved = (product.one_qubit_separable_states, product.two_qubit_entangled_states)
    saved_screened = product.ProductFamily.sample_screened

    def one(rng, count, u_layers=2):
        return _common.circuit_states("separable", count, rng, 1, u_layers=u_layers).psi

    def two(rng, count, u_layers=2):
        return _common.circuit_states("entangled", count, rng, 2, u_layers=u_layers).psi

    product.one_qubit_separable_states, product.two_qubit_entangled_states = one, two
    product.ProductFamily.sample_screened = lambda self, count, rng, n_qubits, drop: self.sample(
        count, rng, n_qubits
    )
    try:
        yield
    finally:
        product.one_qubit_separable_states, product.two_qubit_entangled_states = saved
        product.ProductFamily.sample_screened = saved_screened
