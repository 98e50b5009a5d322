"""The trainer: supervised and Siamese semi-supervised training of a backbone on a resident dataset.

Data path. The whole training set lives on the device as one float tensor ``x`` of shape
``(N, 2, d, d)`` (channel 0 real part, channel 1 imaginary part, :func:`to_model_input`) with
the labels ``(N, n_cuts)`` int8 beside it. An epoch draws a permutation of ``0..N-1`` from an
explicit ``torch.Generator`` and walks it in batches of ``training.batch_size`` indices; a batch is
``x[idx]`` — no per-sample ``DataLoader``. Symmetry views are made per batch from
``torch.complex(x[idx, 0], x[idx, 1])`` (complex64: the model sees float32 anyway).

Loss of a batch ``b`` of size ``B`` at (0-based) epoch ``e``, with ``p = sigmoid(f(rho))``::

    L = l0 * BCE_masked(f(rho), q)
        + sum_s w_s(e) * 1/(B m) sum_{i, j} | p_j(rho_i) - p_{k_s(i, j)}(S_s rho_i) |

``BCE_masked`` averages the binary cross-entropy over the (sample, cut) pairs whose label ``q`` is
known (``q != -1``); unknown labels enter only the consistency terms, which use every sample (the
semi-supervised part). For each :class:`~qeframe.config.specs.SymmetryLoss` ``s``, the symmetry plugin
draws a random transformation ``S_s`` per sample and returns ``cut_map`` with ``k_s(i, j) =
cut_map[i, j]`` (cut ``j`` of ``rho_i`` is cut ``cut_map[i, j]`` of ``S_s rho_i``), and
``w_s(e) = s.weight_at(e)`` (paper: 0 for epochs 0..9, then 0.5). A term whose weight is 0 in an
epoch is not computed in that epoch. Original and views go through the model as one batch
(shared weights: the Siamese network; :func:`fused_loss`). With ``training.symmetry_fraction
= f < 1`` only the first ``ceil(f B)`` samples of the (shuffled) batch get views and the
consistency sums are divided by ``ceil(f B) m``. Optimiser: Adam(lr, weight_decay), the learning
rate set before every step from ``training.lr_schedule`` over all ``epochs`` steps
(:meth:`~qeframe.config.specs.TrainingSpec.learning_rate`). ``training.compile`` runs
:func:`fused_loss` through :func:`torch.compile` (:func:`compile_loss`).

Devices and precision: CUDA when available (``device="auto"``) with bf16 autocast, CPU in float32;
``training.precision`` can force either. Randomness: ``torch.manual_seed(training.seed)`` before
the model is built, and two ``torch.Generator`` objects seeded from
``numpy.random.SeedSequence(training.seed)`` children — one (CPU) for shuffling, one (on the
device) for symmetry sampling. Their states go into every checkpoint, so that "train 2 epochs" and
"train 1 epoch, stop, resume for 1" give the same weights.

Data-parallel training (``torchrun``, :mod:`qeframe.learn.distributed`): with a
:class:`~qeframe.learn.distributed.DistContext` of ``K`` ranks, every rank holds the whole training set,
draws the same permutation and cuts it into the same global batches of ``B`` indices; rank ``r``
trains on its contiguous part ``[lo_r, hi_r)`` (:func:`~qeframe.learn.distributed.shard_bounds`) through
:class:`~torch.nn.parallel.DistributedDataParallel`. Its loss is its share of the global batch's
loss — the BCE sum over its known labels divided by the number ``n_known`` of known labels in the
*global* batch (computed locally: every rank has all labels), the consistency sums divided by
``B m`` — so the shares add up to ``L``; each rank back-propagates ``K`` times its share and DDP
averages the gradients, which gives the gradient of ``L``. Symmetry views are drawn for the whole
global batch from the shared symmetry generator (identical on every rank) and each rank keeps the
rows of its part, so the transformations are those of the single-process run (each rank spends the
symmetry transform of the whole global batch; the model runs on its part only). Epoch records sum
the ranks' shares, counts and accuracies (all-reduce), so ``metrics.jsonl`` holds the global
values. Hence, for a deterministic backbone, ``K`` processes compute the single-process updates up
to floating-point rounding (the order of the gradient sums differs). Not bitwise equal by design:
dropout masks (the global torch RNG is seeded per rank, so ranks draw independent masks) and
BatchNorm statistics on the CPU (per-rank batches; on CUDA :class:`torch.nn.SyncBatchNorm` uses the
global batch). Validation is sharded over ranks and the per-cut counts are summed; only rank 0
writes metrics and checkpoints.

Model selection: after each epoch the model is scored on each validation dataset (mean over cuts of
the per-cut accuracy on known labels, threshold 0.5 on the probability) and the mean over validation
datasets is the epoch's score; ``training.select = "best-validation"`` keeps the epoch with the
highest score (the first one on ties), ``"last"`` the last epoch. Without validation datasets the
last epoch is kept.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from qeframe import __version__
from qeframe.learn.distributed import SINGLE, DistContext, broadcast_buffers, prepare_model, wrap_model
from qeframe.errors import QeframeError
from qeframe.plugin.labels import PROVENANCE
from qeframe.quantum.cuts import cut_names
from qeframe.quantum.torch_ops import from_model_input, to_model_input

if TYPE_CHECKING:
    from qeframe.plugin.interfaces import Symmetry
    from qeframe.plugin.registry import Registry
    from qeframe.learn.runs import RunDir
    from qeframe.config.specs import ExperimentSpec, ModelSpec, TrainingSpec

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


def _autocast(device: torch.device, dtype: torch.dtype | None):
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


# --------------------------------------------------------------------------------------------------
# loss terms and metrics


def masked_bce(
    logits: torch.Tensor, labels: torch.Tensor, *, denominator: torch.Tensor | int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy with logits averaged over the known labels.

    ``logits`` ``(B, m)`` float, ``labels`` ``(B, m)`` int (1/0/-1). Returns ``(loss, n_known)``;
    ``loss = sum_{q_ij != -1} BCE(logit_ij, q_ij) / max(n_known, 1)`` (0 when nothing is known).

    ``denominator`` replaces ``n_known`` in the division: a data-parallel rank passes the number of
    known labels of the whole global batch, so that the ranks' losses add up to the global one.
    """
    known = labels >= 0
    target = labels.clamp(min=0).to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    n_known = known.sum()
    denom = n_known if denominator is None else torch.as_tensor(denominator, device=logits.device)
    loss = (per * known).sum() / denom.clamp(min=1)
    return loss, n_known


