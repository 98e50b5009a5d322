"""Per-cut prediction of a trained model: the PPT gate, calibration and the three-valued answer.

The prediction layer wraps *any* model — a single backbone or an
:class:`~qeframe.learn.ensemble.EnsembleModel` — that maps the model input ``(B, 2, d, d)`` to
``(B, n_cuts)`` logits::

    rho ─▶ PPT sign test ── NPT ─▶ entangled (proof: npt)
                └─ PPT ─▶ model logit z ─▶ calibrated p ─▶ entangled / separable / unknown

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

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, UNKNOWN, certified_mask
from qeframe.quantum.ppt import npt_mask, npt_tolerance

if TYPE_CHECKING:
    import torch

    from qeframe.config.specs import PredictionSpec
    from qeframe.learn.arrays import DatasetArrays
    from qeframe.learn.runs import RunDir

PREDICTION_FORMAT = "qeframe-prediction/1"
PREDICTION_FILE = "prediction.json"
ECE_BINS = 15
#: Answer names of the int8 codes 1 / 0 / -1.
ANSWER_NAMES = {ENTANGLED: "entangled", SEPARABLE: "separable", UNKNOWN: "unknown"}
_RIDGE = 1e-6
_LOGIT_CLIP = 60.0


# --------------------------------------------------------------------------------------------------
# the gate


def ppt_gate(rho: np.ndarray) -> np.ndarray:
    """``(N, d, d)`` -> ``(N, n_cuts)`` bool: True where the cut is NPT (entangled with proof).

    Uses :func:`~qeframe.quantum.ppt.npt_mask` with ``tol = npt_tolerance(d, trace)``, ``trace``
    the largest trace in the batch (1 for validated density matrices; a matrix scaled by ``c``
    gets ``c`` times the tolerance, so the answer does not depend on the normalisation).
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    if rho.shape[0] == 0:
        return npt_mask(rho)
    trace = float(np.max(np.trace(rho, axis1=1, axis2=2).real))
    return npt_mask(rho, tol=npt_tolerance(rho.shape[-1], max(trace, np.finfo(float).tiny)))


# --------------------------------------------------------------------------------------------------
# calibration


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _fit_logistic(z: np.ndarray, y: np.ndarray, *, shift: bool) -> tuple[float, float]:
    """Minimise the mean NLL of ``sigmoid(a z + b)`` (``b = 0`` unless ``shift``) by Newton steps
    with a small ridge; returns ``(a, b)``. ``z``, ``y`` ``(n,)``, ``y`` in {0, 1}."""
    z = np.clip(np.asarray(z, float), -_LOGIT_CLIP, _LOGIT_CLIP)
    y = np.asarray(y, float)
    x = np.stack([z, np.ones_like(z)], axis=1) if shift else z[:, None]
    w = np.zeros(x.shape[1])
    w[0] = 1.0
    n = len(z)

    def nll(w: np.ndarray) -> float:
        t = x @ w
        return float(np.mean(np.logaddexp(0.0, t) - y * t) + 0.5 * _RIDGE * (w @ w))

    current = nll(w)
    for _ in range(100):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) / n + _RIDGE * w
        hess = (x * (p * (1 - p))[:, None]).T @ x / n + _RIDGE * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-8:  # backtracking: Newton on a nearly separable split may overshoot
            trial = w - scale * step
            value = nll(trial)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        w, done = trial, current - value < 1e-12
        current = value
        if done:
            break
    return float(w[0]), float(w[1]) if shift else 0.0


