"""Closed-form statevectors of the one- and two-qubit random circuits (the ``product`` family's factors).

The ``product`` family's ``circuit`` source draws, for every local factor, pure states of a
separable circuit on one qubit (``U_L ⋯ U_1 |0>``) or of an entangled random circuit on two qubits
(one U layer on ``|00>``, one CU gate on a random ordered pair, then ``L`` U layers on each qubit; see
:mod:`._circuits`). The "comb" entries of Table I mix up to 16 such states into each of up to 16
terms and the verified labeler keeps about 3 % of them, so these few-qubit circuits are drawn by the
hundred million in a paper build; the general engine
(:func:`~._circuits.random_circuit_plan` + :func:`~._circuits.plan_statevectors`) spends most of
that time on generic machinery (parameter layouts, masks, index tables, gates applied to zero
amplitudes, the phases of gate entries that multiply zeros).

The functions here **draw the same random numbers in the same order** as
``circuit_states("separable", count, rng, 1, u_layers=L)`` and
``circuit_states("entangled", count, rng, 2, u_layers=L)`` (the same ``rng`` calls with the same
shapes and dtypes, so the generator ends in the same state) and evaluate the same circuit with the
same floating-point operations on every amplitude that is not a product with a zero amplitude. They
leave out only

* the ``λ`` phases of the first gate acting on ``|0>``: ``U(θ, φ, λ)|0> = (cos θ/2, e^{iφ} sin θ/2)``
  does not depend on ``λ``, and the engine multiplies those entries by zero amplitudes;
* the other additions of ``u · 0`` terms and multiplications by ``1 + 0i``.

Every nonzero amplitude is therefore bit-identical to the engine's; an amplitude that is exactly 0
(an angle drawn exactly at 0 on the float32 grid) may differ in the sign of that zero, which
disappears in every sum a density matrix forms with a nonzero term (``x + (±0) = x``). One
exception: for a single two-qubit circuit (``count == 1``) the engine's ``(…, 1)`` arrays broadcast
its gate entries with stride 0, numpy picks other inner loops and the engine's amplitudes round
differently (by ~1e-17); this module gives the values the engine gives for every larger batch, and
the ``product`` family calls the engine for one sample so that its rows stay bit-identical. The tests
(``tests/plugins/test_small_circuits.py``) compare the vectors, the generator state and the
``product`` family's rows with the engine's; ``benchmarks/bench_generation.py --comb`` measures
the speed against the engine in the same run.

While a test or benchmark swaps the engine's gate sampler (``_circuits.random_gate_params``, e.g.
for the float64 reference of store format 1), :func:`reproduces_engine` is false and the
``product`` family draws with the engine, so the swap reaches its rows as before.

Layouts: results are batch-first ``(count, 2**k)`` complex128, big-endian (qubit 0 is the leftmost
Kronecker factor), like :func:`~._circuits.plan_statevectors`.
"""

from __future__ import annotations

import numpy as np

from qeframe.quantum.random import unit_complex

from . import _circuits
from ._circuits import Gate2, _apply_1q_bl, _matmul_parts, u_parts

#: The gate sampler whose draws these closed forms reproduce (the trig-free one).
GATE_SAMPLER = _circuits.random_gate_params


def reproduces_engine() -> bool:
    """Whether the engine draws with :data:`GATE_SAMPLER`: false while a test or benchmark has swapped
    ``_circuits.random_gate_params`` (e.g. for the float64 reference), when callers must use the engine."""
    return _circuits.random_gate_params is GATE_SAMPLER


#: Samples per pass: the temporaries of a chunk stay in the core's cache (the result does not depend on it).
CHUNK = 2048


def _gate_units(x: np.ndarray, needed: int = 3, approx: bool = False) -> np.ndarray:
    """:func:`~._circuits.random_gate_params` on already drawn float32 uniforms ``x`` ``(k, ...)``,
    parameter-major, for the first ``needed`` parameters only: complex ``(needed, ...)``.

    Same scaling (``x[0] π``, the others ``2π``, in float32), same :func:`unit_complex` (elementwise,
    so its value on a subset is its value on the whole array) and the same ``|sin θ/2|``. With
    ``approx``: complex64, the float32 cosine and sine without the float64 renormalisation (the
    screening pass of :mod:`._screened`; ``|e^{ix}|`` within a few float32 ulps of 1).
    """
    x = x[:needed].copy()
    x[0] *= np.float32(np.pi)
    x[1:] *= np.float32(2.0 * np.pi)
    if approx:
        out = np.empty(x.shape, dtype=np.complex64)
        np.cos(x, out=out.real)
        np.sin(x, out=out.imag)
    else:
        out = unit_complex(x)
    half = out[0].imag
    np.abs(half, out=half)
    return out


