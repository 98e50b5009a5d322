"""The paper's mixed-state families: ``product`` (A4/A5), ``mixture`` (Eq. 7), ``reduced`` (Eq. 8).

Every ground-truth fact is checked against the partial-transpose spectrum (separable -> PPT,
NPT -> entangled); the convex structure is checked through ranks (a sum of ``T`` pure terms has
rank at most ``T``; a reduced state of ``n + e`` qubits has rank at most ``2**e``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from qeframe_plugins.families import _circuits, _common
from qeframe_plugins.families.mixture import MixtureFamily
from qeframe_plugins.families.product import ProductFamily
from qeframe_plugins.families.reduced import ReducedFamily

from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import StateBatch
from qeframe.plugin.labels import provenance_code
from qeframe.quantum.cuts import cut_names, n_cuts
from qeframe.quantum.ops import partial_trace, purity
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.random import haar_state
from qeframe.quantum.validation import validate_density_matrices

TOL = 1e-9


def product(**p) -> ProductFamily:
    return ProductFamily(ProductFamily.Params(**p))


def mixture(**p) -> MixtureFamily:
    return MixtureFamily(MixtureFamily.Params(**p))


def reduced(**p) -> ReducedFamily:
    return ReducedFamily(ReducedFamily.Params(**p))


def ranks(rho: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    return (np.linalg.eigvalsh(rho) > tol).sum(axis=1)


def assert_truth_consistent(batch: StateBatch, tol: float = TOL) -> None:
    """Proven facts hold: truth 0 -> PPT; truth 1 -> NPT, except where only the paper's convention says so."""
    lam = pt_min_eigenvalues(batch.rho)
    convention = batch.ground_truth_provenance == provenance_code("paper-convention")
    assert (lam[batch.ground_truth == 0] > -tol).all(), "a cut labelled separable is NPT"
    assert (lam[(batch.ground_truth == 1) & ~convention] < -tol).all(), "a cut proven entangled is PPT"


FAMILIES = [
    ("product-circuit", product()),
    ("product-haar-outer", product(source="haar", terms=(2, 8), pure_factors=True)),
    ("product-traced", product(source="traced")),
    ("product-comb", product(terms=(2, 4), local_terms=(2, 3))),
    ("bisep-circuit", product(kind="biseparable", terms=(1, 4))),
    ("bisep-haar", product(kind="biseparable", source="haar", terms=(2, 4), pure_factors=True)),
    ("bisep-traced", product(kind="biseparable", source="traced", terms=(1, 3))),
    ("mixture", mixture()),
    ("mixture-haar-npt", mixture(base="haar", keep="npt")),
    ("mixture-npt-all", mixture(keep="npt_all", d_range=(2, 4))),
    ("mixture-sep", mixture(base_kind="separable")),
    ("mixture-bisep", mixture(base_kind="biseparable", d_range=(2, 5))),
    ("mixture-pool", mixture(base_kind="separable+entangled", d_range=(2, 16))),
    ("mixture-ghz-w", mixture(base_kind="ghz+w", keep="npt")),
    ("reduced", reduced()),
    ("reduced-haar", reduced(source="haar", extra_qubits=2)),
    ("reduced-max-rank", reduced(max_rank=True)),
]
IDS = [name for name, _ in FAMILIES]


# --------------------------------------------------------------------------------------------------
# Shapes, validity, determinism, ground truth


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("name,family", FAMILIES, ids=IDS)
def test_valid_density_matrices_with_consistent_truth(name, family, n):
    count = 40 if n == 4 else 120
    batch = family.sample(count, np.random.default_rng(0), n)
    assert len(batch) == count
    assert batch.rho.shape == (count, 2**n, 2**n) and batch.rho.dtype == np.complex128
    assert batch.ground_truth.shape == (count, n_cuts(n)) and batch.ground_truth.dtype == np.int8
    validate_density_matrices(batch.rho, n_qubits=n)
    assert set(batch.meta) >= {"pure", "fully_separable", "pptes"}
    np.testing.assert_array_equal(batch.meta["pure"], purity(batch.rho) > 1 - 1e-9)
    assert_truth_consistent(batch)