@dataclass
class Calibration:
    """Per-cut calibration ``p_j = sigmoid(a_j z + b_j)`` of logits ``z`` ``(N, n_cuts)``.

    ``method`` ``"platt"`` (``a``, ``b`` fitted), ``"temperature"`` (``a = 1/T``, ``b = 0``) or
    ``"none"`` (``a = 1``, ``b = 0``); ``pooled[j]`` is True where cut ``j`` had too few proved
    cuts of a class and uses the parameters fitted on all cuts together.
    """

    method: str
    a: list[float]
    b: list[float]
    pooled: list[bool] = field(default_factory=list)

    @classmethod
    def identity(cls, n_cuts: int) -> Calibration:
        return cls("none", [1.0] * n_cuts, [0.0] * n_cuts, [False] * n_cuts)

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(N, n_cuts)`` float64 of logits ``(N, n_cuts)``."""
        z = np.asarray(logits, float)
        return _sigmoid(np.asarray(self.a)[None, :] * z + np.asarray(self.b)[None, :])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": list(self.a), "b": list(self.b), "pooled": list(self.pooled)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            str(data["method"]),
            [float(v) for v in data["a"]],
            [float(v) for v in data["b"]],
            [bool(v) for v in data.get("pooled", [])],
        )


def fit_calibration(
    logits: np.ndarray, truth: np.ndarray, mask: np.ndarray, method: str, min_class_count: int = 20
) -> Calibration:
    """Fit a per-cut :class:`Calibration` on the pairs in ``mask``.

    Args:
        logits: ``(N, n_cuts)`` model logits.
        truth: ``(N, n_cuts)`` int8, 1 entangled / 0 separable (read only where ``mask``).
        mask: ``(N, n_cuts)`` bool, the pairs to fit on (proved PPT cuts).
        method: ``"platt"``, ``"temperature"`` or ``"none"``.
        min_class_count: a cut with fewer pairs of either class uses the pooled parameters.

    Raises :class:`QeframeError` when ``method`` needs data and ``mask`` holds no pair of one class.
    """
    logits = np.asarray(logits, float)
    m = logits.shape[1]
    if method == "none":
        return Calibration.identity(m)
    if method not in ("platt", "temperature"):
        raise ValueError(f"unknown calibration {method!r}; allowed: platt, temperature, none")
    mask = np.asarray(mask, bool)
    truth = np.asarray(truth)
    y_all, z_all = truth[mask], logits[mask]
    if not ((y_all == 1).any() and (y_all == 0).any()):
        raise QeframeError(
            f"calibration {method!r}: the calibration data hold {int((y_all == 1).sum())} proved-entangled and "
            f"{int((y_all == 0).sum())} proved-separable PPT cuts; both classes are needed"
        )
    shift = method == "platt"
    pooled_ab = _fit_logistic(z_all, y_all == 1, shift=shift)
    a, b, pooled = [], [], []
    for j in range(m):
        yj, zj = truth[mask[:, j], j], logits[mask[:, j], j]
        own = min(int((yj == 1).sum()), int((yj == 0).sum())) >= min_class_count
        aj, bj = _fit_logistic(zj, yj == 1, shift=shift) if own else pooled_ab
        pooled.append(not own)
        a.append(aj)
        b.append(bj)
    return Calibration(method, a, b, pooled)


def reliability_bins(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, list[Any]]:
    """Per equal-width bin of ``p`` in [0, 1]: count, mean ``p`` and observed entangled share
    (``None`` for an empty bin). ``p``, ``y`` 1-D, ``y`` in {0, 1}."""
    p = np.asarray(p, float).ravel()
    y = np.asarray(y, float).ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    sum_p = np.bincount(index, weights=p, minlength=bins)
    sum_y = np.bincount(index, weights=y, minlength=bins)
    return {
        "count": [int(c) for c in count],
        "mean_p": [float(s / c) if c else None for s, c in zip(sum_p, count)],
        "frequency": [float(s / c) if c else None for s, c in zip(sum_y, count)],
    }


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """``sum_b (n_b / n) |freq_b - mean_p_b|`` over ``bins`` equal-width bins; ``None`` if empty."""
    r = reliability_bins(p, y, bins)
    n = sum(r["count"])
    if n == 0:
        return None
    return float(sum(c * abs(f - q) for c, f, q in zip(r["count"], r["frequency"], r["mean_p"]) if c) / n)


# --------------------------------------------------------------------------------------------------
# thresholds


def choose_thresholds(
    p: np.ndarray, y: np.ndarray, target_fpr: float, target_fnr: float
) -> tuple[float, float]:
    """``(t_separable, t_entangled)`` from calibrated ``p`` and truth ``y`` (1-D, proved PPT cuts).

    ``t_entangled``: the smallest value such that at most ``floor(target_fpr * n_sep)``
    separable ``p`` are ``>= t_entangled``. ``t_separable``: the largest value ``< t_entangled``
    such that at most ``floor(target_fnr * n_ent)`` entangled ``p`` are ``<= t_separable``
    (where both would claim a value, "entangled" wins: that only lowers the FNR). A class with no cut leaves its threshold at the safe end: no separable cut
    -> ``t_entangled = inf`` (never entangled: no FPR can be certified); no entangled cut ->
    ``t_separable = -inf`` (never separable).
    """
    p = np.asarray(p, float).ravel()
    y = np.asarray(y).ravel()
    sep = np.sort(p[y == 0])[::-1]  # descending
    ent = np.sort(p[y == 1])  # ascending
    if sep.size == 0:
        t_ent = float("inf")
    else:
        k = int(np.floor(target_fpr * sep.size))  # false positives allowed
        t_ent = 0.0 if k >= sep.size else float(np.nextafter(sep[k], np.inf))
        # p >= t_ent counts exactly the sep values > sep[k]: at most k of them
    if ent.size == 0:
        t_sep = float("-inf")
    else:
        k = int(np.floor(target_fnr * ent.size))
        t_sep = 1.0 if k >= ent.size else float(np.nextafter(ent[k], -np.inf))
    if t_sep >= t_ent:
        t_sep = float(np.nextafter(t_ent, -np.inf))
    return t_sep, t_ent


def answers_from_probabilities(p: np.ndarray, t_separable: float, t_entangled: float) -> np.ndarray:
    """int8 answers: 1 where ``p >= t_entangled``, 0 where ``p <= t_separable``, else -1."""
    p = np.asarray(p, float)
    out = np.full(p.shape, UNKNOWN, np.int8)
    out[p <= t_separable] = SEPARABLE
    out[p >= t_entangled] = ENTANGLED
    return out


# --------------------------------------------------------------------------------------------------
# the fitted configuration


@dataclass
class PredictionConfig:
    """What ``prediction.json`` holds: gate, calibration, thresholds and how they were fitted."""

    gate: str
    calibration: Calibration
    t_separable: float
    t_entangled: float
    calibrated: bool
    target_fpr: float | None = None
    target_fnr: float | None = None
    fit: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    #: proof stages run on PPT cuts after the gate (:data:`PROOF_STAGES`), in order
    proofs: tuple[str, ...] = ()

    @classmethod
    def uncalibrated(
        cls, n_cuts: int, threshold: float = 0.5, gate: str = "ppt", note: str = ""
    ) -> PredictionConfig:
        """The gate with raw probabilities, two-valued at ``threshold`` (no abstention)."""
        return cls(
            gate=gate,
            calibration=Calibration.identity(n_cuts),
            t_separable=float(threshold),  # p <= threshold: separable, p > threshold: entangled
            t_entangled=float(np.nextafter(threshold, np.inf)),
            calibrated=False,
            note=note,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PREDICTION_FORMAT,
            "gate": self.gate,
            "npt_tolerance": "qeframe.quantum.ppt.npt_tolerance(d, trace)" if self.gate == "ppt" else None,
            "calibrated": self.calibrated,
            "calibration": self.calibration.to_dict(),
            "thresholds": {
                "separable": json_float(self.t_separable),
                "entangled": json_float(self.t_entangled),
            },
            "targets": {"fpr": self.target_fpr, "fnr": self.target_fnr},
            "fit": self.fit,
            "note": self.note,
            "proofs": list(self.proofs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionConfig:
        if data.get("format") != PREDICTION_FORMAT:
            raise QeframeError(
                f"not a qeframe prediction file (format {data.get('format')!r} != {PREDICTION_FORMAT!r})"
            )
        return cls(
            gate=str(data["gate"]),
            calibration=Calibration.from_dict(data["calibration"]),
            t_separable=_from_json_float(data["thresholds"]["separable"]),
            t_entangled=_from_json_float(data["thresholds"]["entangled"]),
            calibrated=bool(data["calibrated"]),
            target_fpr=data.get("targets", {}).get("fpr"),
            target_fnr=data.get("targets", {}).get("fnr"),
            fit=dict(data.get("fit") or {}),
            note=str(data.get("note", "")),
            proofs=_check_proofs(data.get("proofs") or ()),
        )

    def describe(self) -> str:
        """One line for tables and ``classify``."""
        gate = "PPT gate" if self.gate == "ppt" else "no gate"
        if self.proofs:
            gate += " + proofs " + ", ".join(self.proofs)
        if not self.calibrated:
            return f"{gate}; uncalibrated, entangled when P > {self.t_entangled:.3g} on PPT cuts" + (
                f" ({self.note})" if self.note else ""
            )
        return (
            f"{gate}; {self.calibration.method} calibration; on PPT cuts entangled when p >= "
            f"{self.t_entangled:.4g}, separable when p <= {self.t_separable:.4g}, else unknown "
            f"(targets: FPR {self.target_fpr:g}, FNR {self.target_fnr:g})"
        )


def json_float(x: float) -> float | str:
    """``x``, or ``"inf"`` / ``"-inf"`` for an infinite threshold (JSON has no infinity)."""
    return x if np.isfinite(x) else ("inf" if x > 0 else "-inf")


def _from_json_float(x: float | str) -> float:
    return float(x)


@dataclass
class Prediction:
    """The answer of a gated model on a batch; arrays ``(N, n_cuts)``.

    Attributes:
        logits: float64 model logits (every cut, also NPT ones).
        raw: float64 ``sigmoid(logits)``, the ungated, uncalibrated model probability.
        probability: float64 ``P(entangled)``: 1 on NPT cuts (gate), the calibrated ``p`` elsewhere.
        answer: int8 1 entangled / 0 separable / -1 unknown.
        npt: bool, the cut is NPT (its answer carries the proof ``npt``).
        proved: object array of the proof name behind an "entangled" answer on a PPT cut
            (``"realignment"``, ``"witness"``) or ``None``; ``None`` (all) when no proof stage ran.
    """

    logits: np.ndarray
    raw: np.ndarray
    probability: np.ndarray
    answer: np.ndarray
    npt: np.ndarray
    proved: np.ndarray | None = None

    def proof(self) -> list[list[str | None]]:
        """Per sample and cut, the proof behind the answer: ``"npt"``, a proof stage's name or ``None``."""
        other = self.proved if self.proved is not None else np.full(self.npt.shape, None, dtype=object)
        return [["npt" if v else o for v, o in zip(row, orow)] for row, orow in zip(self.npt, other)]

    def answer_names(self) -> list[list[str]]:
        return [[ANSWER_NAMES[int(v)] for v in row] for row in self.answer]


