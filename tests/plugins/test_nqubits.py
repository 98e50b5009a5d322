"""n qubits (issue 15): the permutation-equivariant backbone, the embedded PPTES family, unsupported n.

5- and 6-qubit cases use a handful of states (milliseconds); nothing here trains a model.
"""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.backbones.perm_equivariant import PermEquivariantParams, feature_count
from qeframe_plugins.families.embedded import EmbeddedFamily, core_cut_table

from qeframe.config.specs import parse_registry, validate_dataset_plugins
from qeframe.errors import QeframeError, SpecError
from qeframe.learn.losses import consistency_loss
from qeframe.plugin.registry import Registry
from qeframe.quantum import ops, ppt, torch_ops
from qeframe.quantum.cuts import bipartitions, n_cuts


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


def random_mixed(n: int, count: int, rng: np.random.Generator, rank: int) -> np.ndarray:
    d = 2**n
    g = rng.standard_normal((count, d, rank)) + 1j * rng.standard_normal((count, d, rank))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.trace(rho, axis1=1, axis2=2)[:, None, None]


def build_model(n: int, seed: int, **params):
    from qeframe_plugins.backbones.perm_equivariant import PermEquivariantBackbone

    torch.manual_seed(seed)
    return PermEquivariantBackbone(PermEquivariantParams(**params)).build(n).double().eval()


# -------------------------------------------------------------------------- perm_equivariant


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 5),
    seed=st.integers(0, 2**31 - 1),
    rank=st.integers(1, 4),
    spectrum=st.booleans(),
)
def test_perm_equivariant_exactly_equivariant(n, seed, rank, spectrum):
    """model(P rho P^T)[:, m[j]] == model(rho)[:, j] for random states, weights and permutations."""
    rng = np.random.default_rng(seed)
    model = build_model(n, seed % 1000, pt_spectrum=spectrum)
    rho = torch.as_tensor(random_mixed(n, 3, rng, rank))
    perms = torch.as_tensor(np.stack([rng.permutation(n) for _ in range(3)]))
    rho2 = torch_ops.permute_qubits(rho, perms)
    maps = torch_ops.cut_index_maps(perms)
    with torch.no_grad():
        out = model(torch_ops.to_model_input(rho))
        out2 = model(torch_ops.to_model_input(rho2))
    assert out.shape == (3, n_cuts(n))
    torch.testing.assert_close(out2.gather(1, maps), out, rtol=0, atol=1e-9)
    # a non-trivial function of the cut: not every output equal (otherwise equivariance is empty)
    if n >= 3:
        assert float(out.std()) > 0


def test_perm_equivariant_lu_invariant_and_six_qubits():
    """Local unitaries leave the logits unchanged; 6 qubits (31 cuts) with a non-identity permutation."""
    n = 6
    rng = np.random.default_rng(6)
    model = build_model(n, 0)
    rho = torch.as_tensor(random_mixed(n, 2, rng, 2))
    us = torch_ops.random_local_unitaries(2, n, torch.Generator().manual_seed(0), dtype=torch.complex128)
    rho_lu = torch_ops.apply_local_unitaries(rho, us)
    perm = torch.tensor([[5, 3, 0, 1, 4, 2], [1, 0, 2, 3, 5, 4]])
    rho_p = torch_ops.permute_qubits(rho, perm)
    with torch.no_grad():
        out = model(torch_ops.to_model_input(rho))
        out_lu = model(torch_ops.to_model_input(rho_lu))
        out_p = model(torch_ops.to_model_input(rho_p))
    torch.testing.assert_close(out_lu, out, rtol=0, atol=1e-9)
    torch.testing.assert_close(out_p.gather(1, torch_ops.cut_index_maps(perm)), out, rtol=0, atol=1e-9)


