"""The paper's pure-state families: ``circuit`` (Eqs. A1-A2, Fig. 4) and ``haar`` (Eq. A3).

Oracles: qiskit's ``UGate``/``CUGate`` and ``Statevector`` for the circuits (built gate by gate
from the family's own plan), Haar moments in closed form, and the partial-transpose spectrum for
every ground-truth fact (a pure state is PPT across a cut iff it is a product across it).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from pydantic import ValidationError
from qeframe_plugins.families import _circuits, _common
from qeframe_plugins.families.circuit import CircuitFamily
from qeframe_plugins.families.haar import HaarFamily

from qeframe.errors import QeframeError
from qeframe.quantum.cuts import check_cut_name, cut_names, n_cuts, resolve_cut
from qeframe.quantum.ops import partial_trace, purity
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.validation import validate_density_matrices

TOL = 1e-9
CIRCUIT_KINDS = ["separable", "biseparable", "entangled", "ghz", "w"]
HAAR_KINDS = ["separable", "biseparable", "entangled"]


def circuit(**params) -> CircuitFamily:
    return CircuitFamily(CircuitFamily.Params(**params))


def haar(**params) -> HaarFamily:
    return HaarFamily(HaarFamily.Params(**params))


def all_families():
    return [("circuit", k, circuit(kind=k)) for k in CIRCUIT_KINDS] + [
        ("haar", k, haar(kind=k)) for k in HAAR_KINDS
    ]


# --------------------------------------------------------------------------------------------------
# Shapes, validity, determinism


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("name,kind,family", all_families(), ids=lambda x: x if isinstance(x, str) else "")
def test_batches_are_valid_pure_states(name, kind, family, n):
    batch = family.sample(64, np.random.default_rng(0), n_qubits=n)
    assert len(batch) == 64
    assert batch.rho.shape == (64, 2**n, 2**n) and batch.rho.dtype == np.complex128
    assert batch.ground_truth.shape == (64, n_cuts(n)) and batch.ground_truth.dtype == np.int8
    assert batch.ground_truth_provenance.dtype == np.uint8
    validate_density_matrices(batch.rho, n_qubits=n)
    np.testing.assert_allclose(purity(batch.rho), 1.0, atol=1e-12)
    assert batch.meta["pure"].all() and not batch.meta["pptes"].any()


@pytest.mark.parametrize("name,kind,family", all_families(), ids=lambda x: x if isinstance(x, str) else "")
def test_fixed_seed_is_deterministic(name, kind, family):
    a = family.sample(20, np.random.default_rng(5))
    b = family.sample(20, np.random.default_rng(5))
    c = family.sample(20, np.random.default_rng(6))
    np.testing.assert_array_equal(a.rho, b.rho)
    np.testing.assert_array_equal(a.ground_truth, b.ground_truth)
    assert not np.allclose(a.rho, c.rho)


def test_zero_and_one_sample():
    for _, _, family in all_families():
        assert family.sample(0, np.random.default_rng(0)).rho.shape == (0, 8, 8)
        assert family.sample(1, np.random.default_rng(0)).rho.shape == (1, 8, 8)


# --------------------------------------------------------------------------------------------------
# Ground truth checked against the partial transpose


def assert_truth_consistent(batch, tol: float = TOL) -> None:
    """Truth 0 -> PPT (for pure states: product) across the cut; truth 1 -> NPT."""
    lam = pt_min_eigenvalues(batch.rho)
    assert (lam[batch.ground_truth == 0] > -tol).all(), "a cut labelled separable is NPT"
    assert (lam[batch.ground_truth == 1] < -tol).all(), "a cut labelled entangled is PPT"


@pytest.mark.parametrize("n", [3, 4])
def test_separable_states_are_products(n):
    for family in (circuit(kind="separable"), haar(kind="separable")):
        batch = family.sample(200, np.random.default_rng(1), n)
        assert (batch.ground_truth == 0).all() and (batch.meta["fully_separable"] == 1).all()
        assert_truth_consistent(batch)
        # every single-qubit marginal of a product of pure states is pure
        for q in range(n):
            np.testing.assert_allclose(purity(partial_trace(batch.rho, [q])), 1.0, atol=1e-10)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("kind", ["ghz", "w"])
def test_ghz_and_w_are_npt_on_every_cut(kind, n):
    batch = circuit(kind=kind).sample(200, np.random.default_rng(2), n)
    assert (batch.ground_truth == 1).all() and (batch.meta["fully_separable"] == 0).all()
    assert (pt_min_eigenvalues(batch.rho) < -1e-3).all()


def test_ghz_w_closed_forms_before_local_randomisation():
    """With the local U layers removed the family's preparations are exactly GHZ and W."""
    support = np.ones((1, 3), dtype=bool)
    ghz = _circuits.prepared_states(np.array([_circuits.PREP_GHZ]), support)[0]
    w = _circuits.prepared_states(np.array([_circuits.PREP_W]), support)[0]
    np.testing.assert_allclose(ghz, np.array([1, 0, 0, 0, 0, 0, 0, 1]) / np.sqrt(2))
    np.testing.assert_allclose(w, np.array([0, 1, 1, 0, 1, 0, 0, 0]) / np.sqrt(3))
    # GHZ: negativity 1/2 on every cut; W: (sqrt(5) - 1) / 6 ... smallest PT eigenvalue -sqrt(2)/3
    lam = pt_min_eigenvalues(np.stack([np.outer(ghz, ghz), np.outer(w, w)]))
    np.testing.assert_allclose(lam[0], -0.5, atol=1e-12)
    np.testing.assert_allclose(lam[1], -np.sqrt(2) / 3, atol=1e-12)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("name", ["circuit", "haar"])
