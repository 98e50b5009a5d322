"""Ensembles of per-domain models: a router splits the states into domains, one member model is
trained per domain, and inference routes each state to its member (the paper's "Ensemble of
networks", arXiv 2210.07410, with the ``autoencoder`` router).

Training (:func:`train_ensemble`), for training set ``T`` with model input ``x`` ``(N, 2, d, d)``:

1. **Fit the router** on ``x`` of the ``fit_on`` dataset (default ``T``) with its labels:
   ``router.fit(x, labels)``. (The ``autoencoder`` router learns from the samples separable on every
   cut; ``pt_spectrum`` needs nothing or learns quantile edges.)
2. **Route** ``T``: ``domain = router.route(x)`` ``(N,)`` in ``0 .. K-1``, ``c_k`` samples in domain ``k``.
3. **Plan the members** (:func:`plan_members`): domains with ``c_k >= min_domain_size`` become
   members on their own; a smaller domain is merged into its nearest non-empty neighbour, so that no
   member is trained on a handful of samples. Precisely, start with one group per non-empty domain,
   in domain order; while there is more than one group and some group holds fewer than
   ``min_domain_size`` samples, take the smallest such group (the first on ties) and merge it with
   the adjacent group that is nearest in domain index (then the one with fewer samples, then the
   lower one); the merged group covers the whole index range between them. Finally every domain is
   assigned to the group whose range contains it, or else to the nearest group (the lower one on
   ties) — empty domains get a member too, for states routed there at inference. Members are
   numbered in domain order: member ``j`` covers a contiguous range of domains, i.e. of the
   router's score.
4. **Train each member** with the single-model :class:`~qeframe.learn.train.Trainer` on the training
   samples routed to it, validated on the samples of each validation set routed to it (none: the
   last epoch is kept), with the experiment's backbone and training spec except the seed, which is
   ``SeedSequence([training.seed, j])``'s first 63-bit word for member ``j``. Members train one after
   the other; together they see every training sample once per epoch, so the ensemble costs about
   one single-model run (plus the router).

Inference (:class:`EnsembleModel`, a ``torch.nn.Module`` that evaluation and ``classify`` use like a
single model): ``logits[i] = member[domain_to_member[router.route(x)[i]]](x[i])``, one batched call
per member on the states routed to it.

Run folder (``runs/<experiment>/<run-id>/``, besides the usual files)::

    ensemble/
        router.safetensors, router.json   the fitted router: tensors / {"name", "params", "config"}
        plan.json                          training counts per domain and domain -> member map
        member-00/ ...                     one folder per member, as a run folder: metrics.jsonl,
                                           checkpoints/ (epochs, best.safetensors, best.json)
        ensemble.json                      the manifest (written last): router, plan, members,
                                           per-test-set routing counts
    plots/router_scores.png                histogram of the router's score per test family
    plots/training_member-00.png ...       each member's training curves

``--resume`` continues such a run: the saved router and plan are reused, finished members are
loaded, and an interrupted member continues from its last checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qeframe.errors import QeframeError, SpecError
from qeframe.io import atomic_write_json
from qeframe.learn.runs import (
    RunDir,
    atomic_save_tensors,
    load_model_weights,
    load_tensors,
    read_checkpoint_config,
)
from qeframe.learn.train import (
    DatasetArrays,
    Trainer,
    TrainProgress,
    build_model_from_config,
    load_state,
    model_input,
    resolve_device,
)
from qeframe.plugin.interfaces import Router

if TYPE_CHECKING:
    from qeframe.config.specs import ExperimentSpec, ModelSpec, RegistryFile, TrainingSpec
    from qeframe.plugin.registry import Registry

ENSEMBLE_FORMAT = "qeframe-ensemble/1"
ENSEMBLE_DIR = "ensemble"
#: Samples routed per chunk when routing a whole dataset (bounds the device copy of the input).
_ROUTE_CHUNK = 65536


# --------------------------------------------------------------------------------------------------
# planning: domains -> members


def plan_members(counts: Sequence[int] | np.ndarray, min_domain_size: int) -> np.ndarray:
    """The member of every domain, ``(K,)`` int64, from the training counts per domain ``(K,)``.

    Small domains are merged as described in the module docstring (step 3); members are numbered
    ``0 .. n_members-1`` in domain order and each covers a contiguous range of domains. Raises
    :class:`QeframeError` when every domain is empty.

    Example::

        >>> plan_members([500, 10, 0, 0, 300, 0], min_domain_size=100).tolist()
        [0, 0, 0, 1, 1, 1]
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError(f"counts must be a non-empty 1-D array of non-negative integers, got {counts!r}")
    # a group: [first domain, last domain, samples]
    groups = [[k, k, int(c)] for k, c in enumerate(counts) if c > 0]
    if not groups:
        raise QeframeError("ensemble: no training sample was routed to any domain (empty training set?)")
    while len(groups) > 1:
        small = [i for i, g in enumerate(groups) if g[2] < min_domain_size]
        if not small:
            break
        i = min(small, key=lambda i: (groups[i][2], i))
        candidates = []
        if i > 0:
            candidates.append((groups[i][0] - groups[i - 1][1], groups[i - 1][2], i - 1))
        if i < len(groups) - 1:
            candidates.append((groups[i + 1][0] - groups[i][1], groups[i + 1][2], i + 1))
        j = min(candidates)[2]  # nearest, then fewer samples, then lower index
        a, b = min(i, j), max(i, j)
        groups[a] = [groups[a][0], groups[b][1], groups[a][2] + groups[b][2]]
        del groups[b]
    starts = np.array([g[0] for g in groups])
    ends = np.array([g[1] for g in groups])
    k = np.arange(counts.size)[:, None]
    distance = np.where(k < starts, starts - k, np.where(k > ends, k - ends, 0))  # (K, n_groups)
    return np.argmin(distance, axis=1).astype(np.int64)  # argmin takes the first (lower) on ties


