"""The PPT entangled test families ``horodecki``, ``upb`` and ``acin``.

Each family is checked against its closed forms (matrix entries, ranks, kernels, partial-transpose
spectra), against qiskit's partial transpose on single states, and — where the docstring proves
separability across a cut — against an explicit separable decomposition. ``local_randomize``
must keep valid density matrices and the per-cut PPT pattern.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.families.acin import (
    MIN_RELATIVE_GAP,
    AcinFamily,
    acin_states,
    cut_decomposition,
)
from qeframe_plugins.families.horodecki import (
    HorodeckiFamily,
    horodecki_states,
    npt_eigenvalue,
    open_uniform,
)
from qeframe_plugins.families.upb import UPBFamily, shifts_upb_vectors, upb_state

from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.interfaces import StateBatch
from qeframe.plugin.labels import provenance_code
from qeframe.plugin.registry import Registry
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.ops import partial_trace, partial_transpose, permute_qubits
from qeframe.quantum.ppt import PPT_TOL, pt_eigenvalues, pt_min_eigenvalues
from qeframe.quantum.qiskit_interop import to_qiskit
from qeframe.quantum.validation import validate_density_matrices

ANALYTIC = provenance_code("analytic")
#: eigenvalue tolerance for exact zeros of trace-1 8x8..32x32 matrices
ZERO = 1e-12


def qiskit_pt_min(rho: np.ndarray, side_a: tuple[int, ...]) -> float:
    """lambda_min of the partial transpose on the qubits ``side_a``, computed by qiskit
    (:func:`~qeframe.quantum.qiskit_interop.to_qiskit`: qeframe qubit k = qiskit qubit k)."""
    pt = to_qiskit(rho).partial_transpose(list(side_a))
    return float(np.linalg.eigvalsh(pt.data)[0])


def assert_valid(rho: np.ndarray) -> None:
    validate_density_matrices(rho, atol=1e-10)


def numerical_rank(m: np.ndarray, tol: float = 1e-10) -> int:
    return int((np.abs(np.linalg.eigvalsh(m)) > tol).sum())


def test_registered_through_entry_points():
    reg = Registry.load()
    for name, cls in [("horodecki", HorodeckiFamily), ("upb", UPBFamily), ("acin", AcinFamily)]:
        assert reg.get("family", name) is cls
    fam = reg.create("family", "horodecki", {"b": 0.25, "local_randomize": True})
    assert fam.params.b == 0.25 and fam.params.local_randomize
    with pytest.raises(SpecError, match="b"):
        reg.create("family", "horodecki", {"b": 1.0})
    with pytest.raises(SpecError, match="unknown key"):
        reg.create("family", "upb", {"b": 0.5})


# ------------------------------------------------------------------------------------- horodecki


def horodecki_paper_matrix(b: float) -> np.ndarray:
    """P. Horodecki, Phys. Lett. A 232, 333 (1997): the 2 x 4 matrix, typed in from the paper."""
    s = np.sqrt(1 - b * b) / 2
    h = (1 + b) / 2
    m = np.array(
        [
            [b, 0, 0, 0, 0, b, 0, 0],
            [0, b, 0, 0, 0, 0, b, 0],
            [0, 0, b, 0, 0, 0, 0, b],
            [0, 0, 0, b, 0, 0, 0, 0],
            [0, 0, 0, 0, h, 0, 0, s],
            [b, 0, 0, 0, 0, b, 0, 0],
            [0, b, 0, 0, 0, 0, b, 0],
            [0, 0, b, 0, s, 0, 0, h],
        ]
    )
    return m / (7 * b + 1)


B_GRID = np.concatenate([[1e-6, 1e-3], np.linspace(0.005, 0.995, 199), [0.999, 1 - 1e-6]])


def test_horodecki_matches_the_paper_matrix():
    rho = horodecki_states(B_GRID, 3)
    expected = np.stack([horodecki_paper_matrix(b) for b in B_GRID])
    np.testing.assert_allclose(rho, expected, atol=1e-15)
    assert rho.dtype == np.complex128 and rho.shape == (B_GRID.size, 8, 8)


@pytest.mark.parametrize("n_qubits", [3, 4, 5])
def test_horodecki_ppt_on_first_cut_npt_elsewhere(n_qubits):
    """The claim of the docstring on a grid of b: PPT on 1|rest, NPT with the closed-form eigenvalue
    on every other cut (no b in the grid where another cut is PPT)."""
    b = B_GRID if n_qubits < 5 else B_GRID[::4]
    rho = horodecki_states(b, n_qubits)
    assert_valid(rho)
    lam = pt_min_eigenvalues(rho)
    assert lam.shape == (b.size, n_cuts(n_qubits))
    assert lam[:, 0].min() > -ZERO
    expected = npt_eigenvalue(b, n_qubits)
    assert (expected < 0).all()
    np.testing.assert_allclose(
        lam[:, 1:], np.broadcast_to(expected[:, None], lam[:, 1:].shape), rtol=1e-8, atol=1e-14
    )
    assert (lam[:, 1:] < -PPT_TOL).all()  # NPT even at b = 1 - 1e-6 (lambda ~ -(1-b)/(8D))


@pytest.mark.parametrize("n_qubits", [3, 4])
def test_horodecki_ranks_and_edge_property(n_qubits):
    """rank rho = rank rho^{T_1} = D + 1, and the range-criterion facts the entanglement proof uses."""
    d_half = 2 ** (n_qubits - 1)
    for b in (0.1, 0.5, 0.9):
        rho = horodecki_states(np.array([b]), n_qubits)[0].real
        pt1 = partial_transpose(rho, [0])
        assert numerical_rank(rho) == numerical_rank(pt1) == d_half + 1
        w, v = np.linalg.eigh(pt1)
        kernel = v[:, w < 1e-12]
        assert kernel.shape[1] == d_half - 1
        s, t = np.sqrt((1 + b) / 2), np.sqrt((1 - b) / 2)
        one_phi = np.zeros(2 * d_half)
        one_phi[d_half], one_phi[-1] = s, t
        zero_last = np.zeros(2 * d_half)
        zero_last[d_half - 1] = 1
        # |1, phi_b> is in range(rho) but not in range(rho^{T_1}); same for |0, D-1>
        w_rho, v_rho = np.linalg.eigh(rho)
        kernel_rho = v_rho[:, w_rho < 1e-12]
        assert np.abs(kernel_rho.T @ one_phi).max() < 1e-12 and np.abs(kernel_rho.T @ zero_last).max() < 1e-12
        assert np.linalg.norm(kernel.T @ one_phi) > 1e-3
        assert np.linalg.norm(kernel.T @ zero_last) > 1e-3
        # the kernel vector s|1,0> - s|0,1> - t|1,D-1> of the docstring
        k = np.zeros(2 * d_half)
        k[d_half], k[1], k[-1] = s, -s, -t
        np.testing.assert_allclose(pt1 @ k, 0, atol=1e-14)


def test_horodecki_three_by_three_npt_block():
    """The principal 3x3 submatrix used in the NPT proof, for cut 2|13 (n = 3) and 12|34 (n = 4)."""
    for n_qubits, cut, basis in [(3, 1, ["110", "101", "000"]), (4, 4, ["1011", "1100", "0101"])]:
        b = 0.37
        d = 2**n_qubits
        c = bipartitions(n_qubits)[cut]
        side = c.side_a if 0 not in c.side_a else c.side_b  # the side X without qubit 1
        pt = partial_transpose(horodecki_states(np.array([b]), n_qubits)[0].real, list(side))
        idx = [int(s, 2) for s in basis]
        block = pt[np.ix_(idx, idx)] * ((d - 1) * b + 1)
        st_ = np.sqrt(1 - b * b) / 2
        np.testing.assert_allclose(block, [[b, st_, 0], [st_, b, b], [0, b, b]], atol=1e-14)


def test_horodecki_against_qiskit():
    rho = horodecki_states(np.array([0.3]), 3)[0]
    ours = pt_min_eigenvalues(rho[None])[0]
    for cut in bipartitions(3):
        assert ours[cut.index] == pytest.approx(qiskit_pt_min(rho, cut.side_a), abs=1e-12)


def test_horodecki_sampling_and_ground_truth():
    fam = HorodeckiFamily(HorodeckiFamily.Params(b_range=(0.2, 0.3)))
    batch = fam.generate(500, np.random.default_rng(7))
    assert isinstance(batch, StateBatch) and len(batch) == 500
    r00 = batch.rho[:, 0, 0].real
    b = r00 / (1 - 7 * r00)  # rho[0,0] = b/(7b+1)
    assert 0.2 < b.min() < 0.21 and 0.29 < b.max() < 0.3
    np.testing.assert_allclose(batch.rho, horodecki_states(b, 3), atol=1e-12)
    assert (batch.ground_truth == 1).all() and (batch.ground_truth_provenance == ANALYTIC).all()
    assert batch.meta["pptes"].all() and not batch.meta["pure"].any()
    assert (batch.meta["fully_separable"] == 0).all()
    again = fam.generate(500, np.random.default_rng(7))
    np.testing.assert_array_equal(batch.rho, again.rho)

    fixed = HorodeckiFamily(HorodeckiFamily.Params(b=0.6)).generate(3, np.random.default_rng(0), n_qubits=4)
    np.testing.assert_allclose(fixed.rho, horodecki_states(np.full(3, 0.6), 4))
    assert fixed.ground_truth.shape == (3, 7) and (fixed.ground_truth == 1).all()


def test_horodecki_params_validation():
    p = HorodeckiFamily.Params
    for bad in [
        {"b": 0.0},
        {"b": 1.0},
        {"b_range": (0.5, 0.5)},
        {"b_range": (-0.1, 0.5)},
        {"b_range": (0.2, 1.1)},
    ]:
        with pytest.raises(ValueError):
            p(**bad)
    with pytest.raises(ValueError, match="not both"):
        p(b=0.3, b_range=(0.1, 0.9))
    assert p().b is None and p().b_range == (0.0, 1.0)


def test_open_uniform_excludes_endpoints():
    class Stuck:  # a generator whose draws hit the endpoints
        def __init__(self, value):
            self.value = value

        def random(self, size):
            return np.full(size, self.value)

    assert (open_uniform(0.0, 1.0, 4, Stuck(0.0)) > 0).all()
    assert (open_uniform(0.0, 1.0, 4, Stuck(1.0)) < 1).all()
    x = open_uniform(0.0, 1.0, 10_000, np.random.default_rng(1))
    assert 0 < x.min() and x.max() < 1 and abs(x.mean() - 0.5) < 0.02


def test_horodecki_supports():
    assert not HorodeckiFamily.supports(2) and HorodeckiFamily.supports(3) and HorodeckiFamily.supports(6)
    with pytest.raises(QeframeError, match="2 qubits"):
        HorodeckiFamily().generate(1, np.random.default_rng(0), n_qubits=2)


def test_horodecki_local_randomize_keeps_pattern():
    b = 0.4
    fam = HorodeckiFamily(HorodeckiFamily.Params(b=b, local_randomize=True))
    batch = fam.generate(300, np.random.default_rng(3))
    assert_valid(batch.rho)
    lam = pt_min_eigenvalues(batch.rho)
    ppt = lam > -1e-10
    assert (ppt.sum(axis=1) == 1).all()  # exactly one PPT cut per sample
    np.testing.assert_allclose(lam[~ppt], npt_eigenvalue(b, 3), rtol=1e-8)
    assert len(np.unique(np.argmax(ppt, axis=1))) == 3  # the permutations move it to every cut
    assert (batch.ground_truth == 1).all() and (batch.ground_truth_provenance == ANALYTIC).all()
    assert not np.allclose(batch.rho[0], batch.rho[1])


# ------------------------------------------------------------------------------------------- upb


def test_shifts_vectors_orthonormal_product_and_unextendible():
    u = shifts_upb_vectors()
    np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-15)
    from qeframe_plugins.families.upb import SHIFTS_FACTORS

    # Bennett et al.: a set of product vectors is unextendible iff for every split of it into
    # subsets S_1, S_2, S_3 some S_j's factors on party j span C^2.
    for assignment in itertools.product(range(3), repeat=4):
        spans = []
        for party in range(3):
            local = [SHIFTS_FACTORS[k][party] for k in range(4) if assignment[k] == party]
            spans.append(len(local) > 0 and np.linalg.matrix_rank(np.array(local)) == 2)
        assert any(spans), assignment


def test_upb_state_closed_form():
    rho = upb_state()
    assert_valid(rho)
    w = np.linalg.eigvalsh(rho)
    np.testing.assert_allclose(w, [0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25], atol=1e-15)
    for u in shifts_upb_vectors():
        assert abs(u @ rho @ u) < 1e-15  # orthogonal to the UPB
    for cut in bipartitions(3):
        pt = partial_transpose(rho, list(cut.side_a))
        np.testing.assert_allclose(pt, rho, atol=1e-15)  # real product projectors: rho^{T_A} = rho
        assert qiskit_pt_min(rho, cut.side_a) == pytest.approx(0.0, abs=1e-14)
        # Kraus-Cirac-Karnas-Lewenstein: PPT, rank 4 = N and the C^4 marginal of full rank
        assert numerical_rank(partial_trace(rho, list(cut.side_b))) == 4


def test_upb_sampling_uses_no_randomness_without_randomisation():
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    batch = UPBFamily().generate(5, rng)
    assert rng.bit_generator.state == before
    np.testing.assert_array_equal(batch.rho, np.broadcast_to(upb_state(), (5, 8, 8)))
    assert (batch.ground_truth == 0).all() and (batch.ground_truth_provenance == ANALYTIC).all()
    assert batch.meta["pptes"].all() and (batch.meta["fully_separable"] == 0).all()
    assert not UPBFamily.supports(4)


def test_upb_local_randomize():
    batch = UPBFamily(UPBFamily.Params(local_randomize=True)).generate(200, np.random.default_rng(5))
    assert_valid(batch.rho)
    assert pt_min_eigenvalues(batch.rho).min() > -1e-12
    w = np.linalg.eigvalsh(batch.rho)
    np.testing.assert_allclose(w, np.broadcast_to([0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25], w.shape), atol=1e-12)
    assert (batch.ground_truth == 0).all()
    assert np.abs(batch.rho - upb_state()).max() > 0.05


# ------------------------------------------------------------------------------------------- acin

positive = st.floats(min_value=0.01, max_value=100.0)


def test_acin_closed_form_entries():
    a, b, c = 2.0, 4.0, 0.5
    rho = acin_states([a], [b], [c])[0]
    n = 2 + a + 1 / a + b + 1 / b + c + 1 / c
    np.testing.assert_allclose(np.diag(rho).real * n, [1, a, b, c, 1 / c, 1 / b, 1 / a, 1])
    off = rho - np.diag(np.diag(rho))
    assert off[0, 7] * n == pytest.approx(1) and off[7, 0] * n == pytest.approx(1)
    off[0, 7] = off[7, 0] = 0
    assert np.abs(off).max() == 0


@settings(max_examples=40, deadline=None)
@given(a=positive, b=positive, c=positive)
def test_acin_ppt_ranks_kernels(a, b, c):
    rho = acin_states([a], [b], [c])[0].real
    assert_valid(rho[None].astype(complex))
    n = 2 + a + 1 / a + b + 1 / b + c + 1 / c
    e = np.eye(8)
    kernels = {
        None: e[0] - e[7],  # |000> - |111>
        0: e[3] - c * e[4],  # |011> - c|100>
        1: e[2] - b * e[5],  # |010> - b|101>
        2: e[1] - a * e[6],  # |001> - a|110>
    }
    for qubit, k in kernels.items():
        m = rho if qubit is None else partial_transpose(rho, [qubit])
        w = np.linalg.eigvalsh(m * n)  # unnormalised: entries between 0.01 and 100
        assert w[0] > -1e-9 * w[-1]
        assert int((w > 1e-9 * w[-1]).sum()) == 7  # ranks (7; 7, 7, 7)
        np.testing.assert_allclose(m @ k, 0, atol=1e-13 * np.abs(k).max())


@settings(max_examples=25, deadline=None)
@given(a=positive, b=positive, c=positive)
def test_acin_separable_decomposition_on_every_cut(a, b, c):
    rho = acin_states([a], [b], [c])[0]
    for cut in bipartitions(3):
        weights, vectors = cut_decomposition(a, b, c, cut.index)
        assert (weights > 0).all() and weights.sum() == pytest.approx(1)
        rebuilt = np.einsum("k,ki,kj->ij", weights, vectors, vectors.conj())
        np.testing.assert_allclose(rebuilt, rho, atol=1e-14)
        # each vector is a product across the cut: Schmidt rank 1 after moving side A to the front
        perm = list(cut.side_a) + list(cut.side_b)
        for v in vectors:
            m = permute_qubits(np.outer(v, v.conj()), perm)
            top = m.reshape(2, 4, 2, 4).transpose(0, 2, 1, 3).reshape(4, 16)  # realignment
            sv = np.linalg.svd(top, compute_uv=False)
            assert sv[1] < 1e-12 * sv[0]


def test_acin_full_separability_boundary():
    """The range-criterion calculation: the product vector with |y_k/x_k| = (c^-1/2, b^1/2, a^1/2)
    passes all four kernel conditions exactly when c = a b."""
    a, b = 1.7, 0.6
    for c, passes in [(a * b, True), (2.0, False)]:
        x = [np.array([1.0, c**-0.5]), np.array([1.0, b**0.5]), np.array([1.0, a**0.5])]
        v = np.kron(np.kron(x[0], x[1]), x[2])  # real: conjugating a factor changes nothing
        e = np.eye(8)
        kernels = [e[0] - e[7], e[3] - c * e[4], e[2] - b * e[5], e[1] - a * e[6]]
        assert all(abs(k @ v) < 1e-12 for k in kernels) == passes


def test_acin_sampling_defaults_and_options():
    fam = AcinFamily()
    batch = fam.generate(2000, np.random.default_rng(11))
    d = batch.rho[:, np.arange(8), np.arange(8)].real
    a, b, c = d[:, 1] / d[:, 0], d[:, 2] / d[:, 0], d[:, 3] / d[:, 0]
    for x in (a, b, c):
        assert 0.01 <= x.min() < 1.0 and 99.0 < x.max() <= 100.0
        assert 40 < np.median(x) < 60  # uniform, as in the authors' test set
    assert (np.abs(c - a * b) > MIN_RELATIVE_GAP * np.maximum(c, a * b)).all()
    assert (batch.ground_truth == 0).all() and (batch.ground_truth_provenance == ANALYTIC).all()
    assert (
        batch.meta["pptes"].all()
        and (batch.meta["fully_separable"] == 0).all()
        and not batch.meta["pure"].any()
    )
    assert pt_min_eigenvalues(batch.rho).min() > -1e-12

    log = AcinFamily(AcinFamily.Params(distribution="log-uniform")).generate(2000, np.random.default_rng(2))
    a_log = log.rho[:, 1, 1].real / log.rho[:, 0, 0].real
    assert 0.7 < np.median(a_log) < 1.4  # log-uniform on [0.01, 100] has median 1

    fixed = AcinFamily(AcinFamily.Params(a=2.0, c=0.5, b_range=(1.0, 2.0))).generate(
        50, np.random.default_rng(0)
    )
    r = fixed.rho.real
    np.testing.assert_allclose(r[:, 1, 1] / r[:, 0, 0], 2.0)
    np.testing.assert_allclose(r[:, 3, 3] / r[:, 0, 0], 0.5)
    assert ((r[:, 2, 2] / r[:, 0, 0] >= 1.0) & (r[:, 2, 2] / r[:, 0, 0] < 2.0)).all()


def test_acin_params_validation():
    p = AcinFamily.Params
    with pytest.raises(ValueError, match="c must differ from a\\*b"):
        p(a=2.0, b=3.0, c=6.0)
    with pytest.raises(ValueError, match="not both"):
        p(a=1.0, a_range=(0.1, 2.0))
    for bad in [
        {"a": 0.0},
        {"c": -1.0},
        {"b_range": (0.0, 1.0)},
        {"c_range": (2.0, 1.0)},
        {"distribution": "normal"},
    ]:
        with pytest.raises(ValueError):
            p(**bad)
    squeezed = AcinFamily(p(a=2.0, b=3.0, c_range=(6.0, 6.0 * (1 + 1e-12))))
    with pytest.raises(QeframeError, match="c = a\\*b"):
        squeezed.generate(3, np.random.default_rng(0))


def test_acin_local_randomize_and_qiskit():
    batch = AcinFamily(AcinFamily.Params(local_randomize=True)).generate(200, np.random.default_rng(9))
    assert_valid(batch.rho)
    lam = pt_eigenvalues(batch.rho)
    assert lam[..., 0].min() > -1e-12
    # the partial transposes keep exactly one zero eigenvalue on every cut (edge state, ranks 7)
    scale = lam[..., -1:]
    assert ((np.abs(lam) < 1e-10 * scale).sum(axis=-1) == 1).all()
    assert (batch.ground_truth == 0).all()
    rho = batch.rho[0]
    for cut in bipartitions(3):
        assert lam[0, cut.index, 0] == pytest.approx(qiskit_pt_min(rho, cut.side_a), abs=1e-12)
