"""``acin`` family: the Acín–Bruß–Lewenstein–Sanpera three-qubit PPT entangled "edge" states.

Definition [1] (three qubits, big-endian, ``|GHZ> = (|000> + |111>)/sqrt(2)``, ``a, b, c > 0``)::

    rho = (1/N) ( 2|GHZ><GHZ| + a |001><001| + b |010><010| + c |011><011|
                  + (1/c) |100><100| + (1/b) |101><101| + (1/a) |110><110| ),

    N = 2 + a + 1/a + b + 1/b + c + 1/c.

In the computational basis ``rho`` is diagonal except for ``<000|rho|111> = 1/N``. The paper's
"Acin PPTES" test set (authors' code [2], which builds exactly this matrix) draws ``a, b, c``
uniformly from ``[0.01, 100]`` and randomises the states locally; these are the defaults here.

Facts, all exact (``N rho`` is used below):

* **PPT on every cut, with ranks (7; 7, 7, 7).** Transposing qubit 1 moves the coherence to
  ``|100><011|``: the block on ``{|011>, |100>}`` is ``[[c, 1], [1, 1/c]]`` (determinant 0), the rest
  is diagonal and positive. Likewise qubit 2 gives ``[[b, 1], [1, 1/b]]`` on ``{|010>, |101>}`` and
  qubit 3 ``[[a, 1], [1, 1/a]]`` on ``{|001>, |110>}``. Kernels: ``ker rho = |000> - |111>``,
  ``ker rho^{T_1} = |011> - c|100>``, ``ker rho^{T_2} = |010> - b|101>``,
  ``ker rho^{T_3} = |001> - a|110>``.
* **Separable across every bipartition.** Across 1|23 write ``|0'> = |00>``, ``|1'> = |11>`` on
  qubits 2,3. The GHZ part with the two matching diagonal terms is the two-qubit "X" state on
  qubit 1 x span{|0'>, |1'>}::

      |00'><00'| + |11'><11'| + |00'><11'| + |11'><00'| + c|01'><01'| + (1/c)|10'><10'|
          = (1/4) sum_{k=0}^{3} |v_k><v_k|,    v_k = (|0> + i^k c^{-1/2} |1>) (|0'> + i^{-k} c^{1/2} |1'>)

  (unnormalised ``v_k``; averaging the phases ``i^k`` cancels every coherence but ``|00'><11'|``).
  The remaining four terms are diagonal, i.e. product.
  Cuts 2|13 and 3|12 are the same with the pairs ``|101>, |010>`` (weights ``1/b, b``) and
  ``|110>, |001>`` (``1/a, a``) — so every cut is separable for all ``a, b, c > 0`` (see
  :func:`cut_decomposition`).
* **Not fully separable when** ``c != a b`` (range criterion, [1]). A fully separable state is a
  mixture of product vectors ``|x, y, z>`` in its range with ``|x*, y, z>``, ``|x, y*, z>``,
  ``|x, y, z*>`` in the ranges of the three partial transposes. Writing the k-th factor as
  ``x_k|0> + y_k|1>``, the four kernels above demand (up to conjugations)
  ``x1 x2 x3 = y1 y2 y3``, ``x1 y2 y3 = c y1 x2 x3``, ``x1 y2 x3 = b y1 x2 y3``,
  ``x1 x2 y3 = a y1 y2 x3``. Each equation pairs complementary monomials, so a vanishing
  component kills one side of all four and forces the product of the other two factors to
  vanish: every component is non-zero. With ``r_k = |y_k / x_k|`` the equations give
  ``r1 = c^{-1/2}``, ``r2 = b^{1/2}``, ``r3 = a^{1/2}`` and ``r1 r2 r3 = 1``, i.e. ``c = a b``.
  So for ``c != a b`` no product vector passes — ``rho`` is an entangled edge state. The set
  ``c = a b`` has measure zero; the sampler rejects draws within a relative distance
  :data:`MIN_RELATIVE_GAP` of it and fixed parameters on it are refused.

Ground truth: separable (0) on every cut, provenance ``analytic``; ``fully_separable = 0``,
``pptes = True`` (the paper's convention calls every cut of it entangled).

References:
    [1] A. Acín, D. Bruß, M. Lewenstein, A. Sanpera, "Classification of mixed three-qubit states",
        Phys. Rev. Lett. 87, 040401 (2001), arXiv:quant-ph/0103025 — the closing "new family of
        PPTES edge states with maximal ranks" (here ranks (7; 7, 7, 7)).
    [2] J. Pawłowski, M. Krawczyk, arXiv:2210.07410; github.com/Maticraft/quantum_correlations.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.acin import AcinFamily
    >>> fam = AcinFamily(AcinFamily.Params(a=2.0, b=4.0, c=0.5))
    >>> batch = fam.generate(1, np.random.default_rng(0))
    >>> batch.ground_truth.tolist(), round(float(batch.rho[0, 0, 7].real * 11.25), 12)
    ([[0, 0, 0]], 1.0)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import SEPARABLE

#: Draws (and fixed parameters) with ``|c - a b| <= MIN_RELATIVE_GAP * max(c, a b)`` are refused:
#: ``c = a b`` is where the state stops being certainly entangled.
MIN_RELATIVE_GAP = 1e-9

#: Default interval for each of ``a, b, c`` (the authors' test set).
DEFAULT_RANGE = (0.01, 100.0)

#: Rejection rounds before :meth:`AcinFamily.sample` gives up (each round redraws the rejected rows).
_MAX_ROUNDS = 64


def acin_states(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``rho`` (module docstring) for parameters ``(N,)`` each: ``(N, 8, 8)`` ``complex128``."""
    a, b, c = (np.asarray(x, dtype=np.float64).reshape(-1) for x in (a, b, c))
    diag = np.stack([np.ones_like(a), a, b, c, 1.0 / c, 1.0 / b, 1.0 / a, np.ones_like(a)], axis=1)
    norm = diag.sum(axis=1)  # = 2 + a + 1/a + b + 1/b + c + 1/c
    rho = np.zeros((a.shape[0], 8, 8), dtype=np.complex128)
    idx = np.arange(8)
    rho[:, idx, idx] = diag
    rho[:, 0, 7] = rho[:, 7, 0] = 1.0
    return rho / norm[:, None, None]