@pytest.mark.parametrize("name,family", FAMILIES, ids=IDS)
def test_fixed_seed_is_deterministic(name, family):
    a = family.sample(15, np.random.default_rng(3))
    b = family.sample(15, np.random.default_rng(3))
    np.testing.assert_array_equal(a.rho, b.rho)
    np.testing.assert_array_equal(a.ground_truth, b.ground_truth)
    np.testing.assert_array_equal(a.ground_truth_provenance, b.ground_truth_provenance)
    assert not np.allclose(a.rho, family.sample(15, np.random.default_rng(4)).rho)


@pytest.mark.parametrize("name,family", FAMILIES, ids=IDS)
def test_local_randomize_keeps_truth_consistent(name, family):
    fam = type(family)(family.Params(**{**family.params.model_dump(), "local_randomize": True}))
    batch = fam.generate(60, np.random.default_rng(5), 3)
    validate_density_matrices(batch.rho)
    assert_truth_consistent(batch)


def test_zero_samples():
    for _, family in FAMILIES:
        assert family.sample(0, np.random.default_rng(0)).rho.shape == (0, 8, 8)


# --------------------------------------------------------------------------------------------------
# product (A4 / A5)


@pytest.mark.parametrize("source", ["circuit", "haar", "traced"])
@pytest.mark.parametrize("n", [3, 4])
def test_product_separable_is_ppt_everywhere(source, n):
    batch = product(source=source, terms=(1, 3)).sample(150, np.random.default_rng(1), n)
    assert (batch.ground_truth == 0).all() and (batch.meta["fully_separable"] == 1).all()
    assert (batch.ground_truth_provenance == provenance_code("construction")).all()
    assert (pt_min_eigenvalues(batch.rho) > -TOL).all()


@pytest.mark.parametrize("source", ["circuit", "haar", "traced"])
def test_product_biseparable_cut(source):
    batch = product(kind="biseparable", source=source, cut="2|13", terms=(1, 3)).sample(
        150, np.random.default_rng(2), 3
    )
    lam = pt_min_eigenvalues(batch.rho)
    np.testing.assert_array_equal(batch.ground_truth, np.tile([-1, 0, -1], (150, 1)))
    assert (lam[:, 1] > -TOL).all()
    # entanglement across the other cuts occurs, but mixed factors of up to 16 draws dilute it
    assert (lam[:, [0, 2]] < -TOL).mean() > 0.05


def test_product_biseparable_random_cuts_cover_two_qubit_cuts():
    batch = product(kind="biseparable", source="haar", pure_factors=True).sample(
        300, np.random.default_rng(3), 4
    )
    cuts = np.flatnonzero(batch.ground_truth == 0) % n_cuts(4)
    assert set(cuts) == set(range(n_cuts(4)))
    assert_truth_consistent(batch)


def test_product_terms_and_purity():
    rng = np.random.default_rng(4)
    # one term of pure factors: a pure product state
    pure = product(source="haar", pure_factors=True).sample(50, rng)
    assert pure.meta["pure"].all()
    # T pure product terms: rank exactly T (generic), never more
    two = product(source="circuit", terms=(2, 2), pure_factors=True).sample(50, rng)
    assert (ranks(two.rho) == 2).all() and not two.meta["pure"].any()
    some = product(source="haar", terms=(1, 3), pure_factors=True).sample(300, rng)
    r = ranks(some.rho)
    assert set(r.tolist()) == {1, 2, 3}
    np.testing.assert_array_equal(some.meta["pure"], r == 1)
    # default (authors' 'inner' mode): each single-qubit factor is mixed
    inner = product().sample(50, rng)
    for q in range(3):
        assert (purity(partial_trace(inner.rho, [q])) < 1 - 1e-6).all()
    # traced factors are mixed; the marginals of a one-term product are the factors themselves
    traced = product(source="traced").sample(200, rng)
    marg = np.stack([partial_trace(traced.rho, [q]) for q in range(3)], axis=1)
    assert (purity(marg.reshape(-1, 2, 2)) < 1 - 1e-6).mean() > 0.75  # ~0.9: some qubits meet no CU gate