def predict(
    config: PredictionConfig, logits: np.ndarray, rho: np.ndarray, npt: np.ndarray | None = None
) -> Prediction:
    """Apply ``config`` to model ``logits`` ``(N, n_cuts)`` of states ``rho`` ``(N, d, d)``.

    ``npt`` (the gate's mask) is computed with :func:`ppt_gate` when omitted; with ``gate = "none"``
    it is ignored and no cut carries a proof.
    """
    logits = np.asarray(logits, float)
    if config.gate == "ppt":
        npt = ppt_gate(rho) if npt is None else np.asarray(npt, bool)
    else:
        npt = np.zeros(logits.shape, bool)
    p = config.calibration.apply(logits)
    answer = answers_from_probabilities(p, config.t_separable, config.t_entangled)
    answer[npt] = ENTANGLED
    probability = np.where(npt, 1.0, p)
    proved = None
    if config.proofs:
        proved = proof_stages(rho, config.proofs, ~npt)
        hit = proved.astype(bool)  # None -> False, a proof name -> True
        answer[hit] = ENTANGLED
        probability = np.where(hit, 1.0, probability)
    return Prediction(logits, _sigmoid(logits), probability, answer, npt, proved)


#: Proof stages the prediction layer can run on PPT cuts (``prediction.proofs``), cheapest first.
PROOF_STAGES: tuple[str, ...] = ("witness", "realignment")