def member_domains(domain_to_member: np.ndarray) -> list[list[int]]:
    """The domains of every member: ``[[domains of member 0], ...]``."""
    d2m = np.asarray(domain_to_member)
    return [np.flatnonzero(d2m == j).tolist() for j in range(int(d2m.max()) + 1)]


def member_seed(seed: int, member: int) -> int:
    """The training seed of member ``member``: first 63-bit word of ``SeedSequence([seed, member])``."""
    return int(np.random.SeedSequence([seed, member]).generate_state(1, np.uint64)[0] >> np.uint64(1))


# --------------------------------------------------------------------------------------------------
# routing datasets


def subset_arrays(arrays: DatasetArrays, mask: np.ndarray) -> DatasetArrays:
    """The samples of ``arrays`` where ``mask`` (``(N,)`` bool) is true, same name and cuts."""
    mask = np.asarray(mask, dtype=bool)
    assert arrays.ground_truth is not None and arrays.family is not None and arrays.pptes is not None
    return DatasetArrays(
        name=arrays.name,
        rho=arrays.rho[mask],
        labels=arrays.labels[mask],
        ground_truth=arrays.ground_truth[mask],
        family=arrays.family[mask],
        pptes=arrays.pptes[mask],
        cuts=list(arrays.cuts),
        provenance=None if arrays.provenance is None else arrays.provenance[mask],
    )


def route_arrays(router: Router, arrays: DatasetArrays, device: torch.device | str = "cpu") -> np.ndarray:
    """``router.route`` of every sample of ``arrays``: ``(N,)`` int64 (numpy), chunked on ``device``."""
    device = torch.device(device)
    out = []
    for start in range(0, len(arrays), _ROUTE_CHUNK):
        x = model_input(arrays.rho[start : start + _ROUTE_CHUNK], device)
        out.append(router.route(x).cpu().numpy())
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def score_arrays(
    router: Router, arrays: DatasetArrays, device: torch.device | str = "cpu"
) -> np.ndarray | None:
    """The router's score ``(N,)`` float64 when it has a ``scores(x)`` method, else ``None``."""
    scores = getattr(router, "scores", None)
    if scores is None:
        return None
    device = torch.device(device)
    out = []
    for start in range(0, len(arrays), _ROUTE_CHUNK):
        out.append(
            scores(model_input(arrays.rho[start : start + _ROUTE_CHUNK], device)).double().cpu().numpy()
        )
    return np.concatenate(out) if out else np.zeros(0)


# --------------------------------------------------------------------------------------------------
# the ensemble as one model