def test_product_local_terms_bound_the_factor_rank():
    batch = product(kind="biseparable", cut="1|23", local_terms=(2, 2)).sample(40, np.random.default_rng(5))
    side_b = partial_trace(batch.rho, [1, 2])
    assert (ranks(side_b) == 2).all()


# --------------------------------------------------------------------------------------------------
# mixture (Eq. 7)


def test_mixture_size_bounds_the_rank():
    batch = mixture(d_range=(3, 3)).sample(60, np.random.default_rng(6))
    assert (ranks(batch.rho) == 3).all()
    default = mixture().sample(400, np.random.default_rng(6))  # d in [2, 8] for 3 qubits
    r = ranks(default.rho)
    assert r.min() == 2 and r.max() == 8
    assert not default.meta["pure"].any() and (default.ground_truth == -1).all()


def test_mixture_weights_follow_the_authors_recipe():
    counts = np.array([2, 5, 3])
    w, owner = _common.random_weights(np.random.default_rng(7), counts)
    np.testing.assert_array_equal(owner, [0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(np.bincount(owner, weights=w), 1.0)
    assert (w > 0).all()


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 6), min_size=1, max_size=8), seed=st.integers(0, 2**32 - 1))
def test_mixing_helpers_match_a_plain_loop(counts, seed):
    """mix_vectors / mix_matrices against sum_i p_i |psi_i><psi_i| written one sample at a time."""
    rng = np.random.default_rng(seed)
    counts = np.array(counts)
    psi = haar_state(4, int(counts.sum()), rng)
    w, owner = _common.random_weights(rng, counts)
    expected = np.zeros((counts.size, 4, 4), dtype=complex)
    for i in range(psi.shape[0]):  # the oracle loops; the code under test does not
        expected[owner[i]] += w[i] * np.outer(psi[i], psi[i].conj())
    np.testing.assert_allclose(_common.mix_vectors(psi, w, counts), expected, atol=1e-13)
    dens = psi[:, :, None] * psi[:, None, :].conj()
    np.testing.assert_allclose(_common.mix_matrices(dens, w, counts), expected, atol=1e-13)
    np.testing.assert_allclose(np.trace(expected, axis1=1, axis2=2), 1.0, atol=1e-12)


def test_mixture_of_separable_states_is_separable():
    batch = mixture(base_kind="separable", base="haar").sample(200, np.random.default_rng(8), 4)
    assert (batch.ground_truth == 0).all() and (batch.meta["fully_separable"] == 1).all()
    assert (pt_min_eigenvalues(batch.rho) > -TOL).all()


def test_mixture_of_biseparable_states_shares_the_cut():
    batch = mixture(base_kind="biseparable", cut="3|12").sample(100, np.random.default_rng(9))
    np.testing.assert_array_equal(batch.ground_truth, np.tile([-1, -1, 0], (100, 1)))
    assert (pt_min_eigenvalues(batch.rho)[:, 2] > -TOL).all()
    rand = mixture(base="haar", base_kind="biseparable").sample(300, np.random.default_rng(9))
    assert ((rand.ground_truth == 0).sum(axis=1) == 1).all()
    assert_truth_consistent(rand)


