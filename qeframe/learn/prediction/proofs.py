"""The proofs of the prediction layer: the PPT gate and the proof stages on PPT cuts.

Every function here returns *proofs*, never guesses: a cut flagged by :func:`ppt_gate` is NPT beyond
the rounding budget of the test, and a cut named by :func:`proof_stages` is entangled by a verified
certificate (docs/beyond-ppt.md, sections 1 and 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qeframe.errors import QeframeError
from qeframe.quantum.ppt import npt_mask, npt_tolerance

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


#: Proof stages the prediction layer can run on PPT cuts (``prediction.proofs``), cheapest first.
PROOF_STAGES: tuple[str, ...] = ("witness", "realignment", "aligned_witness")


def _check_proofs(proofs: Any) -> tuple[str, ...]:
    proofs = tuple(str(p) for p in proofs)
    bad = [p for p in proofs if p not in PROOF_STAGES]
    if bad:
        raise QeframeError(f"unknown proof stage(s) {bad}; allowed: {', '.join(PROOF_STAGES)}")
    return proofs


#: Stages that are run only on the cuts the model does not answer "separable" (the ``screen`` of
#: :func:`proof_stages`): searches too expensive for every PPT cut.
SCREENED_STAGES: tuple[str, ...] = ("aligned_witness",)


def proof_stages(
    rho: np.ndarray,
    proofs: Sequence[str],
    mask: np.ndarray,
    screen: np.ndarray | None = None,
    proposer: str | None = None,
    device: Any = None,
) -> np.ndarray:
    """Run the proof stages ``proofs`` on the cuts in ``mask`` ``(N, n_cuts)`` of ``rho`` ``(N, d, d)``.

    ``screen`` ``(N, n_cuts)`` bool (default: all True): the cuts on which the stages of
    :data:`SCREENED_STAGES` may run — :func:`~qeframe.learn.prediction.predict` passes the PPT cuts the
    model does *not* answer separable, so the model proposes where to search and the search proves
    (the cheap stages run on every cut of ``mask``). A screen never creates a proof; it only saves time.
    ``device``: the ``torch`` device of the ``aligned_witness`` search (default CPU; the proofs are
    verified in float64 on the CPU whatever the device).

    Returns an ``(N, n_cuts)`` object array: the name of the first stage that proves the cut
    entangled, else ``None``. Stages (each a proof, never a guess):

    - ``witness``: ``tr(W rho) < -1e-9`` on a ``1 | rest`` cut for a verified block-positive witness
      of the built-in library (:func:`qeframe.quantum.witness.load_witness_library`, LKCH witnesses
      of Horodecki states; Lewenstein, Kraus, Cirac, Horodecki, PRA 62, 052310 (2000)).
    - ``realignment``: realignment or de Vicente correlation-tensor bound violated in filter normal
      form beyond the rounding budget (:func:`qeframe.quantum.realignment.fnf_certificate`).
    - ``aligned_witness``: on ``q | rest`` cuts, a verified library witness ``W`` (or its partial
      transpose) with ``tr(W H rho H^†) < 0`` beyond the error budget for a local ``H = H_A ⊗ H_B``
      found by a batched search (filter normal form, then local unitaries;
      :func:`qeframe.quantum.filter_witness.aligned_witness_proofs`). ``H^† W H`` is block-positive
      for every local ``H``, so the search only proposes and the check proves. About 0.05 CPU-s
      per PPT cut of three qubits searched (docs/beyond-ppt.md, section 9; the most expensive stage:
      it runs last, on ``screen``; cuts the rank rules prove separable are not searched).
      With ``proposer`` (a folder or shipped name, :func:`qeframe.learn.proposer.proposer_for_stage`)
      a trained network's candidates start the search, under the search budget the proposer
      records (``restarts``, ``steps``; the stage's defaults where it records none); its proofs are
      verified the same way, so a proposer changes recall and cost, never validity.
    """
    from qeframe.quantum.cuts import bipartitions
    from qeframe.quantum.filter_witness import aligned_witness_proofs
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
        elif stage == "realignment":
            hit = fnf_certificate(rho, mask=open_).entangled
            out[hit] = "realignment"
            open_ &= ~hit
        else:
            tried = open_ if screen is None else open_ & np.asarray(screen, bool)
            if proposer is None:
                hit = aligned_witness_proofs(rho, tried, device=device).proved
            else:
                from qeframe.learn.proposer import proposer_for_stage

                model, search = proposer_for_stage(proposer)
                hit = aligned_witness_proofs(rho, tried, propose=model.propose, device=device, **search).proved
            out[hit] = "aligned_witness"
            open_ &= ~hit
    return out


#: Margin of the witness proof stage (as the ``certified`` labeler's ``witness_margin`` default).
WITNESS_MARGIN = 1e-9