class EnsembleModel(torch.nn.Module):
    """Router + members as one model: ``(B, 2, d, d)`` -> ``(B, n_cuts)`` float32 logits.

    Args:
        router: a fitted router (not a module: its state is not in this module's ``state_dict``).
        members: one model per member, each ``(B, 2, d, d)`` -> ``(B, n_cuts)``.
        domain_to_member: ``(K,)`` long, the member of every router domain.
    """

    def __init__(
        self, router: Router, members: Sequence[torch.nn.Module], domain_to_member: torch.Tensor | np.ndarray
    ):
        super().__init__()
        self.router = router
        self.members = torch.nn.ModuleList(members)
        d2m = torch.as_tensor(np.asarray(domain_to_member), dtype=torch.long)
        if d2m.numel() != router.n_domains:
            raise QeframeError(
                f"ensemble: {d2m.numel()} domain entries for a router with {router.n_domains} domains"
            )
        if d2m.numel() and (int(d2m.min()) < 0 or int(d2m.max()) >= len(self.members)):
            raise QeframeError(
                f"ensemble: domain_to_member refers to members outside 0..{len(self.members) - 1}"
            )
        self.register_buffer("domain_to_member", d2m, persistent=False)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def member_index(self, x: torch.Tensor) -> torch.Tensor:
        """The member ``(B,)`` long that handles each sample (on ``x.device``)."""
        return self.domain_to_member.to(x.device)[self.router.route(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        member = self.member_index(x)
        out: torch.Tensor | None = None
        for j, model in enumerate(self.members):
            idx = torch.nonzero(member == j).squeeze(1)
            if idx.numel() == 0:
                continue
            logits = model(x[idx]).float()
            if out is None:
                out = torch.zeros((x.shape[0], logits.shape[1]), dtype=torch.float32, device=x.device)
            out[idx] = logits
        if out is None:  # empty batch
            from qeframe.quantum.cuts import n_cuts

            out = torch.zeros((x.shape[0], n_cuts(int(x.shape[-1]).bit_length() - 1)), device=x.device)
        return out


# --------------------------------------------------------------------------------------------------
# saving and loading


def ensemble_dir(run: RunDir) -> Path:
    return run.path / ENSEMBLE_DIR


def member_run(run: RunDir, member: int) -> RunDir:
    """The run folder of one member, ``ensemble/member-NN/`` (created with its ``checkpoints/``)."""
    path = ensemble_dir(run) / f"member-{member:02d}"
    (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    return RunDir(path)


def save_router(directory: Path, router: Router) -> None:
    """``router.safetensors`` (the state's tensors) then ``router.json`` (name, params, JSON config)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = router.state_dict()
    atomic_save_tensors(
        directory / "router.safetensors", state["tensors"], {"format": ENSEMBLE_FORMAT, "kind": "router"}
    )
    atomic_write_json(
        directory / "router.json",
        {
            "format": ENSEMBLE_FORMAT,
            "name": router.name,
            "params": router.params.model_dump(mode="json"),
            "config": state["config"],
        },
    )


def load_router(directory: Path, registry: Registry | None = None) -> Router:
    """The router saved by :func:`save_router` in ``directory`` (created through the registry)."""
    from qeframe.plugin.registry import get_registry

    registry = registry if registry is not None else get_registry()
    path = directory / "router.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QeframeError(f"router file {str(path)!r} not found") from None
    except json.JSONDecodeError as exc:
        raise QeframeError(f"router file {str(path)!r} is damaged: {exc}") from None
    router = registry.create("router", meta["name"], meta.get("params") or {}, key=f"{path}.params")
    assert isinstance(router, Router)
    tensors = load_tensors(directory / "router.safetensors")
    router.load_state_dict({"tensors": tensors, "config": meta["config"]})
    return router


def load_ensemble(
    run: RunDir | str | Path, registry: Registry | None = None, device: torch.device | str = "cpu"
) -> tuple[EnsembleModel, dict[str, Any]]:
    """The trained ensemble of a run folder and its manifest (``ensemble/ensemble.json``).

    The manifest has ``n_qubits`` and ``cuts`` like a checkpoint config, so ``classify`` can treat
    it like one. Raises :class:`QeframeError` when the run has no finished ensemble.
    """
    from qeframe.plugin.registry import get_registry

    run = run if isinstance(run, RunDir) else RunDir.open(run, create=False)
    registry = registry if registry is not None else get_registry()
    path = ensemble_dir(run) / "ensemble.json"
    if not path.is_file():
        raise QeframeError(
            f"run folder {str(run.path)!r} has no finished ensemble (no {ENSEMBLE_DIR}/ensemble.json)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QeframeError(f"ensemble manifest {str(path)!r} is damaged: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ENSEMBLE_FORMAT:
        raise QeframeError(f"{str(path)!r} is not a qeframe ensemble manifest ({ENSEMBLE_FORMAT})")
    router = load_router(ensemble_dir(run), registry)
    device = torch.device(device)
    members = []
    for info in manifest["members"]:
        best = ensemble_dir(run) / info["dir"] / "checkpoints" / "best.json"
        config = read_checkpoint_config(best)
        model = build_model_from_config(config, registry, device)
        weights = best.parent / config["model_file"]
        load_state(model, load_model_weights(weights, config, device), str(weights))
        members.append(model)
    return EnsembleModel(router, members, manifest["domain_to_member"]).to(device), manifest


# --------------------------------------------------------------------------------------------------
# training


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


def routing_counts(
    model: EnsembleModel, datasets: Sequence[DatasetArrays], device: torch.device | str = "cpu"
) -> dict[str, dict[str, list[int]]]:
    """Samples per router domain, per dataset and family: ``{dataset: {family: [count per domain]}}``."""
    out: dict[str, dict[str, list[int]]] = {}
    for arrays in datasets:
        domains = route_arrays(model.router, arrays, device)
        family = np.asarray(arrays.family)
        block = {"(all)": np.bincount(domains, minlength=model.router.n_domains).tolist()}
        for fam in dict.fromkeys(family.tolist()):
            block[str(fam)] = np.bincount(domains[family == fam], minlength=model.router.n_domains).tolist()
        out[arrays.name] = block
    return out


# --------------------------------------------------------------------------------------------------
# plot


def plot_router_scores(
    router: Router,
    datasets: Sequence[DatasetArrays],
    path: str | Path,
    device: torch.device | str = "cpu",
    train: DatasetArrays | None = None,
) -> Path:
    """Histogram of the router's score per family, one panel per dataset (``plots/router_scores.png``).

    With ``train``, a first panel splits the training set into samples separable on every cut and
    the rest (what the autoencoder learns from, and what it must tell apart). Domain edges are drawn
    as dotted lines. A router without ``scores`` is shown by its domain index instead. Bins are
    logarithmic when every score is positive (the autoencoder's ``M``), linear otherwise.
    """
    from qeframe.evaluation.plots import _figure

    path = Path(path)
    panels: list[tuple[str, dict[str, np.ndarray]]] = []
    has_scores = getattr(router, "scores", None) is not None

    def values(arrays: DatasetArrays) -> np.ndarray:
        s = score_arrays(router, arrays, device) if has_scores else None
        return s if s is not None else route_arrays(router, arrays, device).astype(np.float64)

    if train is not None:
        s = values(train)
        sep = (np.asarray(train.labels) == 0).all(axis=1)
        panels.append((f"{train.name} (train)", {"separable on every cut": s[sep], "other": s[~sep]}))
    for arrays in datasets:
        s = values(arrays)
        family = np.asarray(arrays.family)
        panels.append((arrays.name, {str(f): s[family == f] for f in dict.fromkeys(family.tolist())}))
    everything = np.concatenate([v for _, groups in panels for v in groups.values()] or [np.zeros(0)])
    everything = everything[np.isfinite(everything)]
    log_scale = has_scores and everything.size > 0 and bool((everything > 0).all())
    if everything.size == 0:
        bins = np.linspace(0, 1, 41)
    elif not has_scores:
        bins = np.arange(router.n_domains + 1) - 0.5
    elif log_scale:
        lo, hi = float(everything.min()), float(everything.max())
        bins = np.geomspace(lo, hi * (1 + 1e-9) if hi > lo else lo * 10, 51)
    else:
        lo, hi = float(everything.min()), float(everything.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 51)
    fig = _figure(8, 2.6 * max(1, len(panels)))
    axes = fig.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    edges = getattr(router, "edges", None)
    for ax, (title, groups) in zip(axes, panels):
        for label, v in groups.items():
            v = v[np.isfinite(v)]
            if v.size:
                ax.hist(v, bins=bins, histtype="step", linewidth=1.4, label=f"{label} (n={v.size})")
        if has_scores and edges is not None:
            for e in edges.tolist():
                if math.isfinite(e) and (not log_scale or e > 0) and bins[0] <= e <= bins[-1]:
                    ax.axvline(e, color="grey", ls=":", lw=0.8)
        if log_scale:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("samples")
        if any(v.size for v in groups.values()):
            ax.legend(fontsize=7)
    axes[-1].set_xlabel(f"router {router.name!r} score" if has_scores else f"router {router.name!r} domain")
    fig.suptitle(f"router {router.name!r}: score per family (dotted: domain edges)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


# --------------------------------------------------------------------------------------------------
# `qeframe run` for experiments with a router


def validate_router(
    name: str, experiment: ExperimentSpec, registry_file: RegistryFile, registry: Registry
) -> list[str]:
    """Check the experiment's router and its params before anything is built; returns the extra
    datasets the ensemble needs (``[fit_on]`` or ``[]``). Errors name the ``registry.toml`` key."""
    spec = experiment.router
    if spec is None:
        return []
    key = f"experiments.{name}.router"
    registry.create("router", spec.name, spec.params, key=f"{key}.params")
    if spec.fit_on is None:
        return []
    if spec.fit_on not in registry_file.datasets:
        known = ", ".join(sorted(registry_file.datasets)) or "none"
        raise SpecError(f"{key}.fit_on: unknown dataset {spec.fit_on!r}; defined: {known}")
    return [spec.fit_on]


@dataclass
class EnsembleOutcome:
    """What :func:`run_ensemble` hands back to the command line."""

    results: dict[str, Any]
    heading: str
    result: EnsembleResult


def run_ensemble(
    experiment: str,
    spec: ExperimentSpec,
    datasets: Mapping[str, DatasetArrays],
    run: RunDir,
    *,
    registry: Registry,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    spec_hash: str,
    resume: bool = False,
    progress: TrainProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> EnsembleOutcome:
    """Train, evaluate and write an ensemble experiment into ``run`` (``spec.router`` is set).

    ``datasets`` holds every dataset of the experiment, including ``router.fit_on``. Writes the
    ``ensemble/`` folder, ``results.json``, ``results.md`` and the plots, and adds the router to
    ``plugins.json``'s components.
    """
    from qeframe.evaluation.evaluate import evaluate, results_markdown
    from qeframe.evaluation.plots import plot_training, write_plots
    from qeframe.io import atomic_write_text
    from qeframe.learn.prediction import fit_for_run

    assert spec.router is not None
    key = f"experiments.{experiment}"
    router = registry.create("router", spec.router.name, spec.router.params, key=f"{key}.router.params")
    if run.plugins_file.is_file():
        record = json.loads(run.plugins_file.read_text(encoding="utf-8"))
        info = registry.info("router", spec.router.name)
        record.setdefault("components", {})["router"] = {
            "name": spec.router.name,
            "plugin": info.plugin,
            "distribution": info.distribution,
            "version": info.version,
        }
        atomic_write_json(run.plugins_file, record)
    result = train_ensemble(
        datasets[spec.train],
        [datasets[n] for n in spec.validation],
        router=router,  # type: ignore[arg-type]
        model_spec=spec.model,
        training=spec.training,
        min_domain_size=spec.router.min_domain_size,
        fit_on=datasets[spec.router.fit_on] if spec.router.fit_on else None,
        registry=registry,
        device=device,
        run=run,
        resume=resume,
        spec_hash=spec_hash,
        key=key,
        progress=progress,
        log=log,
    )
    # the prediction layer wraps the ensemble as it wraps any model: gate, calibration, thresholds
    prediction = fit_for_run(run, result.model, spec, datasets, device=device, amp_dtype=amp_dtype)
    tests = [datasets[n] for n in spec.test]
    results = evaluate(
        tests,
        model=result.model,
        device=device,
        amp_dtype=amp_dtype,
        evaluation=spec.evaluation,
        registry=registry,
        prediction=prediction,
    )
    atomic_write_json(run.results_json, results, sort_keys=False)
    heading = (
        f"Results of {experiment} — run {run.run_id} (ensemble of {result.n_members} members, "
        f"router {result.router.name!r}, {result.router.n_domains} domains; gated: {prediction.describe()})"
    )
    atomic_write_text(run.results_md, results_markdown(results, heading))
    write_plots(run.plots, [], results, prediction.fit if prediction.calibrated else None)
    for member in result.members:
        if member.history:
            plot_training(member.history, run.plots / f"training_member-{member.index:02d}.png")
    plot_router_scores(
        result.router, tests, run.plots / "router_scores.png", device, train=datasets[spec.train]
    )
    doc = manifest(
        result,
        spec.model,
        datasets[spec.train].n_qubits,
        list(datasets[spec.train].cuts),
        spec.router.min_domain_size,
        test_routing=routing_counts(result.model, tests, device),
    )
    atomic_write_json(ensemble_dir(run) / "ensemble.json", doc)
    return EnsembleOutcome(results, heading, result)
