"""``certified`` labeler: per-cut labels that are proved, with provenance and evidence, or unknown.

For every state and every cut ``A|B`` (``A`` the named-first, smaller side), the first stage that
applies decides; its provenance code and an evidence value are stored, and ``reasons`` holds one
line for every unknown cut (why) and every ``analytic`` label (which theorem):

==============  =====  ==========================================================  =========================
provenance      label  condition (in this order)                                    evidence
==============  =====  ==========================================================  =========================
``npt``         1      ``lambda_min(rho^{T_A}) < -ppt_tol`` (Peres, PRL 77, 1413)     ``lambda_min(rho^{T_A})``
``pure-ppt``    0      PPT and ``rank(rho) = 1``: a PPT pure state is a product        ``1`` (the rank)
``rank``        0      PPT and ``rank(rho) <= max(rank rho_A, rank rho_B)``            ``rank(rho)``
                       (Horodecki, Lewenstein, Vidal, Cirac, PRA 62, 032310 (2000))
``analytic``    0      PPT and supports ``r_A x r_B`` with ``min = 1`` or              ``lambda_min(rho^{T_A})``
                       ``{2,2}``/``{2,3}`` (Horodecki^3, PLA 223, 1 (1996))
``analytic``    0      ``max |rho - rho_A ⊗ rho_B| <= product_tol`` (product)          that maximum
``analytic``    0      ``tr rho^2 <= 1/(d - 1)``: inside the largest separable ball    ``tr rho^2``
                       around ``I/d`` (Gurvits, Barnum, PRA 66, 062311 (2002))
``spectrum``    0      a ``1 | rest`` (``2 x N``) cut and the spectrum is absolutely   the margin (``<= 0``)
                       separable: ``l_1 <= l_{2N-1} + 2 sqrt(l_{2N-2} l_{2N})`` with
                       eigenvalue error bars ``eig_tol`` (Johnston, PRA 88, 062330
                       (2013); ``spectrum = true``)
(family)        0/1    the family's ``ground_truth`` where its provenance is in        NaN
                       ``trusted_provenance`` (``construction``, ``analytic``, ...;
                       never ``paper-convention``): e.g. UPB, Acín, Horodecki states
``witness``     1      a ``1 | rest`` cut and ``tr(W rho) < -witness_margin`` for a    ``tr(W rho)``
                       witness ``W`` of the library (``witnesses``), each verified
                       block-positive on load (:mod:`qeframe.quantum.witness`): the
                       built-in ``horodecki`` set holds LKCH witnesses of Horodecki
                       states (Lewenstein et al., PRA 62, 052310 (2000)); a
                       ``witness_file`` adds stored ones
``realignment`` 1      a PPT cut whose filter normal form violates the realignment or  the violation margin
                       the de Vicente correlation-tensor bound beyond the rounding
                       budget (:mod:`qeframe.quantum.realignment`; Gittsovich,
                       Gühne, Hyllus, Eisert, PRA 78, 052319 (2008);
                       ``realignment = true``)
``dps2``        1      the visibility SDP gives ``p* < 1 - margin``: ``rho`` has no    ``p*``
                       PPT symmetric extension to 2 copies of ``A`` even with
                       ``margin`` white noise (Doherty, Parrilo, Spedalieri)
``unknown``     -1     anything else: inconclusive SDP (``p* >= 1 - margin``),         ``p*`` if an SDP ran,
                       a verified extension of ``(1 - margin) rho + margin I/d``      ``1 - margin`` (a proved
                       that makes the SDP pointless (no SDP is run), solver failure,  lower bound on ``p*``)
                       cvxpy missing, SDP too large, SDP disabled                     for an extension, else NaN
==============  =====  ==========================================================  =========================

Ranks are *numerical ranks of the actual states*, never nominal dimensions (for four qubits a
rank-4 PPT state supported on ``3 x 3`` can be entangled, which nominal ranks ``max(4, ...)`` would
wrongly call separable): an eigenvalue counts as zero when ``<= rank_tol`` and as non-zero when
``>= rank_gap``; a cut where ``rho``, ``rho_A`` or ``rho_B`` has an eigenvalue in between is
*ambiguous* and skips the rank-based stages (``pure-ppt``, ``rank``, support ``analytic``). The
support stage uses ``range(rho) ⊆ supp(rho_A) ⊗ supp(rho_B)`` and that a partial transpose
commutes with local isometries up to complex conjugation, so ``rho`` is PPT exactly when the
``r_A x r_B`` state is. For three qubits it covers the cuts whose two-qubit side has rank <= 3.

States NPT on every cut never reach the later stages. Before any SDP, every pending cut gets a
batched numpy search for a PPT symmetric extension of ``(1 - margin) rho + margin I/d``, checked
in float64 with a rigorous eigenvalue margin (:mod:`qeframe_plugins.baselines._dps_extension`): where
one exists ``p* >= 1 - margin`` is proved, the SDP could only say "inconclusive", and it is skipped
(the label is unknown either way; no label the SDP can legitimately give is lost). The SDPs (see
:mod:`qeframe_plugins.baselines._dps`) run in a process pool on all cores with a progress bar and
need the optional extra ``qeframe[certify]`` (cvxpy, SCS, Clarabel); without it the PPT cuts that
no exact stage decides stay unknown with that reason, and a ``RuntimeWarning`` says
``pip install 'qeframe[certify]'``. A solver failure is always unknown, never entangled. Results do
not depend on ``workers``.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.labelers.certified import CertifiedLabeler
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> rho = np.stack([np.outer(ghz, ghz), np.eye(8) / 8]).astype(complex)
    >>> cert = CertifiedLabeler(CertifiedLabeler.Params(progress=False)).certify(rho)
    >>> cert.labels.tolist(), cert.provenance_names()[:, 0].tolist()
    ([[1, 1, 1], [0, 0, 0]], ['npt', 'analytic'])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator
from qeframe_plugins.baselines._dps import DpsSettings, dps2_batch

from qeframe import hookimpl
from qeframe.plugin.interfaces import LabelBatch, Labeler, Params, StateBatch
from qeframe.plugin.labels import ENTANGLED, PROVENANCE, SEPARABLE, UNKNOWN, provenance_code, provenance_names
from qeframe.quantum.cuts import bipartitions, cut_names, n_cuts
from qeframe.quantum.ops import num_qubits
from qeframe.quantum.ppt import PPT_TOL, npt_mask, pt_min_eigenvalues_where
from qeframe.quantum.rank_separable import PURE, RANK, RANK_GAP, RANK_TOL, SUPPORT
from qeframe.quantum.realignment import fnf_certificate
from qeframe.quantum.separable_proofs import (
    BALL,
    EIG_TOL,
    PRODUCT,
    PRODUCT_TOL,
    SEPARABLE_STAGES,
    SPECTRUM,
    separable_proofs,
)
from qeframe.quantum.witness import (
    load_witness_library,
    qubit_first,
    witness_values,
)

#: Ground-truth provenances the labeler accepts as proofs (never ``paper-convention`` or guesses).
DEFAULT_TRUSTED = (
    "construction",
    "analytic",
    "npt",
    "pure-ppt",
    "rank",
    "dps2",
    "witness",
    "spectrum",
    "realignment",
)

_P_UNKNOWN = provenance_code("unknown")
#: The provenance each exact separability proof is stored under.
_PROVENANCE_OF_PROOF = {
    PURE: "pure-ppt",
    RANK: "rank",
    SUPPORT: "analytic",
    PRODUCT: "analytic",
    BALL: "analytic",
    SPECTRUM: "spectrum",
}


class CertifiedParams(Params):
    ppt_tol: float = Field(default=PPT_TOL, gt=0, description="NPT when lambda_min(rho^T_A) < -ppt_tol.")
    rank_tol: float = Field(default=RANK_TOL, gt=0, description="Eigenvalues <= rank_tol count as zero.")
    rank_gap: float = Field(
        default=RANK_GAP,
        gt=0,
        description="Eigenvalues >= rank_gap count as non-zero; in between: ambiguous.",
    )
    product_tol: float = Field(
        default=PRODUCT_TOL, ge=0, description="Separable when max|rho - rho_A ⊗ rho_B| <= product_tol."
    )
    spectrum: bool = Field(
        default=True, description="Separable from the spectrum on 1|rest cuts (Johnston's 2 x N condition)."
    )
    eig_tol: float = Field(
        default=EIG_TOL, ge=0, description="Error bar on each eigenvalue of rho in the spectrum stage."
    )
    witnesses: tuple[Literal["horodecki"], ...] = Field(
        default=("horodecki",), description="Built-in witness sets of the witness stage (empty: none)."
    )
    witness_file: str | None = Field(
        default=None, description=".npz with `witnesses` (K, 2**n, 2**n), qubit first; verified on load."
    )
    witness_margin: float = Field(
        default=1e-9, gt=0, description="Entangled when tr(W rho) < -witness_margin."
    )
    realignment: bool = Field(
        default=True,
        description="Prove PPT cuts entangled by realignment / correlation tensor in filter normal form.",
    )
    sdp: bool = Field(default=True, description="Run the DPS-2 SDP on PPT cuts that no exact stage decides.")
    solver: Literal["SCS", "CLARABEL"] = "SCS"
    margin: float = Field(default=1e-3, gt=0, lt=0.5, description="Entangled when p* < 1 - margin.")
    max_extension_dim: int = Field(
        default=128, ge=4, description="Skip SDPs whose extension d_A^2 d_B is larger (unknown, with reason)."
    )
    use_ground_truth: bool = Field(default=True, description="Accept trusted family ground truth.")
    trusted_provenance: tuple[str, ...] = DEFAULT_TRUSTED
    npt_evidence: bool = Field(
        default=True, description="Store lambda_min(rho^T_A) for NPT cuts (costs an eigen-decomposition)."
    )
    workers: int | None = Field(default=None, ge=1, description="SDP worker processes (default: all cores).")
    progress: bool = Field(default=True, description="Show a progress bar while SDPs run.")

    @field_validator("trusted_provenance")
    @classmethod
    def _known_provenance(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in PROVENANCE]
        if unknown:
            raise ValueError(f"unknown provenance {unknown}; allowed: {', '.join(PROVENANCE)}")
        return value


@dataclass
class Certificate:
    """Certified per-cut labels of a batch.

    Attributes:
        labels: ``(N, n_cuts)`` int8, 1 entangled, 0 separable, -1 unknown.
        provenance: ``(N, n_cuts)`` uint8 codes into :data:`qeframe.plugin.labels.PROVENANCE`.
        evidence: ``(N, n_cuts)`` float64, the value behind each label (see the module table).
        reasons: ``(N, n_cuts)`` object array of ``str``: why a cut is unknown, which theorem an
            ``analytic`` label rests on, or a conflict with the family's ground truth; ``""`` otherwise.
        cuts: cut names in order.
    """

    labels: np.ndarray
    provenance: np.ndarray
    evidence: np.ndarray
    reasons: np.ndarray
    cuts: list[str]

    def provenance_names(self) -> np.ndarray:
        """``(N, n_cuts)`` provenance names."""
        return provenance_names(self.provenance)

    def summary(self) -> dict[str, dict[str, int]]:
        """``{cut name: {provenance name: count}}`` plus ``"all"`` over every cut."""
        names = self.provenance_names()
        out: dict[str, dict[str, int]] = {}
        for j, cut in enumerate(self.cuts):
            values, counts = np.unique(names[:, j], return_counts=True)
            out[cut] = {str(v): int(c) for v, c in zip(values, counts)}
        values, counts = np.unique(names, return_counts=True)
        out["all"] = {str(v): int(c) for v, c in zip(values, counts)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record: cuts, per-sample labels, provenance names, evidence (NaN -> None), reasons."""
        names = self.provenance_names()
        samples = []
        for i in range(self.labels.shape[0]):
            samples.append(
                {
                    "index": i,
                    "labels": [int(v) for v in self.labels[i]],
                    "provenance": [str(v) for v in names[i]],
                    "evidence": [None if not np.isfinite(v) else float(v) for v in self.evidence[i]],
                    "reasons": [str(v) for v in self.reasons[i]],
                }
            )
        return {"cuts": list(self.cuts), "samples": samples, "summary": self.summary()}


