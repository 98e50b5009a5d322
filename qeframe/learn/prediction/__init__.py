"""Per-cut prediction of a trained model: the PPT gate, calibration and the three-valued answer.

The prediction layer wraps *any* model — a single backbone or an
:class:`~qeframe.learn.ensemble.EnsembleModel` — that maps the model input ``(B, 2, d, d)`` to
``(B, n_cuts)`` logits::

    rho ─▶ PPT sign test ── NPT ─▶ entangled (proof: npt)
                └─ PPT ─▶ separability proofs ── proved ─▶ separable (proof: pure / rank / support /
                               │                                     product / ball / spectrum)
                               └─ proof stages ── proved ─▶ entangled (proof: the stage's name)
                                        └─ not proved ─▶ model logit z ─▶ calibrated p ─▶ entangled / separable / unknown

With ``prediction.ppt_entangled = "proof"`` the last step never answers "entangled": where the
model would, the answer is "unknown" (:func:`~qeframe.learn.prediction.config.proof_policy`). Then a
separable PPT cut is never called entangled (every "entangled" is a verified proof) and the recall
on PPT-entangled cuts is that of the proof stages (:mod:`qeframe.learn.prediction.proofs`).
With ``prediction.separable_proofs`` (default none) a PPT cut that an exact rule proves separable
(:mod:`qeframe.quantum.separable_proofs`: rank rules, product, the Gurvits-Barnum ball, an absolutely
separable spectrum; the ``certified`` labeler's stages) is answered "separable" with that proof
under both policies, whatever the model says; a cut proved both ways raises
(:func:`~qeframe.learn.prediction.config.predict`).

1. **Gate** (``prediction.gate = "ppt"``). A cut with ``lambda_min(rho^{T_A}) < -tol`` is
   entangled (Peres, PRL 77, 1413 (1996)); ``tol`` is
   :func:`~qeframe.quantum.ppt.npt_tolerance` (``1e-10`` for trace-1 matrices of every supported
   size, far above the rounding bound of the test, so a flagged cut is NPT as stored and a
   separable state computed in float64 is not flagged). The test is the batched Cholesky
   :func:`~qeframe.quantum.ppt.npt_mask` — the same implementation as the labelers and the ``ppt``
   baseline. The answer on an NPT cut never depends on the model: a prediction never contradicts
   this proof.
2. **Calibration** of ``p = P(entangled)`` on PPT cuts, fitted on the PPT cuts with *proved* labels
   (:func:`qeframe.plugin.labels.certified_mask`) of the validation data:

   * ``platt`` — ``p = sigmoid(a_j z + b_j)`` per cut ``j`` (Platt, "Probabilistic outputs for
     support vector machines", 1999): a scale *and* a shift, because a network trained with
     "PPT counts as separable" or "as entangled" labels is biased on PPT cuts, which a temperature
     cannot undo. Two parameters per cut fit on a few hundred cuts; isotonic regression would
     need far more and gives flat steps that make the threshold choice below ill-posed.
   * ``temperature`` — ``p = sigmoid(z / T_j)`` (Guo, Pleiss, Sun, Weinberger, ICML 2017): keeps
     the ranking and the 0.5 point; for models that are sharp but unbiased.
   * ``none`` — the raw ``sigmoid(z)``, two-valued at ``evaluation.threshold`` (no abstention).

   A cut with fewer than ``min_class_count`` proved cuts of either class uses the parameters fitted
   on all cuts pooled. Parameters minimise the mean negative log-likelihood (Newton's method with a
   tiny ridge, so a separable class split stays finite).
3. **Thresholds** (calibrated methods only), chosen on the same proved PPT cuts, pooled over cuts:
   ``t_entangled`` is the smallest value with at most ``target_fpr`` of the proved *separable* PPT
   cuts at ``p >= t_entangled``; ``t_separable`` is the largest value below ``t_entangled`` with
   at most ``target_fnr`` of the proved *entangled* PPT cuts at ``p <= t_separable`` (two
   Neyman-Pearson tests). Both targets are rates within a class, so they do not depend on how many
   PPT-entangled cuts the validation data happen to hold; a fixed cut at ``p = 0.5`` would (the
   calibrated ``p`` carries the class mix of the calibration data), so none is imposed. Answer: entangled (1) if
   ``p >= t_entangled``, separable (0) if ``p <= t_separable``, else unknown (-1). The targets
   hold on the data they were fitted on (a test checks it); on new data they hold up to sampling
   error, which the evaluation measures (``ppt_detection`` in ``results.json``).

The fitted configuration is ``prediction.json`` in the run folder (JSON, no pickle); ``qeframe
classify`` reuses it. A run folder without it (trained before this layer existed, e.g.
``pretrained/``) still classifies with the gate and the raw probabilities, flagged uncalibrated.

Expected calibration error (:func:`expected_calibration_error`): with ``B = 15`` equal-width bins
of ``p``, ``ECE = sum_b (n_b / n) |mean(y in b) - mean(p in b)|`` (Naeini, Cooper, Hauskrecht,
AAAI 2015; Guo et al. 2017).

Example: a model that says "separable" on every cut cannot overrule the gate::

    >>> import numpy as np
    >>> from qeframe.learn.prediction import PredictionConfig, predict
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> rho = np.stack([np.outer(ghz, ghz), np.eye(8) / 8]).astype(complex)
    >>> logits = np.full((2, 3), -30.0)
    >>> out = predict(PredictionConfig.uncalibrated(3), logits, rho)
    >>> out.answer_names()[0], out.proof()[0]
    (['entangled', 'entangled', 'entangled'], ['npt', 'npt', 'npt'])
    >>> out.answer_names()[1], out.proof()[1]
    (['separable', 'separable', 'separable'], [None, None, None])
"""

from __future__ import annotations

from qeframe.learn.prediction.calibration import (
    ECE_BINS,
    Calibration,
    answers_from_probabilities,
    choose_thresholds,
    expected_calibration_error,
    fit_calibration,
    reliability_bins,
)
from qeframe.learn.prediction.config import (
    ANSWER_NAMES,
    PPT_ENTANGLED_POLICIES,
    PREDICTION_FORMAT,
    PROOF_SEARCHES,
    Prediction,
    PredictionConfig,
    check_policy,
    check_search,
    json_float,
    predict,
    proof_policy,
)
from qeframe.learn.prediction.fit import (
    PREDICTION_FILE,
    calibration_pairs,
    fit_for_run,
    fit_prediction,
    load_prediction,
    model_logits,
    prediction_path,
    write_prediction,
)
from qeframe.learn.prediction.proofs import (
    PROOF_STAGES,
    SCREENED_STAGES,
    WITNESS_MARGIN,
    ppt_gate,
    proof_stages,
)

__all__ = [
    "ANSWER_NAMES",
    "ECE_BINS",
    "PPT_ENTANGLED_POLICIES",
    "PREDICTION_FILE",
    "PREDICTION_FORMAT",
    "PROOF_SEARCHES",
    "PROOF_STAGES",
    "SCREENED_STAGES",
    "WITNESS_MARGIN",
    "Calibration",
    "Prediction",
    "PredictionConfig",
    "answers_from_probabilities",
    "calibration_pairs",
    "check_policy",
    "check_search",
    "choose_thresholds",
    "expected_calibration_error",
    "fit_calibration",
    "fit_for_run",
    "fit_prediction",
    "json_float",
    "load_prediction",
    "model_logits",
    "ppt_gate",
    "predict",
    "prediction_path",
    "proof_policy",
    "proof_stages",
    "reliability_bins",
    "write_prediction",
]
