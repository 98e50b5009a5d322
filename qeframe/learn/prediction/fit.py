"""Fitting the prediction layer on validation data, and the run folder's ``prediction.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.learn.prediction.calibration import (
    _sigmoid,
    answers_from_probabilities,
    choose_thresholds,
    expected_calibration_error,
    fit_calibration,
    reliability_bins,
)
from qeframe.learn.prediction.config import PredictionConfig, check_policy, check_search, check_separable
from qeframe.learn.prediction.proofs import _check_proofs, ppt_gate
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, UNKNOWN, certified_mask

if TYPE_CHECKING:
    import torch

    from qeframe.config.specs import PredictionSpec
    from qeframe.learn.arrays import DatasetArrays
    from qeframe.learn.runs import RunDir

PREDICTION_FILE = "prediction.json"


def model_logits(
    model: torch.nn.Module, rho: np.ndarray, *, device: Any = "cpu", amp_dtype: Any = None
) -> np.ndarray:
    """Logits ``(N, n_cuts)`` float64 of any model (a backbone or an ensemble), batched."""
    import torch

    from qeframe.learn.arrays import model_input, predict_logits

    x = model_input(rho, torch.device(device))
    return predict_logits(model, x, amp_dtype=amp_dtype).double().cpu().numpy()


# --------------------------------------------------------------------------------------------------
# fitting on validation data


def calibration_pairs(arrays: DatasetArrays, npt: np.ndarray | None = None) -> np.ndarray:
    """``(N, n_cuts)`` bool: the PPT cuts of ``arrays`` whose label is proved (calibration data)."""
    npt = ppt_gate(arrays.rho) if npt is None else npt
    return certified_mask(arrays.labels, arrays.provenance) & ~npt


def _fit_calibration(
    spec: PredictionSpec,
    logits: Sequence[np.ndarray],
    datasets: Sequence[DatasetArrays],
    threshold: float,
    n_cuts: int | None,
) -> PredictionConfig:
    """The calibration and thresholds part of :func:`fit_prediction` (every return path)."""
    if n_cuts is None:
        if not logits:
            raise ValueError("fit_prediction: give n_cuts when there are no calibration datasets")
        n_cuts = int(np.asarray(logits[0]).shape[1])
    if spec.calibration == "none":
        return PredictionConfig.uncalibrated(n_cuts, threshold, spec.gate, note="calibration = none")
    if not datasets:
        return PredictionConfig.uncalibrated(
            n_cuts, threshold, spec.gate, note="not calibrated: no calibration datasets (validation is empty)"
        )
    z_parts, y_parts, m_parts = [], [], []
    per_dataset: dict[str, Any] = {}
    for z, arrays in zip(logits, datasets):
        mask = calibration_pairs(arrays)
        z_parts.append(np.asarray(z, float))
        y_parts.append(np.asarray(arrays.labels))
        m_parts.append(mask)
        y = np.asarray(arrays.labels)[mask]
        per_dataset[arrays.name] = {
            "ppt_entangled": int((y == 1).sum()),
            "ppt_separable": int((y == 0).sum()),
        }
    z_all, y_all, m_all = np.concatenate(z_parts), np.concatenate(y_parts), np.concatenate(m_parts)
    fit: dict[str, Any] = {"datasets": per_dataset}
    try:
        calibration = fit_calibration(z_all, y_all, m_all, spec.calibration, spec.min_class_count)
    except QeframeError as exc:
        config = PredictionConfig.uncalibrated(n_cuts, threshold, spec.gate, note=f"not calibrated: {exc}")
        config.fit = fit
        return config
    p_before = _sigmoid(z_all)[m_all]
    p_after = calibration.apply(z_all)[m_all]
    y = (y_all[m_all] == 1).astype(int)
    t_sep, t_ent = choose_thresholds(p_after, y, spec.target_fpr, spec.target_fnr)
    answers = answers_from_probabilities(p_after, t_sep, t_ent)
    fit.update(
        n_ppt_entangled=int(y.sum()),
        n_ppt_separable=int((1 - y).sum()),
        ece_before=expected_calibration_error(p_before, y),
        ece_after=expected_calibration_error(p_after, y),
        reliability_before=reliability_bins(p_before, y),
        reliability_after=reliability_bins(p_after, y),
        fpr=_rate(answers[y == 0] == ENTANGLED),
        fnr=_rate(answers[y == 1] == SEPARABLE),
        recall=_rate(answers[y == 1] == ENTANGLED),
        abstention=_rate(answers == UNKNOWN),
    )
    return PredictionConfig(
        gate=spec.gate,
        calibration=calibration,
        t_separable=t_sep,
        t_entangled=t_ent,
        calibrated=True,
        target_fpr=spec.target_fpr,
        target_fnr=spec.target_fnr,
        fit=fit,
    )


def fit_prediction(
    spec: PredictionSpec,
    logits: Sequence[np.ndarray],
    datasets: Sequence[DatasetArrays],
    *,
    threshold: float = 0.5,
    n_cuts: int | None = None,
) -> PredictionConfig:
    """Fit calibration and thresholds on the proved PPT cuts of ``datasets`` (model ``logits`` of each).

    With ``spec.calibration == "none"`` the result is :meth:`PredictionConfig.uncalibrated` at
    ``threshold``. When the data hold too few proved PPT cuts of a class the calibration cannot be
    fitted: the result is uncalibrated too, with a note saying why (a run never fails here). The
    proof stages ``spec.proofs`` and the policy ``spec.ppt_entangled`` are recorded in the result and
    applied by :func:`predict`. The calibration and thresholds are fitted the same way under both
    policies (the policy ``proof`` only withholds the unproved "entangled" answers).
    """
    config = _fit_calibration(spec, logits, datasets, threshold, n_cuts)
    config.proofs = _check_proofs(spec.proofs)
    config.ppt_entangled = check_policy(spec.ppt_entangled)
    config.proof_search = check_search(spec.proof_search)
    config.proposer = spec.proposer
    config.separable_proofs = check_separable(spec.separable_proofs)
    return config


def _rate(hits: np.ndarray) -> float | None:
    hits = np.asarray(hits)
    return float(hits.mean()) if hits.size else None


# --------------------------------------------------------------------------------------------------
# the run folder


def prediction_path(run: RunDir | Path) -> Path:
    return Path(getattr(run, "path", run)) / PREDICTION_FILE


def write_prediction(run: RunDir | Path, config: PredictionConfig) -> Path:
    """``prediction.json`` in the run folder (atomic)."""
    from qeframe.io import atomic_write_json

    path = prediction_path(run)
    atomic_write_json(path, config.to_dict(), sort_keys=False)
    return path


def load_prediction(run: RunDir | Path, n_cuts: int, threshold: float = 0.5) -> PredictionConfig:
    """The run's ``prediction.json``; without one (an older run), the PPT gate with raw
    probabilities two-valued at ``threshold``, flagged uncalibrated. A damaged file raises
    :class:`QeframeError` (one line)."""
    path = prediction_path(run)
    if not path.is_file():
        return PredictionConfig.uncalibrated(
            n_cuts,
            threshold,
            "ppt",
            note=f"the run folder has no {PREDICTION_FILE}: probabilities are the raw model output",
        )
    try:
        config = PredictionConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, QeframeError) as exc:
        raise QeframeError(f"prediction file {str(path)!r} is damaged: {exc}") from None
    if len(config.calibration.a) != n_cuts or len(config.calibration.b) != n_cuts:
        raise QeframeError(
            f"prediction file {str(path)!r} is damaged: calibration for {len(config.calibration.a)} cuts, the model has {n_cuts}"
        )
    return config


def fit_for_run(
    run: RunDir,
    model: torch.nn.Module,
    spec: Any,
    datasets: Any,
    *,
    device: Any = "cpu",
    amp_dtype: Any = None,
) -> PredictionConfig:
    """Fit the prediction layer of a trained ``model`` for experiment ``spec`` (an
    :class:`~qeframe.config.specs.ExperimentSpec`) on ``datasets[name]`` for the ``calibrate_on`` names
    (default: the validation sets), write ``prediction.json`` and return the configuration.

    Used by ``qeframe run`` for single models and ensembles alike (any module mapping the model
    input to logits).
    """
    names = spec.prediction.calibrate_on if spec.prediction.calibrate_on is not None else spec.validation
    arrays = [datasets[name] for name in names]
    logits = [model_logits(model, a.rho, device=device, amp_dtype=amp_dtype) for a in arrays]
    config = fit_prediction(
        spec.prediction,
        logits,
        arrays,
        threshold=spec.evaluation.threshold,
        n_cuts=datasets[spec.train].n_cuts,
    )
    config.fit["calibrate_on"] = list(names)
    write_prediction(run, config)
    return config