def test_perm_equivariant_siamese_terms_vanish(registry):
    """The training's consistency term (Eq. 6) is zero to float32 rounding for both symmetry plugins."""
    n = 4
    torch.manual_seed(0)
    model = registry.create("backbone", "perm_equivariant", {}).build(n)
    rho = torch.as_tensor(random_mixed(n, 16, np.random.default_rng(1), 3)).to(torch.complex64)
    x = torch_ops.to_model_input(rho)
    with torch.no_grad():
        p = torch.sigmoid(model(x))
        for name in ("permutation", "local_unitary"):
            sym = registry.create("symmetry", name, {})
            rho2, cut_map = sym.apply(rho, torch.Generator().manual_seed(2))
            assert (
                not torch.equal(cut_map, torch.arange(n_cuts(n)).expand_as(cut_map)) or name != "permutation"
            )
            term = consistency_loss(p, torch.sigmoid(model(torch_ops.to_model_input(rho2))), cut_map)
            assert float(term) < 1e-6, name
            # the term is not trivially zero: a view without the cut re-indexing disagrees
            if name == "permutation":
                identity = torch.arange(n_cuts(n)).expand_as(cut_map)
                assert (
                    float(consistency_loss(p, torch.sigmoid(model(torch_ops.to_model_input(rho2))), identity))
                    > 1e-4
                )


def test_perm_equivariant_features_are_the_invariants():
    """Features against closed forms: Rényi-2 entropies, PT minimum eigenvalue (numpy oracle)."""
    n = 3
    rng = np.random.default_rng(3)
    rho = random_mixed(n, 4, rng, 2)
    model = build_model(n, 0)
    feats, glob = model.features(torch_ops.to_model_input(torch.as_tensor(rho)))
    assert feats.shape == (4, n_cuts(n), feature_count(n, True))
    s2_ab = -np.log2(ops.purity(rho))
    np.testing.assert_allclose(glob[:, 0].numpy(), s2_ab / n, rtol=1e-10)
    lam = ppt.pt_min_eigenvalues(rho)  # (N, n_cuts)
    p2 = ops.purity(rho)[:, None]
    sizes = n // 2
    # column layout: one-hot sizes, 3 sorted pairs, ratio3, p4, 2 sharpened, sharpened ratio3, lam, neg, ...
    lam_col = sizes + 6 + 2 + 2 + 1
    np.testing.assert_allclose(feats[..., lam_col].numpy(), lam / np.sqrt(p2), atol=1e-10)
    for cut in bipartitions(n):
        s_a = -np.log2(ops.purity(ops.partial_trace(rho, cut.side_a))) / len(cut.side_a)
        s_b = -np.log2(ops.purity(ops.partial_trace(rho, cut.side_b))) / len(cut.side_b)
        np.testing.assert_allclose(
            feats[:, cut.index, sizes : sizes + 2].numpy(), np.sort(np.stack([s_a, s_b], 1), 1), atol=1e-10
        )


def test_perm_equivariant_rejects_wrong_input(registry):
    model = registry.create("backbone", "perm_equivariant", {}).build(4)
    with pytest.raises(QeframeError, match=r"expected input \(B, 2, 16, 16\) for 4 qubits"):
        model(torch.zeros(2, 2, 8, 8))


# -------------------------------------------------------------------------- embedded family


def test_core_cut_table_brute_force():
    for n, k in ((4, 3), (5, 3), (6, 4)):
        table = core_cut_table(n, k)
        core_cuts = {frozenset(c.side_a): c.index for c in bipartitions(k)}
        core_cuts.update({frozenset(c.side_b): c.index for c in bipartitions(k)})
        for cut in bipartitions(n):
            part = frozenset(q for q in cut.side_a if q < k)
            expected = core_cuts.get(part, -1) if part and len(part) < k else -1
            assert table[cut.index] == expected


