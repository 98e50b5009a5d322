"""Calibration of ``P(entangled)`` on PPT cuts and the Neyman-Pearson abstention thresholds.

See :mod:`qeframe.learn.prediction` (steps 2 and 3) and docs/beyond-ppt.md, sections 2-3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, UNKNOWN

ECE_BINS = 15
_RIDGE = 1e-6
_LOGIT_CLIP = 60.0


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
