"""The fitted configuration of the prediction layer (``prediction.json``) and :func:`predict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.learn.prediction.calibration import Calibration, _sigmoid, answers_from_probabilities
from qeframe.learn.prediction.proofs import _check_proofs, ppt_gate, proof_stages
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, UNKNOWN
from qeframe.quantum.cuts import cut_names
from qeframe.quantum.ops import num_qubits
from qeframe.quantum.separable_proofs import check_separable_stages, separable_proofs

PREDICTION_FORMAT = "qeframe-prediction/1"
#: Answer names of the int8 codes 1 / 0 / -1.
ANSWER_NAMES = {ENTANGLED: "entangled", SEPARABLE: "separable", UNKNOWN: "unknown"}
#: Who may answer "entangled" on a PPT cut (``prediction.ppt_entangled``): ``model`` — the calibrated
#: model at ``t_entangled`` (or a proof stage); ``proof`` — only a proof stage; where the model alone
#: would say entangled the answer is unknown.
PPT_ENTANGLED_POLICIES: tuple[str, ...] = ("model", "proof")
#: Where the stages of :data:`~qeframe.learn.prediction.proofs.SCREENED_STAGES` run
#: (``prediction.proof_search``): ``screened`` — the PPT cuts the model does not answer separable;
#: ``all`` — every PPT cut.
PROOF_SEARCHES: tuple[str, ...] = ("screened", "all")


def check_policy(policy: Any) -> str:
    """``policy`` as a string if it is one of :data:`PPT_ENTANGLED_POLICIES`, else a one-line error
    naming the key and the allowed values."""
    if policy not in PPT_ENTANGLED_POLICIES:
        raise QeframeError(
            f"prediction.ppt_entangled = {policy!r} is not allowed; allowed: {', '.join(PPT_ENTANGLED_POLICIES)}"
        )
    return str(policy)


def check_separable(stages: Any) -> tuple[str, ...]:
    """``stages`` as a tuple if each is one of
    :data:`~qeframe.quantum.separable_proofs.SEPARABLE_STAGES`, else a one-line error naming the key
    ``prediction.separable_proofs`` and the allowed values."""
    if isinstance(stages, str):
        stages = (stages,)
    return check_separable_stages(stages, key="prediction.separable_proofs")


def check_search(search: Any) -> str:
    """``search`` if it is one of :data:`PROOF_SEARCHES`, else a one-line error naming the key."""
    if search not in PROOF_SEARCHES:
        raise QeframeError(
            f"prediction.proof_search = {search!r} is not allowed; allowed: {', '.join(PROOF_SEARCHES)}"
        )
    return str(search)


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
    #: who answers "entangled" on a PPT cut (:data:`PPT_ENTANGLED_POLICIES`)
    ppt_entangled: str = "model"
    #: where the screened proof stages run (:data:`PROOF_SEARCHES`)
    proof_search: str = "screened"
    #: trained proposer seeding the ``aligned_witness`` search (folder or shipped name), or None
    proposer: str | None = None
    #: exact separability stages run on PPT cuts (:data:`~qeframe.quantum.separable_proofs.SEPARABLE_STAGES`)
    separable_proofs: tuple[str, ...] = ()

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
            "ppt_entangled": self.ppt_entangled,
            "proof_search": self.proof_search,
            "proposer": self.proposer,
            "separable_proofs": list(self.separable_proofs),
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
            ppt_entangled=check_policy(data.get("ppt_entangled", "model")),
            proof_search=check_search(data.get("proof_search", "screened")),
            proposer=data.get("proposer"),
            separable_proofs=check_separable(data.get("separable_proofs") or ()),
        )

    def describe(self) -> str:
        """One line for tables and ``classify``."""
        gate = "PPT gate" if self.gate == "ppt" else "no gate"
        if self.proofs:
            gate += " + proofs " + ", ".join(self.proofs)
            if self.proposer:
                gate += f" (search seeded by proposer {self.proposer})"
            if self.proof_search == "all":
                gate += " (searched on every PPT cut)"
        if self.separable_proofs:
            gate += " + separability proofs " + ", ".join(self.separable_proofs)
        if self.ppt_entangled == "proof":
            gate += "; PPT cuts entangled only with a proof (the model's unproved 'entangled' is unknown)"
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
        answer: int8 1 entangled / 0 separable / -1 unknown, under the configuration's
            ``ppt_entangled`` policy.
        npt: bool, the cut is NPT (its answer carries the proof ``npt``).
        proved: object array of the proof name behind an "entangled" answer on a PPT cut
            (``"realignment"``, ``"witness"``, ``"aligned_witness"``) or ``None``; ``None`` (all)
            when no proof stage ran.
        model_answer: int8, the answer under the policy ``model`` (the model decides the PPT cuts
            no proof decided); equal to ``answer`` when that is the configuration's policy.
        separable: object array of the proof behind a "separable" answer on a PPT cut
            (:data:`~qeframe.quantum.separable_proofs.PROOF_NAMES`: ``"pure"``, ``"rank"``,
            ``"support"``, ``"product"``, ``"ball"``, ``"spectrum"``) or ``None``; ``None`` (all)
            when no separability stage ran.
    """

    logits: np.ndarray
    raw: np.ndarray
    probability: np.ndarray
    answer: np.ndarray
    npt: np.ndarray
    proved: np.ndarray | None = None
    model_answer: np.ndarray | None = None
    separable: np.ndarray | None = None

    def proved_mask(self) -> np.ndarray:
        """``(N, n_cuts)`` bool: the answer "entangled" carries a proof (``npt`` or a proof stage)."""
        other = self.proved.astype(bool) if self.proved is not None else np.zeros(self.npt.shape, bool)
        return np.asarray(self.npt, bool) | other

    def separable_mask(self) -> np.ndarray:
        """``(N, n_cuts)`` bool: the answer "separable" carries a proof (a separability stage)."""
        return self.separable.astype(bool) if self.separable is not None else np.zeros(self.npt.shape, bool)

    def answer_for(self, policy: str) -> np.ndarray:
        """The int8 answers under ``policy`` (:data:`PPT_ENTANGLED_POLICIES`), from the same model
        output and proofs: ``model`` as :attr:`model_answer`; ``proof`` the same, except that an
        "entangled" answer without a proof becomes unknown (-1)."""
        base = self.model_answer if self.model_answer is not None else self.answer
        return proof_policy(base, self.proved_mask()) if check_policy(policy) == "proof" else base

    def proof(self) -> list[list[str | None]]:
        """Per sample and cut, the proof behind the answer: ``"npt"``, a proof stage's name (entangled),
        a separability proof's name (separable) or ``None``."""
        none = np.full(self.npt.shape, None, dtype=object)
        other = self.proved if self.proved is not None else none
        sep = self.separable if self.separable is not None else none
        return [
            ["npt" if v else (o if o is not None else s) for v, o, s in zip(row, orow, srow)]
            for row, orow, srow in zip(self.npt, other, sep)
        ]

    def answer_names(self) -> list[list[str]]:
        return [[ANSWER_NAMES[int(v)] for v in row] for row in self.answer]