@pytest.mark.parametrize("source", ["horodecki", "upb", "acin"])
@pytest.mark.parametrize("n", [4, 5])
def test_embedded_labels_agree_with_ppt(source, n):
    """Proved labels never contradict the PPT test; horodecki keeps PPT-entangled cuts at every n."""
    fam = EmbeddedFamily(EmbeddedFamily.Params(source=source, local_randomize=True, product="mixed"))
    batch = fam.generate(20, np.random.default_rng(n), n)
    assert batch.rho.shape == (20, 2**n, 2**n)
    np.testing.assert_allclose(np.trace(batch.rho, axis1=1, axis2=2), 1.0, atol=1e-12)
    np.testing.assert_allclose(batch.rho, batch.rho.conj().transpose(0, 2, 1), atol=1e-12)
    lam = ppt.pt_min_eigenvalues(batch.rho)
    truth = batch.ground_truth
    assert (truth >= 0).all()
    assert not ((lam < -1e-10) & (truth == 0)).any()  # NPT implies entangled
    ppt_entangled = (lam > -1e-10) & (truth == 1)
    if source == "horodecki":
        # cuts splitting the core {1}|{2,3}: 2**(n-3) of them per state (the added qubits on either side)
        assert (ppt_entangled.sum(axis=1) == 2 ** (n - 3)).all()
        # the other core-splitting cuts are NPT; cuts not splitting the core are separable
        assert ((truth == 1).sum(axis=1) == 3 * 2 ** (n - 3)).all()
    else:
        assert (truth == 0).all() and batch.meta["pptes"].all()


def test_embedded_core_too_large():
    fam = EmbeddedFamily(EmbeddedFamily.Params(source="horodecki", core_qubits=5))
    with pytest.raises(QeframeError, match="core_qubits = 5 does not fit 4 qubits"):
        fam.sample(2, np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="'upb' does not support core_qubits = 4"):
        EmbeddedFamily.Params(source="upb", core_qubits=4)


# -------------------------------------------------------------------------- unsupported n


def test_unsupported_n_names_family_n_and_range(registry):
    spec = parse_registry(
        {
            "datasets": {
                "bad": {
                    "n_qubits": 5,
                    "seed": 0,
                    "labeler": "construction",
                    "families": [{"family": "upb", "count": 4}],
                }
            }
        }
    )
    with pytest.raises(SpecError) as err:
        validate_dataset_plugins("bad", spec.datasets["bad"], registry)
    message = str(err.value)
    assert "\n" not in message
    assert "datasets.bad.families[0].family" in message
    assert "'upb'" in message and "n = 5" in message and "supported: n = 3" in message
    fam = registry.create("family", "horodecki", {})
    with pytest.raises(
        QeframeError, match=r"'horodecki' does not support n = 2 qubits \(supported: n >= 3\)"
    ):
        fam.generate(1, np.random.default_rng(0), 2)


@pytest.mark.parametrize(
    ("name", "supported", "n"),
    [
        ("filtered-separable", "n = 3", 4),
        ("filtered-horodecki", "n >= 3", 2),
        ("witnessed-horodecki", "n >= 3", 2),
        ("cut-filtered-horodecki", "n >= 3", 2),
    ],
)
def test_certified_ppt_families_state_their_range(registry, name, supported, n):
    """The certified PPT families declare ``qubit_range``, so the one-line error names their range."""
    fam = registry.create("family", name, {})
    assert not fam.supports(n)
    message = rf"'{name}' does not support n = {n} qubits \(supported: {supported}\)"
    with pytest.raises(QeframeError, match=message):
        fam.generate(1, np.random.default_rng(0), n)


@pytest.mark.parametrize("n", [4, 5, 6])
def test_families_support_n_up_to_six(registry, n):
    """Every built-in family but the 3-qubit-only ones produces valid n-qubit states with per-cut truth."""
    rng = np.random.default_rng(n)
    for name in ("circuit", "haar", "product", "mixture", "reduced", "horodecki", "embedded"):
        cls = registry.get("family", name)
        assert cls.supports(n), name
        batch = registry.create("family", name, {}).generate(2, rng, n)
        assert batch.rho.shape == (2, 2**n, 2**n) and batch.ground_truth.shape == (2, n_cuts(n)), name
    assert not registry.get("family", "upb").supports(n) and not registry.get("family", "acin").supports(n)


def test_cut_order_six_qubits():
    cuts = bipartitions(6)
    assert len(cuts) == 31
    sizes = [len(c.side_a) for c in cuts]
    assert sizes == sorted(sizes) and sizes.count(3) == 10  # C(6,3)/2 cuts of size 3, qubit 1 named first
    assert all(0 in c.side_a for c in cuts if len(c.side_a) == 3)
    assert [c.side_a for c in cuts if len(c.side_a) == 2] == list(combinations(range(6), 2))