def consistency_loss(
    p: torch.Tensor, p_view: torch.Tensor, cut_map: torch.Tensor, *, denominator: int | None = None
) -> torch.Tensor:
    """Siamese consistency ``mean_{b, j} |p[b, j] - p_view[b, cut_map[b, j]]|``.

    ``p``, ``p_view``: ``(B, m)`` probabilities of the original and transformed states; ``cut_map``:
    ``(B, m)`` long from :meth:`qeframe.plugin.interfaces.Symmetry.apply`. With ``denominator`` the sum is
    divided by it instead of ``B m`` (a data-parallel rank passes ``B_global m``).
    """
    diff = (p - p_view.gather(1, cut_map)).abs()
    return diff.mean() if denominator is None else diff.sum() / denominator


def per_cut_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cut accuracy over known labels: ``pred`` ``(N, m)`` bool/int, ``labels`` ``(N, m)`` int.

    Returns ``(accuracy (m,) float64 — NaN for a cut with no known label, counts (m,) long)``.
    """
    known = labels >= 0
    correct = ((pred.to(torch.int64) == labels.to(torch.int64)) & known).sum(0)
    counts = known.sum(0)
    acc = correct.double() / counts.double()
    return torch.where(counts > 0, acc, torch.full_like(acc, math.nan)), counts


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
            with _autocast(x.device, amp_dtype):
                outs.append(model(x[start : start + batch_size]).float())
    finally:
        model.train(was_training)
    if not outs:
        return torch.empty((0, 0), device=x.device)
    return torch.cat(outs)


def fused_loss(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    cut_maps: Sequence[torch.Tensor],
    weights: Sequence[float],
    names: Sequence[str],
    bce_weight: float,
    bce_denominator: torch.Tensor | None = None,
    view_denominator: int | None = None,
    amp_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """The Siamese loss from one fused forward pass: ``(total, {term: value}, logits)``.

    ``inputs`` ``(b + s v, 2, d, d)``: ``b`` original states (``labels`` ``(b, m)`` int8) followed
    by ``s = len(cut_maps)`` blocks of ``v`` transformed states, the ``i``-th block being the view
    of the first ``v`` originals under symmetry ``i`` (``cut_maps[i]`` ``(v, m)`` long). With
    ``p = sigmoid(f(inputs))``::

        total = bce_weight * BCE_masked(f(x)[:b], labels)
                + sum_i weights[i] * mean_{r < v, j} | p[r, j] - p[b + i v + r, cut_maps[i][r, j]] |

    ``bce_denominator`` / ``view_denominator`` replace the BCE's number of known labels / the
    consistency terms' ``v m`` (a data-parallel rank's share, :meth:`Trainer.batch_loss`).
    A pure tensor function of its inputs (no host synchronisation), which is what
    ``training.compile`` compiles; it equals separate forward passes per view for any model
    whose output for a sample does not depend on the rest of the batch (no BatchNorm in
    training mode).
    """
    with _autocast(inputs.device, amp_dtype):
        out = model(inputs)
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    b = labels.shape[0]
    logits = out[:b]
    bce, _ = masked_bce(logits, labels, denominator=bce_denominator)
    terms = {"bce": bce}
    total = bce_weight * bce
    if cut_maps:
        p = torch.sigmoid(logits)
        v = cut_maps[0].shape[0]
        for i, (cut_map, weight, name) in enumerate(zip(cut_maps, weights, names)):
            p_view = torch.sigmoid(out[b + i * v : b + (i + 1) * v])
            term = consistency_loss(p[:v], p_view, cut_map, denominator=view_denominator)
            terms[name] = term
            total = total + weight * term
    return total, terms, logits


def compile_loss(device: torch.device, world_size: int = 1) -> Callable[..., Any]:
    """:func:`fused_loss` through :func:`torch.compile` (``training.compile``).

    The model's forward and backward and the loss terms become one Inductor graph per input
    shape (full batches, the last partial batch, with and without symmetry views: a few
    compilations per run, ``dynamic=False``). On a single CUDA device the mode is
    ``reduce-overhead``, which replays the step's kernels as a CUDA graph: the Siamese step at
    batch 128 is bound by kernel launches, not arithmetic. Data-parallel runs and the CPU use
    the default mode (on the CPU Inductor generates C++/OpenMP kernels; it needs a C++ compiler).
    The symmetry transforms (complex arithmetic, random draws from a generator) stay eager.
    """
    mode = "reduce-overhead" if device.type == "cuda" and world_size == 1 else None
    return torch.compile(fused_loss, mode=mode, dynamic=False)


# --------------------------------------------------------------------------------------------------
# the trainer


class TrainProgress(Protocol):
    """Receives progress events (a rich progress bar in the CLI)."""

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None: ...

    def batch_end(self) -> None: ...

    def epoch_end(self, record: Mapping[str, Any]) -> None: ...


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns: the selected model (loaded) and the record."""

    model: torch.nn.Module
    best_epoch: int
    best_score: float | None
    epochs_done: int
    history: list[dict[str, Any]]