def test_biseparable_states_are_products_across_their_cut(name, n):
    family = circuit(kind="biseparable") if name == "circuit" else haar(kind="biseparable")
    batch = family.sample(400, np.random.default_rng(3), n)
    truth = batch.ground_truth
    assert ((truth == 0).sum(axis=1) == 1).all() and ((truth == -1).sum(axis=1) == n_cuts(n) - 1).all()
    assert_truth_consistent(batch)
    # the other cuts are (almost surely) entangled: the labeler has work to do
    lam = pt_min_eigenvalues(batch.rho)
    assert (lam[truth == -1] < -TOL).mean() > 0.9
    # cut=None draws every cut, two-qubit cuts included for 4 qubits
    assert set(np.flatnonzero(truth == 0) % n_cuts(n)) == set(range(n_cuts(n)))


@pytest.mark.parametrize("cut", ["2|134", "13|24"])
def test_named_cut_for_four_qubits(cut):
    j = cut_names(4).index(cut)
    for family in (circuit(kind="biseparable", cut=cut), haar(kind="biseparable", cut=cut)):
        batch = family.sample(100, np.random.default_rng(4), 4)
        assert (batch.ground_truth[:, j] == 0).all()
        assert (pt_min_eigenvalues(batch.rho)[:, j] > -TOL).all()


def test_random_cut_follows_the_authors_size_rule():
    """n=4: the smaller side has 1 or 2 qubits with probability 1/2 each."""
    cuts = _common.draw_cuts(np.random.default_rng(0), 40000, 4)
    sizes = np.array([1, 1, 1, 1, 2, 2, 2])[cuts]
    assert abs((sizes == 1).mean() - 0.5) < 0.01
    counts = np.bincount(cuts, minlength=7)
    np.testing.assert_allclose(counts[:4] / 40000, 1 / 8, atol=0.01)
    np.testing.assert_allclose(counts[4:] / 40000, 1 / 6, atol=0.01)


def test_entangled_circuits_with_random_support():
    batch = circuit(kind="entangled", support="random").sample(500, np.random.default_rng(5), 4)
    assert_truth_consistent(batch)
    assert (batch.ground_truth == 0).any() and (batch.ground_truth == -1).any()
    ghz = circuit(kind="ghz", support="random").sample(300, np.random.default_rng(5), 4)
    # GHZ on a subset: entangled exactly across the cuts that split the subset
    lam = pt_min_eigenvalues(ghz.rho)
    np.testing.assert_array_equal(ghz.ground_truth == 1, lam < -TOL)
    assert (ghz.ground_truth == 0).any()


def test_entangled_circuits_are_mostly_npt():
    batch = circuit(kind="entangled").sample(300, np.random.default_rng(6), 3)
    assert (batch.ground_truth == -1).all()
    assert (pt_min_eigenvalues(batch.rho) < -TOL).mean() > 0.8


@pytest.mark.parametrize("name,kind,family", all_families(), ids=lambda x: x if isinstance(x, str) else "")
def test_local_randomize_keeps_truth_consistent(name, kind, family):
    fam = type(family)(family.Params(**{**family.params.model_dump(), "local_randomize": True}))
    batch = fam.generate(150, np.random.default_rng(7), 3)
    assert_truth_consistent(batch)
    if kind == "biseparable":
        assert len(set(np.flatnonzero(batch.ground_truth == 0) % 3)) == 3


# --------------------------------------------------------------------------------------------------
# The circuits against qiskit


