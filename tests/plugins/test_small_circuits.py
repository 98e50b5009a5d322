"""Closed-form one- and two-qubit circuit states (``_small_circuits``) against the general engine.

The claim of the module: the same random stream and the same numbers as
``circuit_states("separable", ·, ·, 1)`` and ``circuit_states("entangled", ·, ·, 2)``, so the
``product`` family's rows (and every store's content hash) are unchanged. Checked bit for bit
(``+ 0.0`` identifies the two zeros, the only documented difference), with the generator left in
the same state, for any seed, size and number of final layers, and on the family's rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.families import _common, _small_circuits, product
from qeframe_plugins.families._small_circuits import one_qubit_separable_states, two_qubit_entangled_states
from qeframe_plugins.families.product import ProductFamily

from qeframe.quantum.cuts import n_cuts
from qeframe.quantum.ppt import pt_min_eigenvalues


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical complex arrays, ``-0`` and ``+0`` counted equal."""
    return a.shape == b.shape and np.array_equal((a + 0.0).view(np.float64), (b + 0.0).view(np.float64))


def engine(kind: str, k: int):
    def draw(rng, count, u_layers=2):
        return _common.circuit_states(kind, count, rng, k, u_layers=u_layers).psi

    return draw


CASES = [
    (one_qubit_separable_states, engine("separable", 1)),
    (two_qubit_entangled_states, engine("entangled", 2)),
]


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from([0, 1]),
    count=st.integers(2, 300),
    layers=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_same_stream_and_values_as_the_engine(case, count, layers, seed):
    fast, reference = CASES[case]
    r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
    got, want = fast(r1, count, layers), reference(r2, count, layers)
    assert got.dtype == np.complex128 and got.flags.c_contiguous
    assert same_bits(got, want)
    assert r1.bit_generator.state == r2.bit_generator.state  # the next draws are the same too


@pytest.mark.parametrize("case", [0, 1])
@pytest.mark.parametrize("chunk", [1, 7, None])
def test_chunks_do_not_change_the_values(case, chunk, monkeypatch):
    fast, reference = CASES[case]
    count = 2 * _small_circuits.CHUNK + 17
    want = reference(np.random.default_rng(3), count)
    if chunk is not None:
        monkeypatch.setattr(_small_circuits, "CHUNK", chunk)
    assert same_bits(fast(np.random.default_rng(3), count), want)


@pytest.mark.parametrize("case", [0, 1])
def test_empty_and_single_draws(case):
    """0 and 1 samples: the same stream; one sample the engine rounds through other numpy loops
    (module docstring), so only closeness is claimed there and the family calls the engine."""
    fast, reference = CASES[case]
    for count in (0, 1):
        r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
        got, want = fast(r1, count), reference(r2, count)
        assert got.shape == want.shape == (count, 2 ** (case + 1))
        assert np.allclose(got, want, atol=1e-15, rtol=0)
        assert r1.bit_generator.state == r2.bit_generator.state


def test_two_qubit_states_are_normalised_and_entangled():
    psi = two_qubit_entangled_states(np.random.default_rng(5), 4000)
    assert np.allclose(np.linalg.norm(psi, axis=1), 1.0, atol=1e-12)
    # concurrence of a pure two-qubit state: 2 |ψ00 ψ11 - ψ01 ψ10|; a product state has 0
    concurrence = 2 * np.abs(psi[:, 0] * psi[:, 3] - psi[:, 1] * psi[:, 2])
    assert np.mean(concurrence > 1e-6) > 0.99
    # the CU's control is uniform over the two qubits: the circuits are symmetric in distribution
    # under swapping the qubits, so <σz ⊗ 1> and <1 ⊗ σz> have equal means
    p = np.abs(psi) ** 2
    z0, z1 = p[:, 0] + p[:, 1] - p[:, 2] - p[:, 3], p[:, 0] - p[:, 1] + p[:, 2] - p[:, 3]
    assert abs(z0.mean() - z1.mean()) < 5 * np.hypot(z0.std(), z1.std()) / np.sqrt(len(p))


def test_one_qubit_state_is_the_product_of_the_layers():
    """Against the gates written out: ``U(θ2, φ2, λ2) U(θ1, φ1, λ1) |0>`` from the same draws."""
    from qeframe_plugins.families._circuits import u_matrices

    x = np.random.default_rng(9).random((3, 2, 1, 50), dtype=np.float32).astype(np.float64)
    angles = np.moveaxis(x[:, :, 0] * np.array([2 * np.pi] * 3)[:, None, None], 0, -1)  # (L, N, 3)
    u = u_matrices(angles)  # (L, N, 2, 2)
    want = (u[1] @ u[0])[:, :, 0]
    got = one_qubit_separable_states(np.random.default_rng(9), 50)
    assert np.allclose(got, want, atol=2e-6)  # the float32 angle grid and trigonometry


@pytest.mark.parametrize("kind", ["separable", "biseparable"])
@pytest.mark.parametrize(
    "params",
    [
        {"terms": (2, 16), "local_terms": (2, 16)},  # comb
        {"terms": (2, 16), "pure_factors": True},  # outer
        {},  # inner
    ],
)
@pytest.mark.parametrize("count", [300, 3])  # 3: term slots with a single sample (the engine's case)
def test_product_rows_are_those_of_the_engine(kind, params, count, monkeypatch):
    fam = ProductFamily(ProductFamily.Params(kind=kind, source="circuit", **params))
    new = fam.sample(count, np.random.default_rng(11))
    monkeypatch.setattr(product, "one_qubit_separable_states", engine("separable", 1))
    monkeypatch.setattr(product, "two_qubit_entangled_states", engine("entangled", 2))
    old = fam.sample(count, np.random.default_rng(11))
    assert np.array_equal(new.rho.view(np.float64), old.rho.view(np.float64))  # every bit, zeros too
    assert np.array_equal(new.ground_truth, old.ground_truth)
    assert new.ground_truth.shape == (count, n_cuts(3))
    assert pt_min_eigenvalues(new.rho)[new.ground_truth == 0].min() > -1e-9  # separable cuts are PPT