def validate_experiment_plugins(name: str, experiment: ExperimentSpec, registry: Registry) -> None:
    """Create the backbone and every symmetry of ``experiment`` once, so that an unknown name or a
    bad parameter fails before any dataset is built (the registry's error lists the names)."""
    key = f"experiments.{name}"
    model = experiment.model
    registry.create(
        "backbone", model.backbone, model.params, key=f"{key}.model.params", name_key=f"{key}.model.backbone"
    )
    for i, sym in enumerate(experiment.training.symmetries):
        at = f"{key}.training.symmetries[{i}]"
        registry.create("symmetry", sym.name, sym.params, key=f"{at}.params", name_key=at)


def _seeds(seed: int) -> tuple[int, int]:
    children = np.random.SeedSequence(seed).spawn(2)
    return tuple(int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children)  # type: ignore[return-value]


def _rank_seed(seed: int, rank: int, epoch: int) -> int:
    """Seed of the global torch RNG of data-parallel ``rank`` from epoch ``epoch`` on (independent of
    the shuffling and symmetry streams, which use spawn keys ``(0,)`` and ``(1,)``)."""
    child = np.random.SeedSequence(seed, spawn_key=(2, rank, epoch))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


class Trainer:
    """Trains one backbone according to a :class:`~qeframe.config.specs.TrainingSpec`.

    Args:
        model_spec: backbone name and params.
        training: epochs, batch size, lr, symmetry losses, seed, precision, selection.
        n_qubits: number of qubits of the data.
        registry: plugin registry (default: the process-wide one).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a :class:`torch.device`.
        spec_hash: recorded in checkpoints and checked on resume.
        key: ``registry.toml`` location of the experiment, for error messages.
        distributed: the data-parallel context (:func:`qeframe.learn.distributed.init_distributed`);
            ``None`` for a single process. Every rank builds its own trainer with the same
            arguments and its own ``device``; :attr:`model` is the plain module (checkpoints and
            inference), :attr:`train_model` the DDP wrapper that training runs through.
    """

    def __init__(
        self,
        model_spec: ModelSpec,
        training: TrainingSpec,
        n_qubits: int,
        *,
        registry: Registry | None = None,
        device: str | torch.device = "auto",
        spec_hash: str = "",
        key: str = "experiment",
        distributed: DistContext | None = None,
    ) -> None:
        from qeframe.plugin.registry import get_registry

        self.registry = registry if registry is not None else get_registry()
        self.model_spec = model_spec
        self.training = training
        self.n_qubits = n_qubits
        self.cuts = cut_names(n_qubits)
        self.spec_hash = spec_hash
        self.device = resolve_device(device)
        self.amp_dtype = autocast_dtype(training.precision, self.device)
        self.backbone = self.registry.create(
            "backbone", model_spec.backbone, model_spec.params, key=f"{key}.model.params"
        )
        self.symmetries: list[Symmetry] = [
            self.registry.create("symmetry", s.name, s.params, key=f"{key}.training.symmetries[{i}].params")  # type: ignore[misc]
            for i, s in enumerate(training.symmetries)
        ]
        self.term_names = self._term_names()
        self.dist = distributed if distributed is not None else SINGLE
        torch.manual_seed(training.seed)  # the same initial weights on every rank
        self.model = prepare_model(self.backbone.build(n_qubits).to(self.device), self.dist, self.device)
        # fused Adam on CUDA: one kernel per step instead of a dozen (the step is launch-bound)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=training.lr,
            weight_decay=training.weight_decay,
            fused=self.device.type == "cuda" or None,
        )
        self.train_model = wrap_model(self.model, self.dist, self.device)
        self._loss_fn = compile_loss(self.device, self.dist.world_size) if training.compile else fused_loss
        if self.dist.world_size > 1:  # independent dropout masks on the ranks' parts
            torch.manual_seed(_rank_seed(training.seed, self.dist.rank, 0))
        shuffle_seed, symmetry_seed = _seeds(training.seed)
        self.shuffle_generator = torch.Generator().manual_seed(shuffle_seed)
        self.symmetry_generator = torch.Generator(device=self.device).manual_seed(symmetry_seed)
        self.epochs_done = 0
        self.best_epoch = 0
        self.best_score: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []

    def _term_names(self) -> list[str]:
        names: list[str] = []
        for s in self.training.symmetries:
            base = f"sym:{s.name}"
            name, k = base, 2
            while name in names:
                name, k = f"{base}#{k}", k + 1
            names.append(name)
        return names

    @property
    def precision(self) -> str:
        return "bf16" if self.amp_dtype == torch.bfloat16 else "float32"

    @property
    def backbone_params(self) -> dict[str, Any]:
        """The validated backbone params (defaults filled in), as recorded in checkpoints."""
        return self.backbone.params.model_dump(mode="json")

    # ------------------------------------------------------------------ one batch
    def view_rows(self, b: int) -> int:
        """Rows of a global batch of ``b`` samples that get symmetry views: ``ceil(f b)`` (at least 1)
        for ``training.symmetry_fraction = f`` — the first rows, a random subset of the shuffled data."""
        f = self.training.symmetry_fraction
        return b if f >= 1.0 else min(b, max(1, math.ceil(f * b)))

    def batch_inputs(
        self, xb: torch.Tensor, epoch_index: int, *, part: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, list[tuple[str, float, torch.Tensor]], int]:
        """The fused model input of one batch: ``(inputs, views, view_rows)``.

        ``inputs`` ``(b_l + s v, 2, d, d)`` is this rank's part of the batch (``b_l`` rows) followed
        by the ``v`` view rows of each of the ``s`` active symmetries, in the order of
        ``training.symmetries`` — one tensor, so that the Siamese branches (shared weights) are one
        forward pass. ``views`` holds ``(term name, weight, cut_map (v, m) long)`` per active
        symmetry. Each symmetry draws its transformations for the first :meth:`view_rows` rows of
        the *global* batch from the symmetry generator (the same random numbers on every rank) and
        this rank keeps the rows of its part.
        """
        b = xb.shape[0]
        lo, hi = (0, b) if part is None else part
        xl = xb[lo:hi] if (lo, hi) != (0, b) else xb
        k = self.view_rows(b)
        vlo, vhi = lo, max(lo, min(hi, k))
        views: list[tuple[str, float, torch.Tensor]] = []
        inputs = [xl]
        for name, spec, sym in zip(self.term_names, self.training.symmetries, self.symmetries):
            weight = spec.weight_at(epoch_index)
            if weight <= 0:
                continue
            rho2, cut_map = sym.apply(complex_view(xb if k == b else xb[:k]), self.symmetry_generator)
            if (vlo, vhi) != (0, k):
                rho2, cut_map = rho2[vlo:vhi], cut_map[vlo:vhi]
            inputs.append(to_model_input(rho2).to(xb.dtype))
            views.append((name, weight, cut_map.to(device=xb.device, dtype=torch.long)))
        return (torch.cat(inputs) if len(inputs) > 1 else xl), views, vhi - vlo

    def batch_loss(
        self,
        xb: torch.Tensor,
        yb: torch.Tensor,
        epoch_index: int,
        *,
        part: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Loss of one batch at 0-based ``epoch_index``: ``(total, {term: value}, logits)``.

        Terms: ``bce`` and one ``sym:<name>`` per symmetry whose weight is positive this epoch.
        The original states and all symmetry views go through the model as one concatenated
        batch (:meth:`batch_inputs`); :func:`fused_loss` splits the output.

        ``part = (lo, hi)``: ``xb``, ``yb`` are a global batch of ``B`` samples of which this
        data-parallel rank trains rows ``lo:hi``. Symmetry views are still drawn for all ``B``
        samples (the same random numbers as a single process) and sliced; the model runs on the
        part only; the returned values are this rank's shares — the BCE normalised by the known
        labels of the global batch, the consistency terms by ``v m`` (``v`` = :meth:`view_rows`
        of the global batch) — so that their sum over ranks is the loss of the global batch.
        ``logits`` are those of the part.
        """
        b = xb.shape[0]
        lo, hi = (0, b) if part is None else part
        sliced = (lo, hi) != (0, b)
        inputs, views, _ = self.batch_inputs(xb, epoch_index, part=part)
        yl = yb[lo:hi] if sliced else yb
        bce_denominator = (yb >= 0).sum() if sliced else None
        view_denominator = self.view_rows(b) * yb.shape[1] if sliced else None
        return self._loss_fn(
            self.train_model,
            inputs,
            yl,
            [cut_map for _, _, cut_map in views],
            [weight for _, weight, _ in views],
            [name for name, _, _ in views],
            self.training.bce_weight,
            bce_denominator,
            view_denominator,
            self.amp_dtype,
        )

    # ------------------------------------------------------------------ one epoch
    def train_epoch(
        self, x: torch.Tensor, y: torch.Tensor, progress: TrainProgress | None = None
    ) -> dict[str, Any]:
        """Train one epoch on resident ``x`` ``(N, 2, d, d)`` and ``y`` ``(N, m)``; returns its record.

        Batches of fewer than 2 samples are skipped (batch statistics need 2). With several
        data-parallel ranks, every rank trains its part of each global batch and the record holds
        the global values (losses, accuracy and counts summed over ranks); ``train_time_s`` and
        ``samples_per_s`` are rank 0's wall time and the global samples per second.
        """
        epoch = self.epochs_done + 1
        n = x.shape[0]
        bs = self.training.batch_size
        world = self.dist.world_size
        starts = [s for s in range(0, n, bs) if min(bs, n - s) >= 2]
        perm = torch.randperm(n, generator=self.shuffle_generator).to(x.device)
        weights = {name: s.weight_at(epoch - 1) for name, s in zip(self.term_names, self.training.symmetries)}
        if progress is not None:
            progress.epoch_start(epoch, self.training.epochs, len(starts))
        self.train_model.train()
        zero = torch.zeros((), device=x.device, dtype=torch.float64)
        sums: dict[str, torch.Tensor] = {"total": zero.clone(), "bce": zero.clone()}
        sums.update({name: zero.clone() for name, w in weights.items() if w > 0})
        correct = zero.clone()
        known = zero.clone()
        seen = 0
        t0 = time.perf_counter()
        total_steps = len(starts) * self.training.epochs
        graphs = self.training.compile and x.device.type == "cuda" and world == 1
        for step, s in enumerate(starts, start=(epoch - 1) * len(starts)):
            if self.training.lr_schedule != "constant":
                lr = self.training.learning_rate(step, total_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            if graphs:  # CUDA graphs (reduce-overhead): the previous step's outputs may be reused
                torch.compiler.cudagraph_mark_step_begin()
            idx = perm[s : s + bs]
            xb, yb = x[idx], y[idx]
            nb = xb.shape[0]
            part = self.dist.part(nb) if world > 1 else None
            total, terms, logits = self.batch_loss(xb, yb, epoch - 1, part=part)
            self.optimizer.zero_grad(set_to_none=True)
            # DDP averages the ranks' gradients; K x (share) averages to the gradient of the sum.
            (total * world if world > 1 else total).backward()
            self.optimizer.step()
            seen += nb
            with torch.no_grad():
                sums["total"] += total.detach().double() * nb
                for name, value in terms.items():
                    sums[name] += value.detach().double() * nb
                yl = yb if part is None else yb[part[0] : part[1]]
                mask = yl >= 0
                correct += (((logits > 0).to(torch.int8) == yl) & mask).sum().double()
                known += mask.sum().double()
            if progress is not None:
                progress.batch_end()
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        train_time = time.perf_counter() - t0
        if world > 1:  # one all-reduce of every per-epoch sum, in a fixed key order
            keys = list(sums)
            packed = self.dist.all_reduce_sum(torch.stack([*(sums[k] for k in keys), correct, known]))
            sums = dict(zip(keys, packed[: len(keys)]))
            correct, known = packed[-2], packed[-1]
        values = {k: float(v) / max(seen, 1) for k, v in sums.items()}
        self.epochs_done = epoch
        return {
            "epoch": epoch,
            "loss": {
                "total": values.pop("total"),
                "bce": values.pop("bce"),
                **{k: values.get(k) for k in weights},
            },
            "weights": {"bce": self.training.bce_weight, **weights},
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "train_accuracy": float(correct) / float(known) if float(known) > 0 else None,
            "samples": seen,
            "samples_per_s": seen / train_time if train_time > 0 else None,
            "train_time_s": train_time,
        }

    # ------------------------------------------------------------------ validation and selection
    def validate(
        self, validation: Sequence[tuple[str, torch.Tensor, torch.Tensor]]
    ) -> dict[str, float | None]:
        """Mean per-cut accuracy (known labels, p > 0.5) per validation set ``(name, x, labels)``.

        With several data-parallel ranks each rank predicts its contiguous shard of every set and
        the per-cut counts of correct and known labels are summed over ranks (the result is the
        single-process one); rank 0's buffers are broadcast first so every shard sees the model
        that rank 0 checkpoints.
        """
        broadcast_buffers(self.model, self.dist)
        scores: dict[str, float | None] = {}
        for name, xv, yv in validation:
            lo, hi = self.dist.part(xv.shape[0])
            m = yv.shape[1]
            correct = torch.zeros(m, dtype=torch.float64, device=yv.device)
            counts = torch.zeros(m, dtype=torch.float64, device=yv.device)
            if hi > lo:
                logits = predict_logits(self.model, xv[lo:hi], amp_dtype=self.amp_dtype)
                labels = yv[lo:hi].to(torch.int64)
                mask = labels >= 0
                correct += (((logits > 0).to(torch.int64) == labels) & mask).sum(0).double()
                counts += mask.sum(0).double()
            if self.dist.world_size > 1:
                packed = self.dist.all_reduce_sum(torch.stack([correct, counts]))
                correct, counts = packed[0], packed[1]
            valid = (correct / counts)[counts > 0]
            scores[name] = float(valid.mean()) if valid.numel() else None
        return scores

    def _select(self, score: float | None) -> bool:
        """Update the selected epoch after epoch :attr:`epochs_done`; True when it changed.

        ``best-validation`` with a score keeps the first epoch of highest score; ``last`` (or no
        validation score) keeps the latest epoch.
        """
        best_validation = self.training.select == "best-validation"
        if best_validation and score is not None and self.best_score is not None and score <= self.best_score:
            return False
        self.best_score = score
        self.best_epoch = self.epochs_done
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return True

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        train: DatasetArrays,
        validation: Sequence[DatasetArrays] = (),
        *,
        run: RunDir | None = None,
        progress: TrainProgress | None = None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    ) -> TrainResult:
        """Train up to ``training.epochs`` epochs (continuing from :attr:`epochs_done` after
        :meth:`resume`), checkpoint every epoch into ``run`` and load the selected model at the end.

        Data-parallel: every rank calls ``fit`` with the same arrays and the same ``run``; only
        rank 0 writes into ``run`` (metrics, checkpoints, ``best``), and every rank returns the
        same selected model after a final barrier.
        """
        for arrays in (train, *validation):
            if arrays.n_qubits != self.n_qubits:
                raise QeframeError(
                    f"dataset {arrays.name!r} has {arrays.n_qubits} qubits, the model is built for {self.n_qubits}"
                )
        x = model_input(train.rho, self.device)
        y = torch.tensor(np.asarray(train.labels, np.int8), device=self.device)
        val = [
            (
                v.name,
                model_input(v.rho, self.device),
                torch.tensor(np.asarray(v.labels, np.int8), device=self.device),
            )
            for v in validation
        ]
        while self.epochs_done < self.training.epochs:
            t0 = time.perf_counter()
            record = self.train_epoch(x, y, progress)
            scores = self.validate(val)
            known = [s for s in scores.values() if s is not None]
            score = float(np.mean(known)) if known else None
            self._select(score)
            record.update(
                validation_accuracy=scores,
                validation_mean=score,
                selected_epoch=self.best_epoch,
                time_s=time.perf_counter() - t0,
            )
            self.history.append(record)
            if run is not None:
                if self.dist.is_main:
                    run.append_metrics(record)
                self.save_checkpoint(run)
            if progress is not None:
                progress.epoch_end(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
        if run is not None and self.epochs_done > 0 and self.dist.is_main:
            from qeframe.learn.runs import latest_checkpoint, read_checkpoint_config, write_best

            last = latest_checkpoint(run.checkpoints)
            if last is not None:
                write_best(run, read_checkpoint_config(last))
        self.dist.barrier()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return TrainResult(self.model, self.best_epoch, self.best_score, self.epochs_done, list(self.history))

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_config(self) -> dict[str, Any]:
        """The JSON part of a checkpoint (model identity, progress, optimizer hyper-parameters)."""
        opt = self.optimizer.state_dict()
        scalars = {
            f"{i}.{k}": v
            for i, st in opt["state"].items()
            for k, v in st.items()
            if not isinstance(v, torch.Tensor)
        }
        return {
            "backbone": self.model_spec.backbone,
            "params": self.backbone_params,
            "n_qubits": self.n_qubits,
            "cuts": self.cuts,
            "spec_hash": self.spec_hash,
            "epochs": self.training.epochs,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "select": self.training.select,
            "precision": self.precision,
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "qeframe_version": __version__,
            "torch_version": torch.__version__,
            "optimizer": {"param_groups": _jsonable(opt["param_groups"]), "scalars": _jsonable(scalars)},
        }

    def _global_rng_states(self) -> dict[str, torch.Tensor]:
        states = {"rng.torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer tensors and RNG states, for the ``.state.safetensors`` file.

        With several data-parallel ranks this is a collective call (every rank must make it): the
        global torch RNG states of all ranks are gathered as ``rng.torch.rank<r>`` (and
        ``rng.cuda.rank<r>``), beside rank 0's ``rng.torch``.
        """
        tensors: dict[str, torch.Tensor] = {}
        for i, st in self.optimizer.state_dict()["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optimizer.{i}.{k}"] = v
        tensors.update(self._global_rng_states())
        tensors["rng.shuffle"] = self.shuffle_generator.get_state()
        tensors["rng.symmetry"] = self.symmetry_generator.get_state()
        if self.dist.world_size > 1:
            for r, states in enumerate(self.dist.all_gather_object(self._global_rng_states())):
                tensors.update({f"{k}.rank{r}": v for k, v in states.items()})
        return tensors

    def save_checkpoint(self, run: RunDir) -> None:
        """Write the checkpoint of :attr:`epochs_done` into ``run/checkpoints`` (keeping the best epoch).

        Data-parallel: a collective call; rank 0 writes.
        """
        from qeframe.learn.runs import save_checkpoint

        tensors = self.state_tensors()
        if not self.dist.is_main:
            return
        save_checkpoint(
            run.checkpoints,
            self.epochs_done,
            model_tensors=self.model.state_dict(),
            state_tensors=tensors,
            config=self.checkpoint_config(),
            keep=[self.best_epoch],
        )

    def resume(self, run: RunDir) -> int:
        """Continue from the newest complete checkpoint of ``run``; returns the epochs already done.

        Restores weights, optimizer state, RNG states, the selected epoch (and its weights), and
        drops ``metrics.jsonl`` lines of epochs after the checkpoint. Raises :class:`QeframeError`
        when the checkpoint was written for another backbone/params/n_qubits or another spec.
        Without any checkpoint, training starts from scratch (0 is returned).

        Data-parallel: every rank calls it and reads the same checkpoint (the run folder must be on
        a filesystem all ranks see); rank 0 truncates ``metrics.jsonl``. The checkpoint may come
        from any number of ranks: each rank restores its own global torch RNG state when the
        checkpoint was written by as many ranks, and otherwise reseeds it per rank.
        """
        from qeframe.learn.runs import (
            check_compatible,
            epoch_stem,
            latest_checkpoint,
            load_tensors,
            read_checkpoint_config,
        )

        path = latest_checkpoint(run.checkpoints)
        if path is None:
            if self.dist.is_main:
                run.truncate_metrics(0)
            self.dist.barrier()
            return 0
        config = read_checkpoint_config(path)
        check_compatible(
            config,
            backbone=self.model_spec.backbone,
            params=self.backbone_params,
            n_qubits=self.n_qubits,
            source=str(path),
        )
        if self.spec_hash and config.get("spec_hash") and config["spec_hash"] != self.spec_hash:
            raise QeframeError(
                f"{path}: the experiment spec changed since this run started (spec hash "
                f"{config['spec_hash'][:8]} != {self.spec_hash[:8]}); start a new run instead of --resume"
            )
        self.load_weights(run.checkpoints / config["model_file"])
        state = load_tensors(run.checkpoints / config["state_file"])
        self._load_optimizer(config["optimizer"], state)
        self.shuffle_generator.set_state(state["rng.shuffle"])
        self.symmetry_generator.set_state(state["rng.symmetry"].cpu())
        self._restore_global_rng(state, int(config.get("world_size") or 1), int(config["epoch"]))
        self.epochs_done = int(config["epoch"])
        self.best_epoch = int(config.get("best_epoch") or self.epochs_done)
        self.best_score = config.get("best_score")
        best_file = run.checkpoints / f"{epoch_stem(self.best_epoch)}.safetensors"
        best = load_tensors(best_file, self.device) if best_file.is_file() else self.model.state_dict()
        self.best_state = {k: v.detach().clone() for k, v in best.items()}
        if self.dist.is_main:
            run.truncate_metrics(self.epochs_done)
        self.dist.barrier()
        self.history = run.read_metrics()
        return self.epochs_done

    def _restore_global_rng(self, state: Mapping[str, torch.Tensor], saved_world: int, epoch: int) -> None:
        world, rank = self.dist.world_size, self.dist.rank
        suffix = f".rank{rank}" if world > 1 and saved_world == world else ""
        if suffix and f"rng.torch{suffix}" not in state:
            suffix = ""
        torch.set_rng_state(state[f"rng.torch{suffix}"].cpu())
        if f"rng.cuda{suffix}" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state[f"rng.cuda{suffix}"].cpu(), self.device)
        if world > 1 and not suffix:  # written by another number of ranks: fresh per-rank streams
            torch.manual_seed(_rank_seed(self.training.seed, rank, epoch))

    def load_weights(self, path: Any) -> None:
        """Load model weights from a safetensors file (shape mismatches -> :class:`QeframeError`)."""
        from qeframe.learn.runs import load_tensors

        load_state(self.model, load_tensors(path, self.device), str(path))

    def _load_optimizer(self, opt_config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, i, name = key.split(".", 2)
                state.setdefault(int(i), {})[name] = value
        for key, value in opt_config.get("scalars", {}).items():
            i, name = key.split(".", 1)
            state.setdefault(int(i), {})[name] = value
        try:
            self.optimizer.load_state_dict({"state": state, "param_groups": opt_config["param_groups"]})
        except (ValueError, KeyError) as exc:
            raise QeframeError(f"optimizer state in the checkpoint does not fit the model: {exc}") from None


def load_state(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(tensors, strict=True)`` with one-line errors."""
    try:
        model.load_state_dict(dict(tensors), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise QeframeError(f"{source}: weights do not fit the model: {detail}") from None


def build_model_from_config(
    config: Mapping[str, Any], registry: Registry, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """Rebuild the backbone a checkpoint config names (``backbone``, ``params``, ``n_qubits``)."""
    backbone = registry.create(
        "backbone", config["backbone"], config.get("params") or {}, key="checkpoint.params"
    )
    return backbone.build(int(config["n_qubits"])).to(torch.device(device))


def _jsonable(value: Any) -> Any:
    """Optimizer param groups as JSON (tuples -> lists, tensors -> numbers)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return copy.deepcopy(value)
