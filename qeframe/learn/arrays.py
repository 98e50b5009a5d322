"""Datasets as arrays, devices and precision, the model input, and batched inference.

:class:`DatasetArrays` is what training, evaluation and the prediction layer read (a store's
dataset or in-memory arrays); :func:`model_input` turns complex density matrices ``(N, d, d)``
(big-endian qubit order) into the model input ``(N, 2, d, d)`` float32 (real, imaginary);
:func:`predict_logits` runs a model over it in batches. :func:`resolve_device` and
:func:`autocast_dtype` decide where and in which precision (bf16 autocast on CUDA, float32 on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qeframe.errors import QeframeError
from qeframe.plugin.labels import PROVENANCE
from qeframe.quantum.cuts import cut_names
from qeframe.quantum.torch_ops import from_model_input, to_model_input

#: Batch size used for inference (validation, evaluation, classify).
EVAL_BATCH = 4096
#: Samples converted to the model input per chunk (bounds the temporary complex copies).
_INPUT_CHUNK = 65536


# --------------------------------------------------------------------------------------------------
# datasets as arrays


@dataclass
class DatasetArrays:
    """The arrays of one dataset that training and evaluation read.

    Built from a store :class:`~qeframe.data.store.Dataset` with :meth:`from_dataset`, or directly from
    in-memory arrays (tests, notebooks).

    Attributes:
        name: dataset name (table columns, metric keys).
        rho: ``(N, 2**n, 2**n)`` complex density matrices, big-endian qubit order.
        labels: ``(N, n_cuts)`` int8 training labels (1 entangled, 0 separable, -1 unknown).
        ground_truth: ``(N, n_cuts)`` int8 truth known by construction (-1 unknown); default all -1.
        family: ``(N,)`` str, the family (tag) of each sample; default the dataset name.
        pptes: ``(N,)`` bool, PPT-entangled in the paper's sense (Horodecki, UPB, Acín); default False.
        cuts: cut names in :func:`~qeframe.quantum.cuts.bipartitions` order; default from ``n``.
        provenance: ``(N, n_cuts)`` uint8 provenance codes of ``labels`` (:data:`qeframe.plugin.labels.PROVENANCE`),
            or ``None`` when unknown; evaluation reports which share of test labels is proved.
    """

    name: str
    rho: np.ndarray
    labels: np.ndarray
    ground_truth: np.ndarray | None = None
    family: np.ndarray | None = None
    pptes: np.ndarray | None = None
    cuts: list[str] = field(default_factory=list)
    provenance: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rho.ndim != 3 or self.rho.shape[1] != self.rho.shape[2]:
            raise ValueError(f"dataset {self.name!r}: rho must be (N, d, d), got {self.rho.shape}")
        n = len(self)
        expected = cut_names(self.n_qubits)
        if not self.cuts:
            self.cuts = expected
        elif list(self.cuts) != expected:
            raise ValueError(f"dataset {self.name!r}: cuts {self.cuts} are not in the order {expected}")
        shape = (n, len(expected))
        self.labels = np.asarray(self.labels, dtype=np.int8)
        if self.labels.shape != shape:
            raise ValueError(
                f"dataset {self.name!r}: labels have shape {self.labels.shape}, expected {shape}"
            )
        if self.ground_truth is None:
            self.ground_truth = np.full(shape, -1, np.int8)
        self.ground_truth = np.asarray(self.ground_truth, dtype=np.int8)
        if self.ground_truth.shape != shape:
            raise ValueError(
                f"dataset {self.name!r}: ground_truth has shape {self.ground_truth.shape}, expected {shape}"
            )
        self.family = np.full(n, self.name) if self.family is None else np.asarray(self.family).astype(str)
        self.pptes = np.zeros(n, bool) if self.pptes is None else np.asarray(self.pptes, dtype=bool)
        if self.family.shape != (n,) or self.pptes.shape != (n,):
            raise ValueError(f"dataset {self.name!r}: family and pptes must have shape ({n},)")
        if self.provenance is not None:
            self.provenance = np.asarray(self.provenance, dtype=np.uint8)
            if self.provenance.shape != shape:
                raise ValueError(f"dataset {self.name!r}: provenance must have shape {shape}")

    def __len__(self) -> int:
        return int(self.rho.shape[0])

    @property
    def n_qubits(self) -> int:
        return int(self.rho.shape[-1]).bit_length() - 1

    @property
    def n_cuts(self) -> int:
        return len(self.cuts)

    @classmethod
    def from_dataset(cls, dataset: Any) -> DatasetArrays:
        """Adapter from a store :class:`~qeframe.data.store.Dataset` (reads ``name``, ``rho``, ``labels``,
        ``ground_truth``, ``family``, ``meta['pptes']``, ``cuts`` and ``provenance``)."""
        meta = getattr(dataset, "meta", {}) or {}
        ground_truth = getattr(dataset, "ground_truth", None)
        gt_provenance = getattr(dataset, "ground_truth_provenance", None)
        if ground_truth is not None and gt_provenance is not None:
            # only facts count as construction truth; the paper's convention is not one
            guess = np.asarray(gt_provenance) == PROVENANCE.index("paper-convention")
            ground_truth = np.where(guess, -1, np.asarray(ground_truth)).astype(np.int8)
        return cls(
            name=dataset.name,
            rho=dataset.rho,
            labels=dataset.labels,
            ground_truth=ground_truth,
            family=getattr(dataset, "family", None),
            pptes=meta.get("pptes"),
            cuts=list(getattr(dataset, "cuts", []) or []),
            provenance=getattr(dataset, "provenance", None),
        )


# --------------------------------------------------------------------------------------------------
# devices, precision, model input


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is a :class:`QeframeError`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise QeframeError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise QeframeError(f"unknown device {device!r}; allowed: auto, cpu, cuda") from None


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``training.precision``: ``auto`` -> bf16 on CUDA, none (float32) on CPU."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``'s type; disabled when ``dtype`` is ``None`` (float32)."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def model_input(rho: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """The model input ``(N, 2, d, d)`` float32 on ``device`` from complex ``rho`` ``(N, d, d)``.

    Converted in chunks through complex64 (:func:`qeframe.quantum.torch_ops.to_model_input`), so the
    only full-size allocation is the float32 result.
    """
    device = torch.device(device)
    n, d = int(rho.shape[0]), int(rho.shape[-1])
    out = torch.empty((n, 2, d, d), dtype=torch.float32, device=device)
    for start in range(0, n, _INPUT_CHUNK):
        chunk = rho[start : start + _INPUT_CHUNK]
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.complex64))
        out[start : start + len(chunk)] = to_model_input(chunk.to(device=device, dtype=torch.complex64)).to(
            torch.float32
        )
    return out


def complex_view(x: torch.Tensor) -> torch.Tensor:
    """Inverse of the model input: ``(B, 2, d, d)`` float32 -> ``(B, d, d)`` complex64."""
    return from_model_input(x)


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = EVAL_BATCH,
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Logits ``(N, m)`` float32 for model input ``x`` ``(N, 2, d, d)`` (model in eval mode, batched).

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    outs = []
    try:
        for start in range(0, x.shape[0], batch_size):
            with autocast(x.device, amp_dtype):
                outs.append(model(x[start : start + batch_size]).float())
    finally:
        model.train(was_training)
    if not outs:
        return torch.empty((0, 0), device=x.device)
    return torch.cat(outs)