def test_mixture_keep_npt_filters():
    some = mixture(keep="npt", d_range=(6, 8)).sample(100, np.random.default_rng(10))
    lam = pt_min_eigenvalues(some.rho)
    assert len(some) == 100 and (lam < -TOL).any(axis=1).all()
    np.testing.assert_array_equal(some.ground_truth == 1, lam < -TOL)
    assert (some.ground_truth_provenance[some.ground_truth == 1] == provenance_code("npt")).all()
    assert (some.meta["fully_separable"] == 0).all()
    every = mixture(keep="npt_all", base="haar").sample(100, np.random.default_rng(10))
    assert (pt_min_eigenvalues(every.rho) < -TOL).all() and (every.ground_truth == 1).all()


def test_mixture_of_mixed_kinds():
    """'separable+entangled' (the authors' pool): truth 0 only where every component is separable."""
    batch = mixture(base_kind="separable+entangled", d_range=(2, 3)).sample(400, np.random.default_rng(11))
    sep = (batch.ground_truth == 0).all(axis=1)
    assert 0.1 < sep.mean() < 0.5  # P(all of 2 or 3 components separable) = (1/4 + 1/8) / 2
    np.testing.assert_array_equal(batch.meta["fully_separable"] == 1, sep)
    assert_truth_consistent(batch)


# --------------------------------------------------------------------------------------------------
# reduced (Eq. 8)


@pytest.mark.parametrize("source", ["circuit", "haar"])
@pytest.mark.parametrize("extra", [1, 2])
def test_reduced_rank_is_bounded_by_the_traced_dimension(source, extra):
    batch = reduced(source=source, extra_qubits=extra).sample(200, np.random.default_rng(12))
    r = ranks(batch.rho)
    assert r.max() <= 2**extra
    if source == "haar":
        assert (r == 2**extra).all() and not batch.meta["pure"].any()
    assert (batch.ground_truth == -1).all() and (batch.ground_truth_provenance == 0).all()


@pytest.mark.parametrize("source", ["circuit", "haar"])
@pytest.mark.parametrize("n", [3, 4])
def test_reduced_max_rank(source, n):
    count = 60 if n == 3 else 15
    batch = reduced(source=source, max_rank=True).sample(count, np.random.default_rng(13), n)
    assert len(batch) == count
    assert (np.linalg.eigvalsh(batch.rho)[:, 0] > 1e-8).all()  # full rank 2**n
    assert (batch.ground_truth == 1).all()
    lam = pt_min_eigenvalues(batch.rho)
    expected = np.where(lam < -1e-10, provenance_code("npt"), provenance_code("paper-convention"))
    np.testing.assert_array_equal(batch.ground_truth_provenance, expected)
    np.testing.assert_array_equal(batch.meta["pptes"], (lam >= -1e-10).any(axis=1))


def test_circuit_reduced_states_can_be_pure_and_say_so():
    """A global circuit whose traced qubit meets no CU gate leaves a pure reduced state."""
    batch = reduced().sample(400, np.random.default_rng(14))
    assert batch.meta["pure"].any() and not batch.meta["pure"].all()
    np.testing.assert_array_equal(batch.meta["pure"], ranks(batch.rho) == 1)


# --------------------------------------------------------------------------------------------------
# Rejection sampling and parameters


def test_sample_until_raises_when_nothing_is_accepted():
    def draw(m):
        rho = np.broadcast_to(np.eye(8) / 8, (m, 8, 8)).astype(complex)
        return StateBatch.build(rho, -1, "unknown", pure=False), np.zeros(m, bool)

    with pytest.raises(QeframeError, match="none of"):
        _common.sample_until(10, draw, "test")


