"""Ensembles of per-domain models: a router splits the states into domains, one member model is
trained per domain, and inference routes each state to its member (the paper's "Ensemble of
networks", arXiv 2210.07410, with the ``autoencoder`` router).

Training (:func:`qeframe.learn.ensemble_training.train_ensemble`), for training set ``T`` with model input ``x`` ``(N, 2, d, d)``:

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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qeframe.errors import QeframeError, SpecError
from qeframe.io import atomic_write_json
from qeframe.learn.arrays import DatasetArrays, model_input
from qeframe.learn.checkpoints import build_model_from_config, load_state
from qeframe.learn.runs import (
    RunDir,
    atomic_save_tensors,
    load_model_weights,
    load_tensors,
    read_checkpoint_config,
)
from qeframe.plugin.interfaces import Router

if TYPE_CHECKING:
    from qeframe.config.specs import ExperimentSpec, RegistryFile
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
# checks before `qeframe run`


def validate_router(
    name: str, experiment: ExperimentSpec, registry_file: RegistryFile, registry: Registry
) -> list[str]:
    """Check the experiment's router and its params before anything is built; returns the extra
    datasets the ensemble needs (``[fit_on]`` or ``[]``). Errors name the ``registry.toml`` key."""
    spec = experiment.router
    if spec is None:
        return []
    key = f"experiments.{name}.router"
    registry.create("router", spec.name, spec.params, key=f"{key}.params", name_key=f"{key}.name")
    if spec.fit_on is None:
        return []
    if spec.fit_on not in registry_file.datasets:
        known = ", ".join(sorted(registry_file.datasets)) or "none"
        raise SpecError(f"{key}.fit_on: unknown dataset {spec.fit_on!r}; defined: {known}")
    return [spec.fit_on]