def _first_column(half: np.ndarray, e_phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``U(θ, φ, λ)|0>``: entries ``(u00, u10)`` of :func:`~._circuits.u_parts` (no ``λ`` needed)."""
    return half.real.astype(half.dtype), e_phi * half.imag


def _layer_product(final: np.ndarray, q: int) -> Gate2:
    """``U_L ⋯ U_1`` of qubit ``q`` from the parameter-major final layers ``(3, L, n, N)``, multiplied
    in the engine's order (:func:`~._circuits._matmul_parts`, layer 0 acting first)."""
    local = u_parts(final[0, 0, q], final[1, 0, q], final[2, 0, q])
    for layer in range(1, final.shape[1]):
        local = _matmul_parts(u_parts(final[0, layer, q], final[1, layer, q], final[2, layer, q]), local)
    return local


def take_draws(draws: tuple[np.ndarray, ...], cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """The draws of the circuits ``cols`` (every array's last axis is the circuit)."""
    return tuple(a[..., cols] for a in draws)


def one_qubit_draws(rng: np.random.Generator, count: int, u_layers: int = 2) -> tuple[np.ndarray, ...]:
    """The random numbers of ``count`` one-qubit circuits: ``(x,)``, ``x`` ``(3, L, 1, count)`` float32
    (what ``random_gate_params(rng, (L, 1, count), 3)`` draws)."""
    return (rng.random((3, u_layers, 1, count), dtype=np.float32),)


def one_qubit_from_draws(draws: tuple[np.ndarray, ...], approx: bool = False) -> np.ndarray:
    """The states of :func:`one_qubit_separable_states` from :func:`one_qubit_draws`: ``(count, 2)``
    complex128, or complex64 float32 approximations with ``approx``."""
    (x,) = draws
    u_layers, count = x.shape[1], x.shape[-1]
    out = np.empty((count, 2), dtype=np.complex64 if approx else np.complex128)
    for lo in range(0, count, CHUNK):
        sl = slice(lo, lo + CHUNK)
        first = _gate_units(x[:, 0, 0, sl], 2, approx)  # θ, φ of U_1 (λ multiplies |1>, whose amplitude is 0)
        c0, c1 = _first_column(first[0], first[1])
        if u_layers > 1:
            rest = _gate_units(x[:, 1:, 0, sl], 3, approx)  # (3, L-1, chunk)
            for layer in range(u_layers - 1):
                u = u_parts(rest[0, layer], rest[1, layer], rest[2, layer])
                c0, c1 = u[0] * c0 + u[1] * c1, u[2] * c0 + u[3] * c1
        out[sl, 0] = c0
        out[sl, 1] = c1
    return out


def one_qubit_separable_states(rng: np.random.Generator, count: int, u_layers: int = 2) -> np.ndarray:
    """``U_L ⋯ U_1 |0>`` for ``count`` samples: ``(count, 2)`` complex128.

    The stream and the values of ``circuit_states("separable", count, rng, 1, u_layers=u_layers).psi``
    (see the module docstring): one draw ``rng.random((3, L, 1, count), float32)``; the first gate's
    ``λ`` is drawn and not used. The engine forms ``U_l (U_{l-1} ⋯ U_1)`` entry by entry
    (:func:`~._circuits._matmul_parts`) and applies it to ``|0>``; the first column of each product is
    ``(x00 y00 + x01 y10, x10 y00 + x11 y10)`` of the previous one, so iterating the column gives
    the same numbers without the second column.
    """
    return one_qubit_from_draws(one_qubit_draws(rng, count, u_layers))


def two_qubit_draws(rng: np.random.Generator, count: int, u_layers: int = 2) -> tuple[np.ndarray, ...]:
    """The random numbers of ``count`` two-qubit circuits, drawn as the engine draws them:
    ``(x_init (3, 2, N) float32, control (N,) bool, x_cu (4, N) float32, x_final (3, L, 2, N) float32)``.

    The engine also draws the number of CU gates (always 1 on two qubits) and the target keys (the
    target is always the other qubit): drawn here too, and not kept.
    """
    x_init = rng.random((3, 2, count), dtype=np.float32)
    rng.random(count)  # number of CU gates: always 1 on two qubits
    keys = rng.random((count, 2))
    control = keys[:, 1] > keys[:, 0]  # argmax (ties: the first): True -> control is qubit 1
    rng.random((count, 2))  # target keys: the target is always the other qubit
    x_cu = rng.random((4, count), dtype=np.float32)
    x_final = rng.random((3, u_layers, 2, count), dtype=np.float32)
    return x_init, control, x_cu, x_final


def two_qubit_from_draws(draws: tuple[np.ndarray, ...], approx: bool = False) -> np.ndarray:
    """The states of :func:`two_qubit_entangled_states` from :func:`two_qubit_draws`: ``(count, 4)``
    complex128, or complex64 float32 approximations with ``approx``."""
    x_init, control, x_cu, x_final = draws
    count = control.shape[0]
    out = np.empty((count, 4), dtype=np.complex64 if approx else np.complex128)
    for lo in range(0, count, CHUNK):
        sl = slice(lo, lo + CHUNK)
        out[sl] = _two_qubit_chunk(x_init[..., sl], control[sl], x_cu[:, sl], x_final[..., sl], approx).T
    return out


def two_qubit_entangled_states(rng: np.random.Generator, count: int, u_layers: int = 2) -> np.ndarray:
    """Two-qubit random-circuit states ``(count, 4)`` complex128: the stream and the values of
    ``circuit_states("entangled", count, rng, 2, u_layers=u_layers).psi`` (module docstring).

    The engine's circuit on ``|00>``: ``U_a ⊗ U_b``; one CU gate (``g`` is uniform in
    ``1 … k(k-1) - 1 = 1 … 1``) with control ``c`` and target ``1 - c``, ``c`` the argmax of two
    uniforms; then ``L`` U layers per qubit. In closed form, with ``a = U_a|0>`` and ``b = U_b|0>``
    (no ``λ``), the product state ``ψ_ij = a_i b_j`` (qubit 0 first); the CU acts on the pair of
    amplitudes whose control bit is 1 — ``(ψ_10, ψ_11)`` for ``c = 0``, ``(ψ_01, ψ_11)`` for
    ``c = 1`` — as ``e^{iγ} U(θ, φ, λ)``; the final layers as in the engine (batch-last passes).
    Random draws: :func:`two_qubit_draws`.
    """
    return two_qubit_from_draws(two_qubit_draws(rng, count, u_layers))


def _two_qubit_chunk(
    x_init: np.ndarray, control: np.ndarray, x_cu: np.ndarray, x_final: np.ndarray, approx: bool = False
) -> np.ndarray:
    """The states of :func:`two_qubit_entangled_states` from their drawn uniforms: batch-last ``(4, N)``."""
    init = _gate_units(x_init, 2, approx)  # (2, 2, N): θ, φ per qubit
    a0, a1 = _first_column(init[0, 0], init[1, 0])  # qubit 0
    b0, b1 = _first_column(init[0, 1], init[1, 1])  # qubit 1
    psi = np.empty((4, control.shape[0]), dtype=a0.dtype)  # rows ψ_00, ψ_01, ψ_10, ψ_11
    psi[0] = b0 * a0
    psi[1] = b1 * a0
    psi[2] = b0 * a1
    psi[3] = b1 * a1
    cu = _gate_units(x_cu, 4, approx)
    phase = cu[3]
    m = tuple(phase * e for e in u_parts(cu[0], cu[1], cu[2]))
    lo = np.where(control, psi[1], psi[2])  # control bit 1, target bit 0
    hi = psi[3]  # control bit 1, target bit 1
    new_lo = m[0] * lo + m[1] * hi
    psi[3] = m[2] * lo + m[3] * hi
    psi[1] = np.where(control, new_lo, psi[1])
    psi[2] = np.where(control, psi[2], new_lo)
    final = _gate_units(x_final, 3, approx)  # (3, L, 2, N)
    for q in range(2):
        psi = _apply_1q_bl(psi, q, _layer_product(final, q))
    return psi