def predict(
    config: PredictionConfig,
    logits: np.ndarray,
    rho: np.ndarray,
    npt: np.ndarray | None = None,
    device: Any = None,
) -> Prediction:
    """Apply ``config`` to model ``logits`` ``(N, n_cuts)`` of states ``rho`` ``(N, d, d)``.

    ``npt`` (the gate's mask) is computed with :func:`ppt_gate` when omitted; with ``gate = "none"``
    it is ignored and no cut carries a proof of entanglement. ``device``: the ``torch`` device of the
    proof search (:func:`~qeframe.learn.prediction.proofs.proof_stages`; default CPU).

    With ``config.separable_proofs``, every PPT cut (by :func:`ppt_gate`, also under ``gate =
    "none"``) that :func:`~qeframe.quantum.separable_proofs.separable_proofs` proves separable is
    answered separable (probability 0) under both policies, whatever the model says; the screened
    search (``aligned_witness``) skips those cuts, the cheap proof stages still run on them. A cut
    proved both entangled and separable is a contradiction (a bug or a state outside the error
    budgets): :class:`~qeframe.errors.QeframeError`.
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
    separable = sep = None
    if config.separable_proofs:
        ppt = ~(npt if config.gate == "ppt" else ppt_gate(rho))
        proofs = separable_proofs(rho, ppt, check_separable(config.separable_proofs))
        separable, sep = proofs.names(), proofs.proved
    proved = None
    if config.proofs:
        screen = answer != SEPARABLE if config.proof_search == "screened" else None
        if sep is not None:
            screen = ~sep if screen is None else screen & ~sep
        proved = proof_stages(
            rho, config.proofs, ~npt, screen=screen, proposer=config.proposer, device=device
        )
        hit = proved.astype(bool)  # None -> False, a proof name -> True
        if sep is not None and (hit & sep).any():
            i, j = np.argwhere(hit & sep)[0]
            cut = cut_names(num_qubits(np.shape(rho)[-1]))[j]
            raise QeframeError(
                f"contradiction: cut {cut} of state {i} is proved entangled ({proved[i, j]}) and separable "
                f"({separable[i, j]}); {int((hit & sep).sum())} such cut(s)"
            )
        answer[hit] = ENTANGLED
        probability = np.where(hit, 1.0, probability)
    if sep is not None:
        answer[sep] = SEPARABLE
        probability = np.where(sep, 0.0, probability)
    out = Prediction(
        logits, _sigmoid(logits), probability, answer, npt, proved, model_answer=answer, separable=separable
    )
    if config.ppt_entangled != "model":
        out.answer = out.answer_for(config.ppt_entangled)
    return out


def proof_policy(answer: np.ndarray, proved: np.ndarray) -> np.ndarray:
    """The policy ``proof``: a copy of int8 ``answer`` ``(N, n_cuts)`` in which every "entangled"
    (1) without a proof (``proved`` False: neither NPT nor a proof stage) is unknown (-1).

    On a cut that is separable, a proof of entanglement cannot exist, so under this policy the
    false-positive rate on separable cuts is 0 — up to the documented error budgets of the proofs
    (the NPT tolerance, :func:`qeframe.quantum.filter_witness.aligned_error_bound`, the FNF budget) —
    and the recall on PPT-entangled cuts is the proof stages' recall.
    """
    out = np.array(answer, dtype=np.int8, copy=True)
    out[(out == ENTANGLED) & ~np.asarray(proved, bool)] = UNKNOWN
    return out
