"""``horodecki`` family: P. Horodecki's 2 x 4 PPT entangled state and its 2 x 2**(n-1) generalisation.

Definition. Qubit 1 is the "2" side (basis ``|0>, |1>``); qubits ``2..n`` form the ``D = 2**(n-1)``
dimensional side, basis ``|0>, ..., |D-1>`` in big-endian order (for ``n = 3``: ``|j> = |q2 q3>``).
For ``0 < b < 1`` (unnormalised, then divided by the trace ``N_b = (2D - 1) b + 1``)::

    rho_b = b sum_{i=0}^{D-2} |Psi_i><Psi_i| + b |0, D-1><0, D-1| + |1, phi_b><1, phi_b|,

    |Psi_i> = |0, i> + |1, i+1>,     |phi_b> = sqrt((1+b)/2) |0> + sqrt((1-b)/2) |D-1>.

For ``n = 3`` (``D = 4``) this is exactly the 8 x 8 matrix of P. Horodecki's 2 x 4 example [1]::

    rho_b = 1/(7b+1) [[b, 0, 0, 0, 0,       b, 0, 0      ],
                      [0, b, 0, 0, 0,       0, b, 0      ],
                      [0, 0, b, 0, 0,       0, 0, b      ],
                      [0, 0, 0, b, 0,       0, 0, 0      ],
                      [0, 0, 0, 0, (1+b)/2, 0, 0, c      ],
                      [b, 0, 0, 0, 0,       b, 0, 0      ],
                      [0, b, 0, 0, 0,       0, b, 0      ],
                      [0, 0, b, 0, c,       0, 0, (1+b)/2]],    c = sqrt(1 - b^2)/2.

The same construction with ``D = 2**(n-1)`` gives the "2 x 2^(N-1)" PPTES of the paper's
validation set [2]. (The authors' code builds the mirror image, ``|0> <-> |1>`` on qubit 1 and
``|j> <-> |D-1-j>`` on the rest, i.e. ``rho_b`` conjugated by ``X`` on every qubit — a local
unitary, so every per-cut property below is the same.)

Per-cut facts, all exact, for every ``n >= 3`` and ``0 < b < 1``:

* **Cut 1|2..n is PPT.** With respect to qubit 1, ``rho_b^{T_1} = [[b I, b S^T], [b S, b P + phi phi^T]]``
  (``S = sum_i |i><i+1|``, ``P = I - |0><0|``). Its Schur complement is
  ``b(|D-1><D-1| - |0><0|) + |phi_b><phi_b|``, which on ``span{|0>, |D-1>}`` is
  ``[[(1-b)/2, sqrt(1-b^2)/2], [sqrt(1-b^2)/2, (1+b)/2]]`` (determinant 0) and zero elsewhere:
  PSD. Ranks: ``rank rho_b = rank rho_b^{T_1} = D + 1``.
* **Cut 1|2..n is entangled** (range criterion, as in [1]). If ``rho_b`` were separable across
  the cut it would be a mixture of product vectors ``|e, f>`` from its range with ``|e*, f>`` in
  the range of ``rho_b^{T_1}``. The product vectors in the range of ``rho_b`` are ``|1, phi_b>``,
  ``|0, D-1>`` and ``(|0> + l|1>)(1, m, m^2, ..., m^{D-2}, m^{D-1} + t/s)`` with ``m = 1/l``,
  ``s, t = sqrt((1 +- b)/2)``. The kernel of ``rho_b^{T_1}`` contains ``|1, k> - |0, k+1>``
  (``k = 1..D-2``) and ``s|1, 0> - s|0, 1> - t|1, D-1>``: the first vectors admit the third kind
  only if ``|l| = 1`` and ``t = 0`` (``b = 1``) and exclude ``|0, D-1>``; the last one has overlap
  ``s^2 - t^2 = b`` with ``|1, phi_b>``. No product vector passes, so ``rho_b`` is entangled
  (an edge state) across 1|2..n.
* **Every other cut is NPT.** Let the cut transpose a set ``X`` of qubits with
  ``1 not in X`` and ``X != {2..n}``. Let ``e`` (``e'``) be the string on qubits ``2..n`` with ones
  exactly on ``X`` (on the complement of ``X``) and ``p = e' - 1`` if qubit ``n`` is not in ``X``,
  ``p = e' + 1`` otherwise. The principal submatrix of ``N_b rho_b^{T_X}`` on
  ``|1, e>, |1, e'>, |0, p>`` is ``[[b, st, 0], [st, b, b], [0, b, b]]`` with ``st = sqrt(1-b^2)/2``;
  its eigenvalues are ``b`` and ``(2b -+ sqrt(1 + 3b^2))/2``. By eigenvalue interlacing::

      lambda_min(rho_b^{T_X}) <= (2b - sqrt(1 + 3 b^2)) / (2 N_b) < 0        for b < 1,

  and numerically the bound is attained (:func:`npt_eigenvalue`). It tends to 0 as
  ``b -> 1`` like ``-(1 - b) / (8 D)``, so for ``1 - b`` below about ``8 D * tol`` a numerical
  PPT test with tolerance ``tol`` no longer sees it (``tol = 1e-10``, ``n = 3``: ``1 - b < 3.2e-9``).

Ground truth: entangled (1) on every cut, provenance ``analytic``; ``fully_separable = 0``,
``pptes = True`` (PPT on cut 1|2..n), never pure.

References:
    [1] P. Horodecki, "Separability criterion and inseparable mixed states with positive partial
        transposition", Phys. Lett. A 232, 333 (1997), arXiv:quant-ph/9703004.
    [2] J. Pawłowski, M. Krawczyk, arXiv:2210.07410 (test sets "Horodecki PPTES" and
        "2 x 2^(N-1) PPTES").

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.horodecki import HorodeckiFamily
    >>> fam = HorodeckiFamily(HorodeckiFamily.Params(b=0.5))
    >>> batch = fam.generate(2, np.random.default_rng(0))
    >>> batch.rho.shape, batch.ground_truth[0].tolist(), bool(batch.meta["pptes"][0])
    ((2, 8, 8), [1, 1, 1], True)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED


def open_uniform(low: float, high: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws, uniform on the open interval ``(low, high)`` (``low < high``).

    ``Generator.uniform`` samples ``[low, high)``; the endpoints of a family's parameter interval
    are often degenerate states (here ``b = 0`` is a product state), so draws are moved to the
    nearest interior float when rounding puts them on an endpoint.
    """
    x = low + (high - low) * rng.random(size)
    return np.clip(x, np.nextafter(low, high), np.nextafter(high, low))