def test_gates_match_qiskit():
    from qiskit.circuit.library import CUGate, UGate

    angles = np.random.default_rng(8).uniform(0, 2 * np.pi, size=(20, 4))
    us = _circuits.u_matrices(angles[:, :3])
    blocks = _circuits.cu_target_matrices(angles)
    for a, u, m in zip(angles, us, blocks):
        np.testing.assert_allclose(u, UGate(*a[:3]).to_matrix(), atol=1e-13)
        cu = np.eye(4, dtype=complex)  # qiskit: control = qubit 0 = least significant bit
        cu[np.ix_([1, 3], [1, 3])] = m
        np.testing.assert_allclose(cu, CUGate(*a).to_matrix(), atol=1e-13)


def qiskit_states(plan: _circuits.CircuitPlan) -> np.ndarray:
    """Rebuild every circuit of ``plan`` with qiskit gates and simulate it (big-endian output)."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector

    from qeframe.quantum.qiskit_interop import from_qiskit

    n = plan.n_qubits
    out = []
    for s in range(len(plan)):
        qc = QuantumCircuit(n)
        support = [q for q in range(n) if plan.support[s, q]]
        start = Statevector.from_label("0" * n)
        if plan.prep[s] == _circuits.PREP_GHZ:
            qc.h(support[0])
            for a, b in pairwise(support):
                qc.cx(a, b)
        elif plan.prep[s] == _circuits.PREP_W:  # W written with qiskit's labels (qubit q = char n-1-q)
            labels = ["".join("1" if n - 1 - i == q else "0" for i in range(n)) for q in support]
            data = sum(Statevector.from_label(lab).data for lab in labels) / np.sqrt(len(support))
            start = Statevector(data)
        for q in range(n):
            if plan.init_mask[s, q]:
                qc.u(*plan.init_u[s, q], q)
        for g in range(plan.cu_pairs.shape[1]):
            if plan.cu_active[s, g]:
                qc.cu(*plan.cu_angles[s, g], int(plan.cu_pairs[s, g, 0]), int(plan.cu_pairs[s, g, 1]))
        for layer in range(plan.final_u.shape[1]):
            for q in range(n):
                qc.u(*plan.final_u[s, layer, q], q)
        out.append(from_qiskit(start.evolve(qc)))
    return np.stack(out)


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("kind", CIRCUIT_KINDS)
def test_circuits_match_qiskit_statevector(kind, n):
    support = "random" if kind in ("entangled", "ghz", "w") and n == 4 else "all"
    family = circuit(kind=kind, support=support)
    plan, psi, *_ = family.plan_and_states(12, np.random.default_rng(9), n)
    np.testing.assert_allclose(psi, qiskit_states(plan), atol=1e-12)


def test_circuit_plan_follows_the_paper_recipe():
    """U on every qubit, g in [1, 2*C(n,2)) CU gates on random ordered pairs, then U layers."""
    n = 3
    plan, *_ = circuit(kind="entangled").plan_and_states(4000, np.random.default_rng(10), n)
    gates = plan.cu_active.sum(axis=1)
    assert set(gates.tolist()) == set(range(1, 2 * 3))  # 1..5 for 3 qubits, each value drawn
    counts = np.bincount(gates)[1:]
    assert counts.min() > 0.8 * counts.mean()  # uniform
    pairs = plan.cu_pairs[plan.cu_active]
    assert (pairs[:, 0] != pairs[:, 1]).all()
    ordered = np.bincount(pairs[:, 0] * n + pairs[:, 1], minlength=n * n).reshape(n, n)
    off = ordered[~np.eye(n, dtype=bool)]
    assert off.min() > 0.9 * off.mean()  # all 6 ordered pairs equally likely
    assert plan.init_mask.all() and plan.final_u.shape[1:] == (2, n, 3)
    assert ((plan.cu_angles >= 0) & (plan.cu_angles < 2 * np.pi)).all()
    sep, *_ = circuit(kind="separable", u_layers=3).plan_and_states(10, np.random.default_rng(0), n)
    assert not sep.cu_active.any() and sep.final_u.shape[1] == 3


# --------------------------------------------------------------------------------------------------
# The trig-free gate sampler draws the recipe's angles


def test_gate_parameters_are_unit_and_their_angles_uniform():
    """``random_gate_params``: every parameter has modulus 1 and every angle (θ, φ, λ, γ) is
    uniform on [0, 2π) (Kolmogorov-Smirnov, alpha 1e-6 per angle); the same test rejects θ with
    the Haar density ∝ sin θ/2, so it has the power to fail."""
    from scipy import stats

    params = _circuits.random_gate_params(np.random.default_rng(21), (20000,), 4)
    np.testing.assert_allclose(np.abs(params), 1.0, atol=1e-15)
    angles = _circuits.param_angles(params)
    assert ((angles >= 0) & (angles < 2 * np.pi)).all()
    uniform = stats.uniform(0, 2 * np.pi).cdf
    for k in range(4):
        assert stats.kstest(angles[:, k], uniform).pvalue > 1e-6, k
    haar_theta = 2 * np.arccos(1 - 2 * np.random.default_rng(22).random(20000))  # density ∝ sin θ/2
    assert stats.kstest(haar_theta, uniform).pvalue < 1e-6
    a, b, c, d = _circuits.u_parts(params[:5, 0], params[:5, 1], params[:5, 2])
    gates = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)
    np.testing.assert_allclose(gates, _circuits.u_matrices(angles[:5, :3]), atol=1e-14)  # U(θ, φ, λ), Eq. A1


@pytest.mark.parametrize("n", [2, 3])
def test_circuit_states_match_the_float64_reference_sampler(n, monkeypatch):
    """Circuit states from the trig-free sampler and from the float64 ``sin``/``cos`` reference
    (store format 1) have the same distribution: two-sample KS on the purity of qubit 1's reduced
    state and on ``|<0…0|ψ>|²``, 4000 states each, alpha 1e-4."""
    from scipy import stats

    def features(rng):
        psi = circuit(kind="entangled").sample(4000, rng, n).rho
        return purity(partial_trace(psi, [0])), psi[:, 0, 0].real

    new = features(np.random.default_rng(31))
    monkeypatch.setattr(_circuits, "random_gate_params", _circuits.reference_gate_params)
    old = features(np.random.default_rng(32))
    for a, b in zip(new, old, strict=True):
        assert stats.ks_2samp(a, b).pvalue > 1e-4


# --------------------------------------------------------------------------------------------------
# The haar family's states are Haar distributed (the sampler itself: tests/quantum/test_random.py)


def test_haar_family_states_have_lubkin_purity():
    # Lubkin: E tr(rho_A^2) = (dA + dB) / (dA dB + 1) for a Haar state on dA x dB
    rho = haar(kind="entangled").sample(20000, np.random.default_rng(12), 3).rho
    np.testing.assert_allclose(purity(partial_trace(rho, [0])).mean(), 6 / 9, atol=5e-3)


# --------------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    "cls,params",
    [
        (CircuitFamily, {"kind": "cluster"}),
        (CircuitFamily, {"kind": "entangled", "cut": "1|23"}),
        (CircuitFamily, {"kind": "biseparable", "cut": "1|1"}),
        (CircuitFamily, {"kind": "biseparable", "cut": "12"}),
        (CircuitFamily, {"kind": "biseparable", "cut": "1|24"}),
        (CircuitFamily, {"kind": "separable", "support": "random"}),
        (CircuitFamily, {"u_layers": 0}),
        (CircuitFamily, {"colour": "red"}),
        (HaarFamily, {"kind": "ghz"}),
        (HaarFamily, {"kind": "separable", "cut": "1|23"}),
    ],
)
def test_bad_params_raise(cls, params):
    with pytest.raises(ValidationError):
        cls.Params(**params)


def test_cut_of_another_size_is_a_clear_error():
    family = haar(kind="biseparable", cut="4|123")
    family.sample(2, np.random.default_rng(0), 4)
    with pytest.raises(QeframeError, match="not a cut of 3 qubits"):
        family.sample(2, np.random.default_rng(0), 3)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_every_cut_name_is_accepted_in_any_spelling(n):
    rng = np.random.default_rng(n)
    for name in cut_names(n):
        a, b = name.split("|")
        shuffled = "".join(rng.permutation(list(b))) + "|" + "".join(rng.permutation(list(a)))
        assert check_cut_name(name) == name
        assert check_cut_name(shuffled) == name
        assert resolve_cut(name, n) == cut_names(n).index(name)


def test_cut_names_are_normalised():
    assert CircuitFamily.Params(kind="biseparable", cut="23|1").cut == "1|23"
    assert HaarFamily.Params(kind="biseparable", cut="34|12").cut == "12|34"


def test_families_are_registered_through_entry_points():
    from qeframe.plugin.registry import Registry

    reg = Registry.load()
    fam = reg.create("family", "circuit", {"kind": "ghz"})
    assert isinstance(fam, CircuitFamily)
    assert isinstance(reg.create("family", "haar", {"kind": "biseparable", "cut": "2|13"}), HaarFamily)
