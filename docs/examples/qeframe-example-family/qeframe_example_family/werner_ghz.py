"""``werner_ghz`` state family: the n-qubit GHZ state in white noise.

Definition (``n >= 2`` qubits, ``d = 2**n``, big-endian qubit order as everywhere in qeframe)::

    rho_p = p |GHZ_n><GHZ_n| + (1 - p) I / d,      |GHZ_n> = (|0...0> + |1...1>) / sqrt(2),

with the visibility ``p`` drawn uniformly from ``Params.p_range`` (a sub-interval of ``[0, 1]``).
For ``n = 2`` this is the two-qubit Werner (isotropic) state.

Per-cut ground truth, exact for every ``p``. Take a cut ``A|B`` (any of the
``2**(n-1) - 1`` cuts). Transposing the qubits of ``A`` moves the GHZ coherence
``|0_A 0_B><1_A 1_B|`` to ``|1_A 0_B><0_A 1_B|``; both basis states differ from ``|0...0>`` and
``|1...1>``, so ``rho_p^{T_A}`` is diagonal except for the 2x2 block::

    [[(1-p)/d,  p/2    ],
     [ p/2,     (1-p)/d]]      ->  lambda_min(rho_p^{T_A}) = (1 - p)/d - p/2.

Hence every cut is NPT, and the state entangled across it, iff ``p > p* = 1 / (1 + 2**(n-1))``
(label 1, provenance ``npt``); the threshold is the same for all cuts. For ``p <= p*`` the state
is PPT on every cut and in fact *fully separable* — Pittenger and Rubin show it for this state,
and Dür and Cirac show that a GHZ-diagonal state of this symmetric kind is fully separable as
soon as it is PPT with respect to every bipartition. So every cut is separable (label 0,
provenance ``analytic``) and there are no PPT entangled states in the family (``pptes`` is
always False). The state is pure only for ``p = 1``.

References:
    * W. Dür, J. I. Cirac, R. Tarrach, "Separability and distillability of multiparticle quantum
      systems", Phys. Rev. Lett. 83, 3562 (1999).
    * W. Dür, J. I. Cirac, "Classification of multiqubit mixed states: separability and
      distillability properties", Phys. Rev. A 61, 042314 (2000).
    * A. O. Pittenger, M. H. Rubin, "Note on separability of the Werner states in arbitrary
      dimensions", Opt. Commun. 179, 447 (2000).

Example::

    >>> import numpy as np
    >>> from qeframe_example_family.werner_ghz import WernerGHZFamily, npt_threshold
    >>> fam = WernerGHZFamily(WernerGHZFamily.Params(p_range=(0.5, 1.0)))
    >>> batch = fam.generate(4, np.random.default_rng(0), n_qubits=3)
    >>> batch.rho.shape, batch.ground_truth.tolist()[0], npt_threshold(3)
    ((4, 8, 8), [1, 1, 1], 0.2)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, provenance_code
from qeframe.quantum.cuts import n_cuts


def npt_threshold(n_qubits: int) -> float:
    """``p* = 1 / (1 + 2**(n-1))``: ``rho_p`` is NPT on every cut iff ``p > p*``, fully separable iff ``p <= p*``."""
    return 1.0 / (1.0 + 2.0 ** (n_qubits - 1))


def pt_min_eigenvalue(p: np.ndarray | float, n_qubits: int) -> np.ndarray:
    """Closed-form smallest eigenvalue of ``rho_p^{T_A}``, the same for every cut: ``(1-p)/2**n - p/2``.

    ``p`` of any shape; the result has the same shape (``float64``).
    """
    p = np.asarray(p, dtype=np.float64)
    return (1.0 - p) / 2.0**n_qubits - p / 2.0


def werner_ghz_states(p: np.ndarray, n_qubits: int) -> np.ndarray:
    """``rho_p`` for each visibility in ``p`` ``(N,)``: ``(N, 2**n, 2**n)`` ``complex128``, batched."""
    p = np.asarray(p, dtype=np.float64)
    d = 2**n_qubits
    ghz = np.zeros((d, d), dtype=np.complex128)
    ghz[np.ix_([0, d - 1], [0, d - 1])] = 0.5  # |GHZ><GHZ| in the computational basis
    return p[:, None, None] * ghz + ((1.0 - p) / d)[:, None, None] * np.eye(d, dtype=np.complex128)


class WernerGHZParams(FamilyParams):
    """Parameters of ``werner_ghz`` (plus ``local_randomize`` from :class:`~qeframe.plugin.interfaces.FamilyParams`)."""

    p_range: tuple[float, float] = Field(
        default=(0.0, 1.0),
        description="Interval [low, high] within [0, 1] from which the GHZ weight p is drawn uniformly.",
    )

    @model_validator(mode="after")
    def _check_range(self) -> WernerGHZParams:
        low, high = self.p_range
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"p_range must satisfy 0 <= low <= high <= 1, got {list(self.p_range)}")
        return self


class WernerGHZFamily(StateFamily):
    """GHZ state in white noise, ``p |GHZ><GHZ| + (1-p) I/2**n``; exact per-cut truth (NPT iff p > 1/(1+2**(n-1)))."""

    name = "werner_ghz"
    description = (
        "GHZ state in white noise p|GHZ><GHZ| + (1-p)I/2^n; entangled on every cut iff p > 1/(1+2^(n-1))"
    )
    Params = WernerGHZParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        """``count`` states with ``p ~ U(p_range)``; ground truth 1 (``npt``) or 0 (``analytic``) on all cuts."""
        low, high = self.params.p_range
        p = rng.uniform(low, high, size=count)
        entangled = p > npt_threshold(n_qubits)  # (N,)
        shape = (count, n_cuts(n_qubits))
        truth = np.broadcast_to(np.where(entangled, ENTANGLED, SEPARABLE)[:, None], shape)
        provenance = np.broadcast_to(
            np.where(entangled, provenance_code("npt"), provenance_code("analytic"))[:, None], shape
        )
        return StateBatch.build(
            werner_ghz_states(p, n_qubits),
            truth,
            provenance.astype(np.uint8),
            pure=p == 1.0,
            fully_separable=np.where(entangled, 0, 1),
            pptes=False,
        )


@hookimpl
def qeframe_register_families(register):
    """Register :class:`WernerGHZFamily` with qeframe (called once by the registry)."""
    register(WernerGHZFamily)