def _check_proofs(proofs: Any) -> tuple[str, ...]:
    proofs = tuple(str(p) for p in proofs)
    bad = [p for p in proofs if p not in PROOF_STAGES]
    if bad:
        raise QeframeError(f"unknown proof stage(s) {bad}; allowed: {', '.join(PROOF_STAGES)}")
    return proofs


def proof_stages(rho: np.ndarray, proofs: Sequence[str], mask: np.ndarray) -> np.ndarray:
    """Run the proof stages ``proofs`` on the cuts in ``mask`` ``(N, n_cuts)`` of ``rho`` ``(N, d, d)``.

    Returns an ``(N, n_cuts)`` object array: the name of the first stage that proves the cut
    entangled, else ``None``. Stages (each a proof, never a guess):

    - ``witness``: ``tr(W rho) < -1e-9`` on a ``1 | rest`` cut for a verified block-positive witness
      of the built-in library (:func:`qeframe.quantum.witness.load_witness_library`, LKCH witnesses
      of Horodecki states; Lewenstein, Kraus, Cirac, Horodecki, PRA 62, 052310 (2000)).
    - ``realignment``: realignment or de Vicente correlation-tensor bound violated in filter normal
      form beyond the rounding budget (:func:`qeframe.quantum.realignment.fnf_certificate`).
    """
    from qeframe.quantum.cuts import bipartitions
    from qeframe.quantum.ops import num_qubits
    from qeframe.quantum.realignment import fnf_certificate
    from qeframe.quantum.witness import load_witness_library, qubit_first, witness_values

    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    open_ = np.asarray(mask, bool).copy()
    out = np.full(open_.shape, None, dtype=object)
    n = num_qubits(rho.shape[-1])
    for stage in _check_proofs(proofs):
        if not open_.any():
            break
        if stage == "witness":
            library = load_witness_library(("horodecki",), None, n)
            for cut in bipartitions(n):
                rows = np.flatnonzero(open_[:, cut.index])
                if len(cut.side_a) != 1 or rows.size == 0 or library.shape[0] == 0:
                    continue
                moved = qubit_first(rho[rows], cut.side_a[0])
                values = np.stack([witness_values(w, moved) for w in library], axis=1).min(axis=1)
                hit = rows[values < -WITNESS_MARGIN]
                out[hit, cut.index] = "witness"
                open_[hit, cut.index] = False
        else:
            hit = fnf_certificate(rho, mask=open_).entangled
            out[hit] = "realignment"
            open_ &= ~hit
    return out


#: Margin of the witness proof stage (as the ``certified`` labeler's ``witness_margin`` default).
WITNESS_MARGIN = 1e-9


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
    proof stages ``spec.proofs`` are recorded in the result and run by :func:`predict`.
    """
    config = _fit_calibration(spec, logits, datasets, threshold, n_cuts)
    config.proofs = _check_proofs(spec.proofs)
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
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
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