def horodecki_states(b: np.ndarray, n_qubits: int = 3) -> np.ndarray:
    """``rho_b`` (module docstring) for each ``b`` in ``(N,)``: ``(N, 2**n, 2**n)`` ``complex128``.

    Batched: a constant template scaled by ``b`` plus the ``|1, phi_b>`` block; trace 1.
    """
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    dim = 2**n_qubits
    half = dim // 2  # D: dimension of qubits 2..n
    i = np.arange(half - 1)
    template = np.zeros((dim, dim))
    template[i, i] = template[half + i + 1, half + i + 1] = 1.0  # |Psi_i><Psi_i|, diagonal
    template[i, half + i + 1] = template[half + i + 1, i] = 1.0  # |Psi_i><Psi_i|, coherences
    template[half - 1, half - 1] = 1.0  # |0, D-1><0, D-1|
    rho = b[:, None, None] * template
    rho[:, half, half] += (1.0 + b) / 2.0  # |1, phi_b><1, phi_b|
    rho[:, dim - 1, dim - 1] += (1.0 - b) / 2.0
    coherence = np.sqrt(1.0 - b * b) / 2.0
    rho[:, half, dim - 1] += coherence
    rho[:, dim - 1, half] += coherence
    rho /= ((dim - 1) * b + 1.0)[:, None, None]
    return rho.astype(np.complex128)


def npt_eigenvalue(b: np.ndarray | float, n_qubits: int = 3) -> np.ndarray:
    """``(2b - sqrt(1 + 3 b^2)) / (2 ((2**n - 1) b + 1))``: the smallest eigenvalue of ``rho_b^{T_A}``
    on every cut except ``1|2..n`` (an upper bound by interlacing, attained numerically).

    Negative for ``0 <= b < 1``. ``b`` of any shape; the result has the same shape (``float64``).
    """
    b = np.asarray(b, dtype=np.float64)
    return (2.0 * b - np.sqrt(1.0 + 3.0 * b * b)) / (2.0 * ((2**n_qubits - 1) * b + 1.0))


def check_b_range(value: tuple[float, float]) -> tuple[float, float]:
    """Validate a ``b_range`` parameter: an open interval ``(low, high)`` with ``0 <= low < high <= 1``."""
    low, high = value
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"b_range must satisfy 0 <= low < high <= 1, got {list(value)}")
    return value


class HorodeckiParams(FamilyParams):
    """Parameters of ``horodecki`` (plus ``local_randomize``): a fixed ``b`` or a range to draw it from."""

    b: float | None = Field(
        default=None, gt=0, lt=1, description="Fixed b in (0, 1); None draws b from b_range."
    )
    b_range: tuple[float, float] = Field(
        default=(0.0, 1.0),
        description="Open interval (low, high), 0 <= low < high <= 1, from which b is drawn uniformly.",
    )

    @field_validator("b_range")
    @classmethod
    def _check_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return check_b_range(value)

    @model_validator(mode="after")
    def _fixed_or_range(self) -> HorodeckiParams:
        if self.b is not None and "b_range" in self.model_fields_set:
            raise ValueError("give either b (a fixed value) or b_range (to draw b), not both")
        return self


class HorodeckiFamily(StateFamily):
    """P. Horodecki's 2 x 2**(n-1) PPT entangled state (qubit 1 | qubits 2..n); entangled on every cut."""

    name = "horodecki"
    description = (
        "Horodecki 2x4 (2x2^(n-1)) PPT entangled state, PPT on 1|rest, NPT elsewhere; entangled on every cut"
    )
    Params = HorodeckiParams

    #: The construction needs D = 2**(n-1) >= 4 (every 2 x 2 and 2 x 3 PPT state is separable).
    qubit_range = (3, None)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        """``count`` states with the fixed ``b`` or ``b`` uniform on the open ``b_range``."""
        if self.params.b is not None:
            b = np.full(count, self.params.b)
        else:
            b = open_uniform(*self.params.b_range, count, rng)
        return StateBatch.build(
            horodecki_states(b, n_qubits), ENTANGLED, "analytic", pure=False, fully_separable=0, pptes=True
        )


@hookimpl
def qeframe_register_families(register):
    """Register :class:`HorodeckiFamily`."""
    register(HorodeckiFamily)