class CertifiedLabeler(Labeler):
    """Proved per-cut labels (NPT, rank, 2x2/2x3 support, construction, DPS-2) or unknown."""

    name = "certified"
    description = (
        "Proved per-cut labels (npt, rank, analytic, construction, DPS-2 SDP) or unknown, with evidence"
    )
    Params = CertifiedParams

    def label(self, batch: StateBatch) -> LabelBatch:
        cert = self.certify(
            batch.rho,
            ground_truth=batch.ground_truth if self.params.use_ground_truth else None,
            ground_truth_provenance=batch.ground_truth_provenance if self.params.use_ground_truth else None,
        )
        return LabelBatch(
            keep=np.ones(len(batch), dtype=bool),
            labels=cert.labels,
            provenance=cert.provenance,
            evidence=cert.evidence,
        )

    # ------------------------------------------------------------------ stages
    def certify(
        self,
        rho: np.ndarray,
        ground_truth: np.ndarray | None = None,
        ground_truth_provenance: np.ndarray | None = None,
    ) -> Certificate:
        """Certify every cut of ``rho`` ``(N, 2**n, 2**n)``; see the module docstring for the stages.

        ``ground_truth``/``ground_truth_provenance`` ``(N, n_cuts)`` (optional, as in
        :class:`~qeframe.plugin.interfaces.StateBatch`) are used where their provenance is trusted.
        """
        p = self.params
        rho = np.asarray(rho, dtype=np.complex128)
        if rho.ndim == 2:
            rho = rho[None]
        n = num_qubits(rho.shape[-1])
        shape = (rho.shape[0], n_cuts(n))
        labels = np.full(shape, UNKNOWN, dtype=np.int8)
        prov = np.full(shape, _P_UNKNOWN, dtype=np.uint8)
        evidence = np.full(shape, np.nan)
        reasons = np.full(shape, "", dtype=object)

        # 1. NPT -> entangled (exact). The mask is the fast batched Cholesky test.
        npt = npt_mask(rho, tol=p.ppt_tol)
        labels[npt], prov[npt] = ENTANGLED, provenance_code("npt")
        if p.npt_evidence:
            evidence[npt] = pt_min_eigenvalues_where(rho, npt)[npt]
        open_ = ~npt

        # 2. Exact separability (pure-ppt, rank, support, product, ball), only for states with a PPT cut.
        self._separable_stage(rho, open_, labels, prov, evidence, reasons)
        open_ = labels == UNKNOWN

        # 3. The family's trusted ground truth.
        if ground_truth is not None and ground_truth_provenance is not None:
            self._ground_truth_stage(ground_truth, ground_truth_provenance, open_, labels, prov, reasons)
            open_ = labels == UNKNOWN

        # 4. Verified witnesses on the 1|rest cuts still open.
        self._witness_stage(rho, open_, labels, prov, evidence)
        open_ = labels == UNKNOWN

        # 5. Realignment / correlation tensor in filter normal form on the cuts still open.
        if p.realignment and open_.any():
            cert = fnf_certificate(rho, mask=open_)
            labels[cert.entangled], prov[cert.entangled] = ENTANGLED, provenance_code("realignment")
            evidence[cert.entangled] = cert.margin[cert.entangled]
            open_ = labels == UNKNOWN

        # 6. DPS-2 visibility SDP on the PPT cuts still open.
        self._dps_stage(rho, open_, labels, prov, evidence, reasons)
        still = (labels == UNKNOWN) & (reasons == "")
        reasons[still] = "PPT; no certificate (SDP stage disabled)"
        return Certificate(labels, prov, evidence, reasons, cut_names(n))

    def _separable_stage(
        self,
        rho: np.ndarray,
        open_: np.ndarray,
        labels: np.ndarray,
        prov: np.ndarray,
        evidence: np.ndarray,
        reasons: np.ndarray,
    ) -> None:
        """The exact separability stages: :func:`qeframe.quantum.separable_proofs.separable_proofs`."""
        p = self.params
        stages = SEPARABLE_STAGES if p.spectrum else SEPARABLE_STAGES[:-1]
        sep = separable_proofs(
            rho,
            open_,
            stages,
            rank_tol=p.rank_tol,
            rank_gap=p.rank_gap,
            product_tol=p.product_tol,
            eig_tol=p.eig_tol,
        )
        hit = sep.proved
        labels[hit], evidence[hit] = SEPARABLE, sep.evidence[hit]
        for code, name in _PROVENANCE_OF_PROOF.items():
            prov[sep.proof == code] = provenance_code(name)
        for i, j in zip(*np.nonzero(sep.proof == SUPPORT)):  # a note per analytic label: which support
            lo, hi = sep.support[i, j]
            reasons[i, j] = f"PPT on a {lo}x{hi} support (Peres-Horodecki: PPT is sufficient)"
        reasons[sep.proof == PRODUCT] = "rho = rho_A ⊗ rho_B (a product across the cut)"
        reasons[sep.proof == BALL] = (
            f"tr(rho^2) <= 1/(d-1) = {sep.ball_bound:.6g} (Gurvits-Barnum separable ball)"
        )
        reasons[sep.proof == SPECTRUM] = "absolutely separable spectrum (Johnston, PRA 88, 062330 (2013))"

    def _witness_matrices(self, dim: int) -> np.ndarray:
        """The verified witness library for ``dim = 2**n``: ``(K, dim, dim)`` (qubit-first order)."""
        p = self.params
        return load_witness_library(p.witnesses, p.witness_file, num_qubits(dim))

    def _witness_stage(
        self,
        rho: np.ndarray,
        open_: np.ndarray,
        labels: np.ndarray,
        prov: np.ndarray,
        evidence: np.ndarray,
    ) -> None:
        p = self.params
        if not (p.witnesses or p.witness_file) or not open_.any():
            return
        n = num_qubits(rho.shape[-1])
        library = self._witness_matrices(rho.shape[-1])
        if library.shape[0] == 0:
            return
        for cut in bipartitions(n):  # loop over cuts and the (few) witnesses, batched over states
            if len(cut.side_a) != 1:
                continue
            rows = np.flatnonzero(open_[:, cut.index])
            if rows.size == 0:
                continue
            moved = qubit_first(rho[rows], cut.side_a[0])
            values = np.stack([witness_values(w, moved) for w in library], axis=1).min(axis=1)
            hit = values < -p.witness_margin
            labels[rows[hit], cut.index] = ENTANGLED
            prov[rows[hit], cut.index] = provenance_code("witness")
            evidence[rows[hit], cut.index] = values[hit]

    def _ground_truth_stage(
        self,
        truth: np.ndarray,
        truth_prov: np.ndarray,
        open_: np.ndarray,
        labels: np.ndarray,
        prov: np.ndarray,
        reasons: np.ndarray,
    ) -> None:
        trusted_codes = [provenance_code(name) for name in self.params.trusted_provenance]
        trusted = np.isin(truth_prov, trusted_codes) & (truth != UNKNOWN)
        take = open_ & trusted
        labels[take], prov[take] = truth[take], truth_prov[take]
        conflict = ~open_ & trusted & (truth != labels)
        if conflict.any():
            names = provenance_names(truth_prov)
            for i, j in zip(*np.nonzero(conflict)):  # only the (rare) conflicting cuts
                reasons[i, j] = (
                    f"conflicts with the family's ground truth {int(truth[i, j])} ({names[i, j]}); "
                    f"kept the computed certificate"
                )
            warnings.warn(
                f"certified: {int(conflict.sum())} cut(s) contradict the family's trusted ground truth; "
                "the computed certificates were kept (see Certificate.reasons)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _dps_stage(
        self,
        rho: np.ndarray,
        open_: np.ndarray,
        labels: np.ndarray,
        prov: np.ndarray,
        evidence: np.ndarray,
        reasons: np.ndarray,
    ) -> None:
        p = self.params
        if not p.sdp or not open_.any():
            return
        cuts = bipartitions(num_qubits(rho.shape[-1]))
        ext_dim = np.array([4 ** len(c.side_a) * 2 ** len(c.side_b) for c in cuts])
        too_big = open_ & (ext_dim > p.max_extension_dim)[None, :]
        for j in np.flatnonzero(too_big.any(axis=0)):
            reasons[too_big[:, j], j] = (
                f"PPT; DPS-2 extension of dimension {ext_dim[j]} exceeds max_extension_dim={p.max_extension_dim}"
            )
        jobs = np.argwhere(open_ & ~too_big)  # (M, 2): sample, cut
        if jobs.size == 0:
            return
        settings = DpsSettings(solver=p.solver, margin=p.margin)
        out = dps2_batch(
            rho, jobs, settings, workers=p.workers, progress=p.progress, description="DPS-2 SDPs"
        )
        i, j = jobs[:, 0], jobs[:, 1]
        evidence[i, j] = out.p_star
        hit = out.entangled(p.margin)
        labels[i[hit], j[hit]] = ENTANGLED
        prov[i[hit], j[hit]] = provenance_code("dps2")
        for k in np.flatnonzero(~hit):  # only the cuts left unknown get a sentence
            if out.extended[k]:
                reasons[i[k], j[k]] = (
                    f"PPT; DPS-2 inconclusive without an SDP: a PPT symmetric extension of (1 - margin) rho "
                    f"+ margin I/d was exhibited and verified (eigenvalue margin {out.extension_margin[k]:.2e}), "
                    f"so p* >= {out.p_star[k]:.6f}"
                )
            elif out.ok[k]:
                reasons[i[k], j[k]] = (
                    f"PPT; DPS-2 inconclusive: p* = {out.p_star[k]:.6f} >= 1 - margin (a k=2 PPT symmetric "
                    "extension exists)"
                )
            else:
                reasons[i[k], j[k]] = f"PPT; DPS-2 gave no answer: {out.reasons[k]}"
        failed = ~out.ok
        if failed.any():
            first = str(out.reasons[np.flatnonzero(failed)[0]])
            warnings.warn(
                f"certified: {int(failed.sum())} PPT cut(s) left unknown because the DPS-2 SDP gave no answer: "
                f"{first}",
                RuntimeWarning,
                stacklevel=3,
            )


@hookimpl
def qeframe_register_labelers(register):
    register(CertifiedLabeler)
