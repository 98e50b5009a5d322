"""``qeframe run`` for an experiment with a router: train the ensemble, evaluate it, write its run.

:func:`run_ensemble` is the ensemble branch of :func:`qeframe.experiment.run_experiment`: it trains
the members (:func:`qeframe.learn.ensemble_training.train_ensemble`), wraps the ensemble in the prediction
layer, evaluates it on the test sets and writes ``results.json``, ``results.md``, the plots
(:func:`plot_router_scores` among them) and ``ensemble/ensemble.json`` with the test routing counts.
The ensemble itself (planning, routing, the model, its files) is :mod:`qeframe.learn.ensemble`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qeframe.evaluation.evaluate import evaluate
from qeframe.evaluation.plots import new_figure, plot_training, write_plots
from qeframe.evaluation.tables import results_markdown
from qeframe.io import atomic_write_json, atomic_write_text
from qeframe.learn.arrays import DatasetArrays
from qeframe.learn.ensemble import ensemble_dir, route_arrays, routing_counts, score_arrays
from qeframe.learn.ensemble_training import EnsembleResult, manifest, train_ensemble
from qeframe.learn.prediction import fit_for_run
from qeframe.learn.runs import RunDir
from qeframe.learn.train import TrainProgress

if TYPE_CHECKING:
    from qeframe.config.specs import ExperimentSpec
    from qeframe.plugin.interfaces import Router
    from qeframe.plugin.registry import Registry


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
    fig = new_figure(8, 2.6 * max(1, len(panels)))
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


@dataclass
class EnsembleOutcome:
    """What :func:`run_ensemble` hands back to :func:`qeframe.experiment.run_experiment`."""

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
