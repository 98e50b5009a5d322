"""Training an ensemble of per-domain models: :func:`train_ensemble` (steps 1-4 of
:mod:`qeframe.learn.ensemble`'s docstring) and its manifest ``ensemble/ensemble.json``.

The router is fitted and saved, the training set routed and planned into members
(:func:`~qeframe.learn.ensemble.plan_members`), and each member trained with the single-model
:class:`~qeframe.learn.train.Trainer` in a run folder of its own (``ensemble/member-NN/``), so that
``--resume`` continues an interrupted member from its last checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qeframe.io import atomic_write_json
from qeframe.learn.arrays import DatasetArrays, model_input, resolve_device
from qeframe.learn.ensemble import (
    ENSEMBLE_FORMAT,
    EnsembleModel,
    ensemble_dir,
    load_router,
    member_domains,
    member_run,
    member_seed,
    plan_members,
    route_arrays,
    save_router,
    subset_arrays,
)
from qeframe.learn.runs import RunDir, read_checkpoint_config
from qeframe.learn.train import Trainer, TrainProgress
from qeframe.plugin.interfaces import Router

if TYPE_CHECKING:
    from qeframe.config.specs import ModelSpec, TrainingSpec
    from qeframe.plugin.registry import Registry


@dataclass
class MemberInfo:
    """One trained member: its domains, data and selection."""

    index: int
    domains: list[int]
    n_train: int
    n_validation: dict[str, int]
    seed: int
    best_epoch: int
    best_score: float | None
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    train_time_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "dir": f"member-{self.index:02d}",
            "domains": self.domains,
            "n_train": self.n_train,
            "n_validation": self.n_validation,
            "seed": self.seed,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "epochs_done": self.epochs_done,
            "train_time_s": self.train_time_s,
        }


@dataclass
class EnsembleResult:
    """What :func:`train_ensemble` returns."""

    model: EnsembleModel
    router: Router
    train_counts: np.ndarray
    domain_to_member: np.ndarray
    members: list[MemberInfo]
    router_fit_s: float
    train_s: float

    @property
    def n_members(self) -> int:
        return len(self.members)


def _log(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def train_ensemble(
    train: DatasetArrays,
    validation: Sequence[DatasetArrays] = (),
    *,
    router: Router,
    model_spec: ModelSpec,
    training: TrainingSpec,
    min_domain_size: int = 256,
    fit_on: DatasetArrays | None = None,
    registry: Registry | None = None,
    device: str | torch.device = "auto",
    run: RunDir | None = None,
    resume: bool = False,
    spec_hash: str = "",
    key: str = "experiment",
    progress: TrainProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> EnsembleResult:
    """Fit ``router``, route, plan the members and train one model per member (module docstring).

    Args:
        train, validation: the training set and validation sets (:class:`~qeframe.learn.train.DatasetArrays`).
        router: an unfitted router (a fitted one is refitted unless ``resume`` finds a saved one).
        model_spec, training: backbone and training spec of every member (seeds per member).
        min_domain_size: domains with fewer training samples are merged (:func:`plan_members`).
        fit_on: the dataset the router is fitted on (default ``train``).
        run: run folder; router, plan, members and the manifest are written under ``ensemble/``.
        resume: reuse the saved router/plan and finished members of ``run``; continue the others.
        progress, log: per-epoch progress of the members' trainers; one-line messages.
    """
    from qeframe.quantum.cuts import cut_names

    device = resolve_device(device)
    n_qubits = train.n_qubits
    edir = ensemble_dir(run) if run is not None else None
    t0 = time.perf_counter()
    if resume and edir is not None and (edir / "router.json").is_file():
        router = load_router(edir, registry)
        _log(log, f"ensemble: loaded the fitted router {router.name!r} from {edir}")
    else:
        source = fit_on if fit_on is not None else train
        x = model_input(source.rho, device)
        labels = torch.tensor(np.asarray(source.labels, np.int8), device=device)
        _log(log, f"ensemble: fitting router {router.name!r} on {source.name!r} ({len(source)} samples)")
        router.fit(x, labels)
        del x, labels
        if edir is not None:
            save_router(edir, router)
    router_fit_s = time.perf_counter() - t0

    plan_file = edir / "plan.json" if edir is not None else None
    domains = route_arrays(router, train, device)
    counts = np.bincount(domains, minlength=router.n_domains)
    if resume and plan_file is not None and plan_file.is_file():
        d2m = np.asarray(
            json.loads(plan_file.read_text(encoding="utf-8"))["domain_to_member"], dtype=np.int64
        )
    else:
        d2m = plan_members(counts, min_domain_size)
        if plan_file is not None:
            atomic_write_json(
                plan_file,
                {
                    "train_counts": counts.tolist(),
                    "min_domain_size": min_domain_size,
                    "domain_to_member": d2m.tolist(),
                },
            )
    val_members = [(v, d2m[route_arrays(router, v, device)]) for v in validation]
    member_of = d2m[domains]
    n_members = int(d2m.max()) + 1
    _log(
        log, f"ensemble: {router.n_domains} domains, training counts {counts.tolist()} -> {n_members} members"
    )

    models: list[torch.nn.Module] = []
    infos: list[MemberInfo] = []
    t1 = time.perf_counter()
    for j, doms in enumerate(member_domains(d2m)):
        sub = subset_arrays(train, member_of == j)
        val_subs = [subset_arrays(v, m == j) for v, m in val_members]
        val_subs = [v for v in val_subs if len(v) > 0]
        member_training = training.model_copy(update={"seed": member_seed(training.seed, j)})
        trainer = Trainer(
            model_spec,
            member_training,
            n_qubits,
            registry=registry,
            device=device,
            spec_hash=spec_hash,
            key=key,
        )
        mrun = member_run(run, j) if run is not None else None
        _log(
            log,
            f"member {j + 1}/{n_members}: domains {doms[0]}-{doms[-1]}, {len(sub)} training samples, "
            f"validation {', '.join(f'{v.name} {len(v)}' for v in val_subs) or 'none'}",
        )
        tm = time.perf_counter()
        best_json = mrun.checkpoints / "best.json" if mrun is not None else None
        if resume and best_json is not None and best_json.is_file():
            config = read_checkpoint_config(best_json)
            trainer.load_weights(best_json.parent / config["model_file"])
            model = trainer.model
            history = mrun.read_metrics()  # type: ignore[union-attr]
            best_epoch, best_score = int(config["best_epoch"]), config.get("best_score")
            done = max((int(r["epoch"]) for r in history), default=best_epoch)
            _log(log, f"member {j + 1}/{n_members}: finished earlier (epoch {best_epoch} selected), loaded")
        else:
            if resume and mrun is not None:
                trainer.resume(mrun)
            result = trainer.fit(sub, val_subs, run=mrun, progress=progress)
            model, best_epoch, best_score, done, history = (
                result.model,
                result.best_epoch,
                result.best_score,
                result.epochs_done,
                result.history,
            )
        models.append(model)
        infos.append(
            MemberInfo(
                index=j,
                domains=doms,
                n_train=len(sub),
                n_validation={v.name: len(v) for v in val_subs},
                seed=member_training.seed,
                best_epoch=best_epoch,
                best_score=best_score,
                epochs_done=done,
                history=history,
                train_time_s=time.perf_counter() - tm,
            )
        )
    train_s = time.perf_counter() - t1
    ensemble = EnsembleModel(router, models, d2m).to(device)
    result = EnsembleResult(ensemble, router, counts, d2m, infos, router_fit_s, train_s)
    if edir is not None:
        atomic_write_json(
            edir / "ensemble.json",
            manifest(result, model_spec, n_qubits, cut_names(n_qubits), min_domain_size),
        )
    return result


def manifest(
    result: EnsembleResult,
    model_spec: ModelSpec,
    n_qubits: int,
    cuts: list[str],
    min_domain_size: int,
    **extra: Any,
) -> dict[str, Any]:
    """The ``ensemble/ensemble.json`` document of a trained ensemble."""
    router = result.router
    edges = getattr(router, "edges", None)
    doc: dict[str, Any] = {
        "format": ENSEMBLE_FORMAT,
        "n_qubits": n_qubits,
        "cuts": cuts,
        "epoch": None,
        "backbone": model_spec.backbone,
        "params": model_spec.params,
        "router": {
            "name": router.name,
            "params": router.params.model_dump(mode="json"),
            "n_domains": router.n_domains,
        },
        "min_domain_size": min_domain_size,
        "train_counts": result.train_counts.tolist(),
        "domain_to_member": result.domain_to_member.tolist(),
        "members": [m.summary() for m in result.members],
        "router_fit_s": result.router_fit_s,
        "train_s": result.train_s,
    }
    if edges is not None:
        doc["router"]["edges"] = [
            v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in edges.tolist()
        ]
    doc.update(extra)
    return doc