def cut_decomposition(a: float, b: float, c: float, cut: int) -> tuple[np.ndarray, np.ndarray]:
    """An explicit separable decomposition of ``rho`` across ``cut`` (0: 1|23, 1: 2|13, 2: 3|12).

    Returns ``(weights, vectors)``: ``weights`` ``(8,)`` summing to 1 and ``vectors`` ``(8, 8)``
    unit vectors, each a product across the cut, with ``sum_k weights[k] |v_k><v_k| == rho``.
    The first four are the phase-averaged ``v_k`` of the module docstring (qubit ``q = cut + 1``
    against the logical qubit ``|0'>, |1'>`` = both other qubits ``0`` or both ``1``); the last four
    are the remaining computational basis states. ``w`` is the weight of ``|q = 0, others = 11>``:
    ``c``, ``1/b``, ``1/a`` for the three cuts.
    """
    others = [p for p in range(3) if p != cut]

    def index(bit_q: int, bit_logical: int) -> int:
        bits = {cut: bit_q, others[0]: bit_logical, others[1]: bit_logical}
        return sum(bits[p] << (2 - p) for p in range(3))

    w = (c, 1.0 / b, 1.0 / a)[cut]
    vectors = np.zeros((8, 8), dtype=np.complex128)
    weights = np.zeros(8)
    for k in range(4):
        left = (1.0, 1j**k / np.sqrt(w))  # qubit q: |0> + i^k w^{-1/2} |1>
        right = (1.0, np.sqrt(w) / 1j**k)  # logical qubit: |0'> + i^{-k} w^{1/2} |1'>
        for x in (0, 1):
            for y in (0, 1):
                vectors[k, index(x, y)] = left[x] * right[y]
        norm2 = np.vdot(vectors[k], vectors[k]).real  # (1 + 1/w)(1 + w)
        vectors[k] /= np.sqrt(norm2)
        weights[k] = norm2 / 4.0
    diag = np.array([1.0, a, b, c, 1.0 / c, 1.0 / b, 1.0 / a, 1.0])
    rest = sorted(set(range(8)) - {index(x, y) for x in (0, 1) for y in (0, 1)})
    vectors[4 + np.arange(4), rest] = 1.0
    weights[4:] = diag[rest]
    return weights / diag.sum(), vectors