@pytest.mark.parametrize(
    "cls,params",
    [
        (ProductFamily, {"terms": (0, 2)}),
        (ProductFamily, {"terms": (3, 2)}),
        (ProductFamily, {"local_terms": (2, 1)}),
        (ProductFamily, {"source": "traced", "pure_factors": True}),
        (ProductFamily, {"pure_factors": True, "local_terms": (2, 3)}),
        (ProductFamily, {"kind": "separable", "cut": "1|23"}),
        (ProductFamily, {"kind": "biseparable", "cut": "1|2|3"}),
        (ProductFamily, {"source": "qiskit"}),
        (MixtureFamily, {"d_range": (1, 4)}),
        (MixtureFamily, {"d_range": (5, 4)}),
        (MixtureFamily, {"base": "haar", "base_kind": "ghz"}),
        (MixtureFamily, {"base_kind": "entangled+entangled"}),
        (MixtureFamily, {"base_kind": "separable", "keep": "npt"}),
        (MixtureFamily, {"base_kind": "biseparable", "keep": "npt_all"}),
        (MixtureFamily, {"base_kind": "entangled", "cut": "1|23"}),
        (MixtureFamily, {"keep": "ppt"}),
        (MixtureFamily, {"npt_tol": 0}),
        (ReducedFamily, {"extra_qubits": 0}),
        (ReducedFamily, {"source": "ghz"}),
        (ReducedFamily, {"rank_tol": -1}),
    ],
)
def test_bad_params_raise(cls, params):
    with pytest.raises(ValidationError):
        cls.Params(**params)


def test_registry_creates_the_mixed_families():
    from qeframe.plugin.registry import Registry

    reg = Registry.load()
    fam = reg.create("family", "mixture", {"base_kind": "biseparable", "cut": "2|13", "d_range": [2, 4]})
    assert fam.params.d_range == (2, 4) and fam.params.cut == cut_names(3)[1]
    assert isinstance(
        reg.create("family", "product", {"kind": "biseparable", "terms": [1, 4]}), ProductFamily
    )
    assert isinstance(reg.create("family", "reduced", {"max_rank": True}), ReducedFamily)


# --------------------------------------------------------------------------------------------------
# The trig-free sampler (store format 2) keeps the recipes' statistics


@pytest.mark.parametrize("source", ["circuit", "haar"])
def test_comb_biseparable_statistics_match_the_float64_reference_sampler(source, monkeypatch):
    """The verified set's costliest recipe (comb mixtures across a random cut) drawn with the
    trig-free gate/phase sampler and with the float64 ``sin``/``cos`` reference (format 1) agree:
    per-cut NPT fractions (two-proportion z-test, 2500 states each, two-sided alpha 1e-4 per cut)
    and purities (two-sample KS, alpha 1e-4). A sampler whose θ covers [0, π/2) instead of
    [0, 2π) fails the same test."""
    from scipy import stats

    from qeframe.quantum.ppt import npt_mask

    fam = product(kind="biseparable", source=source, terms=(2, 16), local_terms=(2, 16))
    count = 2500

    def draw(seed):
        rho = fam.sample(count, np.random.default_rng(seed), 3).rho
        return npt_mask(rho), purity(rho)

    def agree(a, b) -> bool:
        pooled = (a[0].sum(axis=0) + b[0].sum(axis=0)) / (2 * count)
        z = (a[0].mean(axis=0) - b[0].mean(axis=0)) / np.sqrt(pooled * (1 - pooled) * 2 / count)
        return bool((np.abs(z) < 3.89).all() and stats.ks_2samp(a[1], b[1]).pvalue > 1e-4)

    new = draw(41)
    monkeypatch.setattr(_circuits, "random_gate_params", _circuits.reference_gate_params)
    reference = draw(42)
    assert 0.005 < new[0][:, 0].mean() < 0.5  # NPT on some, not all, non-product cuts
    assert agree(new, reference)

    def wrong(rng, shape, k):  # θ/2 in [0, π/4): gates too close to diagonal
        p = _circuits.reference_gate_params(rng, shape, k)
        p[..., 0] = p[..., 0] ** 0.25
        return p

    monkeypatch.setattr(_circuits, "random_gate_params", wrong)
    if source == "circuit":  # Haar draws use phases only, where the half angle plays no role
        assert not agree(new, draw(43))
