"""Evaluation runner: run the model, the gated model and the baselines on the test datasets.

Rows (predictors) of the results, in order: ``model`` (the trained network, when given), ``gated``
(the network behind the prediction layer, when a prediction configuration is given too), then the
baselines: ``ppt`` always, then the other ``evaluation.baselines`` (``baseline`` plugins). Every row
is scored by :func:`qeframe.evaluation.metrics.evaluate_arrays`, whose module documents the two
label conventions, the metrics and the ``results.json`` layout; :mod:`qeframe.evaluation.tables`
renders the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.evaluation.metrics import (
    GATED_ROW,
    MODEL_ROW,
    PPT_ROW,
    PROOF_ROW,
    calibration_block,
    evaluate_arrays,
)
from qeframe.quantum.ppt import npt_mask

if TYPE_CHECKING:
    import torch

    from qeframe.config.specs import EvaluationSpec
    from qeframe.learn.arrays import DatasetArrays
    from qeframe.learn.prediction import PredictionConfig
    from qeframe.plugin.registry import Registry


def baseline_names(evaluation: EvaluationSpec | None) -> list[str]:
    """Baseline rows in order: ``ppt`` first (always), then the other configured baselines."""
    names = [PPT_ROW]
    for name in evaluation.baselines if evaluation is not None else []:
        if name not in names:
            names.append(name)
    return names


def validate_baselines(
    evaluation: EvaluationSpec, registry: Registry, key: str = "evaluation.baselines"
) -> None:
    """Check that every configured baseline other than the built-in ``ppt`` row is a plugin."""
    for name in baseline_names(evaluation)[1:]:
        try:
            registry.create("baseline", name, {})
        except QeframeError as exc:
            raise QeframeError(f"{key}: {exc}") from None


def baseline_predictions(
    rho: np.ndarray, names: Sequence[str], registry: Registry | None = None, npt: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-cut predictions ``{name: (N, m) int8}`` of classical criteria on ``rho`` ``(N, d, d)``.

    ``ppt``: entangled iff the cut is NPT (:func:`npt_mask`) — exact on NPT cuts, blind to PPT
    entanglement. Other names are ``baseline`` plugins (``predict(rho)`` -> 1/0/-1).
    """
    if npt is None:
        npt = npt_mask(rho)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == PPT_ROW:
            out[name] = npt.astype(np.int8)
            continue
        if registry is None:
            from qeframe.plugin.registry import get_registry

            registry = get_registry()
        baseline = registry.create("baseline", name, {})
        out[name] = np.asarray(baseline.predict(rho), dtype=np.int8)  # type: ignore[attr-defined]
    return out


def model_probabilities(
    model: torch.nn.Module,
    rho: np.ndarray,
    *,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Entanglement probabilities ``sigmoid(f(rho))`` ``(N, m)`` float64 of a model, batched."""
    import torch

    from qeframe.learn.arrays import model_input, predict_logits

    x = model_input(rho, torch.device(device))
    logits = predict_logits(model, x, amp_dtype=amp_dtype)
    return torch.sigmoid(logits).double().cpu().numpy()


def evaluate(
    tests: Sequence[DatasetArrays],
    *,
    model: torch.nn.Module | None = None,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    evaluation: EvaluationSpec | None = None,
    registry: Registry | None = None,
    prediction: PredictionConfig | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (row ``model``, when given), the gated model (rows ``gated`` and
    ``gated-proof``, when ``prediction`` is given too) and the baselines on every test dataset.

    Row ``model``: entangled when the model's probability exceeds ``evaluation.threshold``
    (default 0.5). Rows ``gated`` / ``gated-proof``: :func:`qeframe.learn.prediction.predict` with
    ``prediction`` under the policies ``model`` / ``proof`` (one model pass, one proof pass).
    Returns the ``results.json`` dict (:mod:`qeframe.evaluation.metrics`).
    """
    from qeframe.learn.prediction import model_logits, predict

    threshold = evaluation.threshold if evaluation is not None else 0.5
    results: dict[str, Any] = {}
    for arrays in tests:
        npt = npt_mask(arrays.rho)
        predictions: dict[str, np.ndarray] = {}
        gated = None
        if model is not None:
            logits = model_logits(model, arrays.rho, device=device, amp_dtype=amp_dtype)
            gated = predict(
                prediction or _plain(logits.shape[1], threshold), logits, arrays.rho, npt, device=device
            )
            predictions[MODEL_ROW] = (gated.raw > threshold).astype(np.int8)
            if prediction is not None:
                predictions[GATED_ROW] = gated.answer_for("model")
                predictions[PROOF_ROW] = gated.answer_for("proof")
        predictions.update(baseline_predictions(arrays.rho, baseline_names(evaluation), registry, npt))
        results[arrays.name] = evaluate_arrays(arrays, predictions, npt)
        if (
            gated is not None
            and prediction is not None
            and prediction.calibrated
            and arrays.provenance is not None
        ):
            calibrated = prediction.calibration.apply(gated.logits)
            results[arrays.name]["calibration"] = calibration_block(
                arrays.labels, arrays.provenance, gated.raw, calibrated, npt
            )
    return results


def _plain(n_cuts: int, threshold: float) -> PredictionConfig:
    from qeframe.learn.prediction import PredictionConfig

    return PredictionConfig.uncalibrated(n_cuts, threshold, gate="none")