def _too_close(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    ab = a * b
    return np.abs(c - ab) <= MIN_RELATIVE_GAP * np.maximum(c, ab)


def _positive_range(value: tuple[float, float], name: str) -> tuple[float, float]:
    low, high = value
    if not 0.0 < low < high < np.inf:
        raise ValueError(f"{name} must satisfy 0 < low < high < inf, got {list(value)}")
    return value


class AcinParams(FamilyParams):
    """Parameters of ``acin`` (plus ``local_randomize``): each of ``a, b, c`` fixed or drawn from a range."""

    a: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Fixed a > 0; None draws it."
    )
    b: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Fixed b > 0; None draws it."
    )
    c: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Fixed c > 0; None draws it."
    )
    a_range: tuple[float, float] = Field(default=DEFAULT_RANGE, description="Interval 0 < low < high for a.")
    b_range: tuple[float, float] = Field(default=DEFAULT_RANGE, description="Interval 0 < low < high for b.")
    c_range: tuple[float, float] = Field(default=DEFAULT_RANGE, description="Interval 0 < low < high for c.")
    distribution: Literal["uniform", "log-uniform"] = Field(
        default="uniform",
        description="How a, b, c are drawn from their ranges: uniform (the paper) or uniform in log.",
    )

    @field_validator("a_range", "b_range", "c_range")
    @classmethod
    def _check_range(cls, value: tuple[float, float], info) -> tuple[float, float]:
        return _positive_range(value, info.field_name)

    @model_validator(mode="after")
    def _check(self) -> AcinParams:
        for name in ("a", "b", "c"):
            if getattr(self, name) is not None and f"{name}_range" in self.model_fields_set:
                raise ValueError(f"give either {name} (a fixed value) or {name}_range (to draw it), not both")
        fixed = (self.a, self.b, self.c)
        if None not in fixed and _too_close(*(np.array(x) for x in fixed)):
            raise ValueError(
                f"c must differ from a*b (got c = {self.c}, a*b = {self.a * self.b}): "
                "at c = ab the state is not known to be entangled"
            )
        return self


class AcinFamily(StateFamily):
    """Acín–Bruß–Lewenstein–Sanpera PPT entangled edge states: separable on every cut, not fully separable."""

    name = "acin"
    description = (
        "Acin-Bruss-Lewenstein-Sanpera 3-qubit PPT edge states: separable on every cut, not fully separable"
    )
    Params = AcinParams

    #: Three qubits only.
    qubit_range = (3, 3)

    def _draw(self, name: str, size: int, rng: np.random.Generator) -> np.ndarray:
        fixed = getattr(self.params, name)
        if fixed is not None:
            return np.full(size, float(fixed))
        low, high = getattr(self.params, f"{name}_range")
        if self.params.distribution == "log-uniform":
            return np.exp(rng.uniform(np.log(low), np.log(high), size))
        return rng.uniform(low, high, size)

    def _draw_all(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._draw("a", size, rng), self._draw("b", size, rng), self._draw("c", size, rng)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        """``count`` states; draws with ``c`` within :data:`MIN_RELATIVE_GAP` of ``a b`` are redrawn."""
        a, b, c = self._draw_all(count, rng)
        for _ in range(_MAX_ROUNDS):  # rejection rounds, each vectorised over the rejected rows
            bad = np.flatnonzero(_too_close(a, b, c))
            if bad.size == 0:
                break
            a[bad], b[bad], c[bad] = self._draw_all(bad.size, rng)
        else:
            raise QeframeError(
                "acin: the parameter ranges leave (almost) only c = a*b, where the state is not entangled"
            )
        return StateBatch.build(
            acin_states(a, b, c), SEPARABLE, "analytic", pure=False, fully_separable=0, pptes=True
        )


@hookimpl
def qeframe_register_families(register):
    """Register :class:`AcinFamily`."""
    register(AcinFamily)
