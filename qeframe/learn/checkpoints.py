"""The trainer's checkpoints: what one holds, and how a trainer resumes from it.

:class:`TrainerCheckpoints` is the part of :class:`~qeframe.learn.train.Trainer` that writes a
checkpoint after each epoch (weights, optimizer state, the shuffling / symmetry / global RNG
states, the selected epoch) and restores all of it on ``--resume``, so that "train 2 epochs" and
"train 1 epoch, stop, resume for 1" give the same weights. The files and their format
(``checkpoints/epoch-NNNN.*``, ``best.json``) are :mod:`qeframe.learn.runs`'. :func:`load_state`
and :func:`build_model_from_config` rebuild a model from a checkpoint for inference.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qeframe import __version__
from qeframe.errors import QeframeError

if TYPE_CHECKING:
    from qeframe.learn.runs import RunDir
    from qeframe.plugin.registry import Registry


def rank_seed(seed: int, rank: int, epoch: int) -> int:
    """Seed of the global torch RNG of data-parallel ``rank`` from epoch ``epoch`` on (independent of
    the shuffling and symmetry streams, which use spawn keys ``(0,)`` and ``(1,)``)."""
    child = np.random.SeedSequence(seed, spawn_key=(2, rank, epoch))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


class TrainerCheckpoints:
    """Checkpoint writing and resuming of :class:`~qeframe.learn.train.Trainer` (a mixin: it reads
    the trainer's ``model``, ``optimizer``, generators, ``dist``, ``training`` and progress fields)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    shuffle_generator: torch.Generator
    symmetry_generator: torch.Generator
    device: torch.device
    dist: Any
    training: Any
    model_spec: Any
    n_qubits: int
    cuts: list[str]
    spec_hash: str
    epochs_done: int
    best_epoch: int
    best_score: float | None
    best_state: dict[str, torch.Tensor] | None
    history: list[dict[str, Any]]

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
            torch.manual_seed(rank_seed(self.training.seed, rank, epoch))

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