# -------------------------------------------------------------------------- bad input at n qubits


@pytest.fixture
def four_qubit_run(registry, tmp_path):
    """A run folder of a 4-qubit perm_equivariant model after one epoch on 32 toy states."""
    from train_plugins import synthetic_arrays

    from qeframe.config.specs import ModelSpec, TrainingSpec
    from qeframe.learn.runs import RunDir
    from qeframe.learn.train import Trainer

    run = RunDir.create(tmp_path / "runs", "exp4", "f" * 64)
    trainer = Trainer(
        ModelSpec(backbone="perm_equivariant", params={"width": 8}),
        TrainingSpec(epochs=1, batch_size=16),
        4,
        registry=registry,
        device="cpu",
    )
    trainer.fit(synthetic_arrays("train", 32, n_qubits=4), run=run)
    return run.path


def _one_line_error(qeframe_cli, *args) -> str:
    code, _, err = qeframe_cli(*args)
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_classify_and_certify_reject_wrong_sizes(four_qubit_run, tmp_path, qeframe_cli):
    """Not a power of two, or a power of two of the wrong n: one line, non-zero exit, both commands."""
    six = tmp_path / "six.npy"
    np.save(six, np.eye(6)[None] / 6)
    three_qubits = tmp_path / "eight.npy"
    np.save(three_qubits, np.eye(8)[None] / 8)
    five_qubits = tmp_path / "thirtytwo.npy"
    np.save(five_qubits, np.eye(32)[None] / 32)
    assert "matrix size 6 is not 2**n" in _one_line_error(
        qeframe_cli, "classify", six, "--run", four_qubit_run
    )
    assert "matrix size 6 is not 2**n" in _one_line_error(qeframe_cli, "certify", six)
    for path, n in ((three_qubits, 3), (five_qubits, 5)):
        line = _one_line_error(qeframe_cli, "classify", path, "--run", four_qubit_run)
        assert f"are {n} qubits, expected 4 (16x16)" in line
    # the right size is accepted: seven cuts of a 4-qubit run
    good = tmp_path / "good.npy"
    np.save(good, np.eye(16)[None] / 16)
    code, out, err = qeframe_cli("classify", good, "--run", four_qubit_run, "--json")
    assert code == 0, err
    assert len(json.loads(out)["cuts"]) == 7


# -------------------------------------------------------------------------- tensor network at 64 x 64


@pytest.mark.parametrize("n", [2, 3, 4])
def test_tensor_network_quadratic_contraction_is_the_same_function(n):
    """K = 2: <rho|W|rho> (MPO applied to one copy) equals the two-copy environment contraction."""
    from qeframe_plugins.backbones.tensor_network import TensorNetworkBackbone, TensorNetworkParams

    torch.manual_seed(n)
    model = TensorNetworkBackbone(TensorNetworkParams(bond_dim=3, features=5)).build(n).double()
    x = torch_ops.to_model_input(torch.as_tensor(random_mixed(n, 4, np.random.default_rng(n), 2)))
    torch.testing.assert_close(model._contract_quadratic(x), model._contract(x), rtol=1e-10, atol=1e-12)


def test_tensor_network_builds_at_six_qubits():
    from qeframe_plugins.backbones.tensor_network import (
        MAX_ENVIRONMENT,
        TensorNetworkBackbone,
        TensorNetworkParams,
        environment_size,
    )

    params = TensorNetworkParams(bond_dim=16)
    # the widest bond is the 32 features of the last site
    assert environment_size(params, 6) == 32 * 2 * 4**6 <= MAX_ENVIRONMENT
    model = TensorNetworkBackbone(params).build(6)
    rho = torch.eye(64, dtype=torch.complex64).expand(2, 64, 64) / 64
    out = model(torch_ops.to_model_input(rho))
    assert out.shape == (2, 31) and torch.isfinite(out).all()
    with pytest.raises(QeframeError, match="use fewer copies or a smaller bond_dim"):
        TensorNetworkBackbone(TensorNetworkParams(copies=3)).build(5)
