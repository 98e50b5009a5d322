"""The trainer: supervised and Siamese semi-supervised training of a backbone on a resident dataset.

Data path. The whole training set lives on the device as one float tensor ``x`` of shape
``(N, 2, d, d)`` (channel 0 real part, channel 1 imaginary part, :func:`qeframe.learn.arrays.model_input`) with
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
(shared weights: the Siamese network; :func:`qeframe.learn.losses.fused_loss`). With ``training.symmetry_fraction
= f < 1`` only the first ``ceil(f B)`` samples of the (shuffled) batch get views and the
consistency sums are divided by ``ceil(f B) m``. With ``training.view_bce_weight = l_v > 0`` the
views are also supervised: ``+ l_v * BCE_masked(f(S_s rho), q moved by cut_map)`` over the known
labels of all view rows (term ``bce:views``; a symmetry preserves entanglement per cut, so the
views carry their originals' labels — data augmentation from the same forward pass).
Optimiser: Adam(lr, weight_decay), the learning rate set before every step from
``training.lr_schedule`` over all ``epochs`` steps (:meth:`~qeframe.config.specs.TrainingSpec.learning_rate`). ``training.compile`` runs
:func:`~qeframe.learn.losses.fused_loss` through :func:`torch.compile`
(:func:`~qeframe.learn.losses.compile_loss`).

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

Where things live: the arrays, devices and model input are :mod:`qeframe.learn.arrays`, the loss
terms :mod:`qeframe.learn.losses`, checkpoints and resume :mod:`qeframe.learn.checkpoints`; this
module is the training loop (:class:`Trainer`).

Size: about 530 lines, kept as one module on purpose (issue 14's rule): its core is one class, the
:class:`Trainer`, whose epoch loop, loss terms, CUDA-graph capture and data-parallel bookkeeping
share its state; the pieces that stand alone live in ``arrays``, ``losses`` and ``checkpoints``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from qeframe.errors import QeframeError
from qeframe.learn.arrays import (
    DatasetArrays,
    autocast_dtype,
    complex_view,
    model_input,
    predict_logits,
    resolve_device,
)
from qeframe.learn.checkpoints import TrainerCheckpoints, rank_seed
from qeframe.learn.distributed import SINGLE, DistContext, broadcast_buffers, prepare_model, wrap_model
from qeframe.learn.losses import VIEW_BCE, compile_loss, fused_loss
from qeframe.quantum.cuts import cut_names
from qeframe.quantum.torch_ops import to_model_input

if TYPE_CHECKING:
    from qeframe.config.specs import ExperimentSpec, ModelSpec, TrainingSpec
    from qeframe.learn.runs import RunDir
    from qeframe.plugin.interfaces import Symmetry
    from qeframe.plugin.registry import Registry


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
    """Create the backbone and every symmetry of ``experiment`` once, and load its proposer (if any),
    so that an unknown name or a bad parameter fails before any dataset is built (the registry's
    error lists the names)."""
    key = f"experiments.{name}"
    model = experiment.model
    registry.create(
        "backbone", model.backbone, model.params, key=f"{key}.model.params", name_key=f"{key}.model.backbone"
    )
    for i, sym in enumerate(experiment.training.symmetries):
        at = f"{key}.training.symmetries[{i}]"
        registry.create("symmetry", sym.name, sym.params, key=f"{at}.params", name_key=at)
    if experiment.prediction.proposer is not None:
        from qeframe.learn.proposer import check_proposer

        check_proposer(experiment.prediction.proposer, key=f"{key}.prediction.proposer")


def _seeds(seed: int) -> tuple[int, int]:
    children = np.random.SeedSequence(seed).spawn(2)
    return tuple(int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children)  # type: ignore[return-value]


class Trainer(TrainerCheckpoints):
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
            torch.manual_seed(rank_seed(training.seed, self.dist.rank, 0))
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
        view_bce = self.training.view_bce_weight if views else 0.0
        view_bce_denominator = (
            (yb[: self.view_rows(b)] >= 0).sum() * len(views) if sliced and view_bce > 0 else None
        )
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
            view_bce,
            view_bce_denominator,
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
        view_bce = self.training.view_bce_weight > 0 and any(w > 0 for w in weights.values())
        if view_bce:
            sums[VIEW_BCE] = zero.clone()
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
                **({VIEW_BCE: values.get(VIEW_BCE)} if self.training.view_bce_weight > 0 else {}),
            },
            "weights": {
                "bce": self.training.bce_weight,
                **weights,
                **(
                    {VIEW_BCE: self.training.view_bce_weight if view_bce else 0.0}
                    if self.training.view_bce_weight > 0
                    else {}
                ),
            },
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
        :meth:`~qeframe.learn.checkpoints.TrainerCheckpoints.resume`), checkpoint every epoch into ``run``
        and load the selected model at the end.

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
