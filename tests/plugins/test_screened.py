"""The screened comb products (``_screened``) and the :class:`DropRule` protocol.

Claims checked: with the verified labeler's drop rule the ``product`` family consumes the same
random numbers, the labeler keeps the same samples with bit-identical rows, labels and evidence,
every row the screen replaced is one the labeler drops anyway, the single-precision pass is
within the proof's error bound, and a whole store built with and without the screen has the same
content hash.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.families import _circuits, _screened, product
from qeframe_plugins.families.product import ProductFamily
from qeframe_plugins.labelers.negativity import NegativityLabeler
from qeframe_plugins.labelers.verified import VerifiedLabeler

from qeframe.config.specs import DatasetSpec
from qeframe.data.store import build_dataset
from qeframe.plugin.interfaces import DropRule
from qeframe.plugin.registry import Registry
from qeframe.quantum.ppt import pt_min_eigenvalues

VERIFIED = VerifiedLabeler()
RULE = VERIFIED.drop_rule()


def comb(**extra) -> ProductFamily:
    params = {"kind": "biseparable", "source": "circuit", "terms": (2, 16), "local_terms": (2, 16)}
    return ProductFamily(ProductFamily.Params(**{**params, **extra}))


def assert_same_labelled_rows(fam: ProductFamily, count: int, seed: int, n: int = 3) -> np.ndarray:
    """Screened and unscreened draws from one seed: same generator state afterwards, same kept rows
    (every bit), labels and evidence; returns the rows the screen replaced."""
    r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
    plain = fam.generate(count, r1, n)
    screened = fam.generate(count, r2, n, drop=RULE)
    assert r1.bit_generator.state == r2.bit_generator.state
    a, b = VERIFIED.label(plain), VERIFIED.label(screened)
    assert np.array_equal(a.keep, b.keep)
    assert np.array_equal(plain.rho[a.keep].view(np.float64), screened.rho[b.keep].view(np.float64))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.provenance, b.provenance)
    assert np.array_equal(a.evidence, b.evidence, equal_nan=True)
    assert np.array_equal(plain.ground_truth, screened.ground_truth)
    replaced = ~np.all(plain.rho == screened.rho, axis=(1, 2))
    d = 2**n
    assert np.array_equal(screened.rho[replaced], np.broadcast_to(np.eye(d) / d, (int(replaced.sum()), d, d)))
    assert not a.keep[replaced].any()  # only rows the labeler drops were replaced
    return replaced


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(1, 200),
    seed=st.integers(0, 2**32 - 1),
    terms=st.sampled_from([(1, 1), (2, 3), (2, 16)]),
    local_terms=st.sampled_from([(2, 2), (2, 16), (3, 5)]),
    layers=st.integers(1, 3),
    n=st.sampled_from([3, 3, 4]),
)
def test_screen_keeps_the_labelled_rows(count, seed, terms, local_terms, layers, n):
    fam = comb(terms=terms, local_terms=local_terms, u_layers=layers)
    assert_same_labelled_rows(fam, count, seed, n)  # n = 4: sides of 2 and 2 screened, 1 and 3 not


def test_screen_replaces_most_dropped_rows_and_nothing_else():
    replaced = assert_same_labelled_rows(comb(), 3000, 1)
    keep = VERIFIED.label(comb().generate(3000, np.random.default_rng(1), 3)).keep
    assert replaced.sum() >= 0.95 * (~keep).sum()  # the screen does the work it is there for


def test_single_precision_pass_is_within_the_proof_bound():
    """The proof needs ``||ρ - ρ̃||_F`` well below ``0.9 * SCREEN_MARGIN``; measured entrywise."""
    draws = _screened.draw_products(
        500, [1, 2], np.random.default_rng(2), terms=(2, 16), local_terms=(2, 16), u_layers=2
    )
    exact = _screened.assemble(draws)
    approx = _screened.assemble(draws, approx=True)
    assert approx.dtype == np.complex64 and exact.dtype == np.complex128
    err = np.abs(exact - approx).max()
    assert err < 1e-5 < 0.9 * _screened.SCREEN_MARGIN / 8
    # and the subset pass gives the rows of the whole
    sub = np.array([0, 7, 99, 499])
    assert np.array_equal(
        _screened.assemble(draws, samples=sub).view(np.float64), exact[sub].view(np.float64)
    )


def test_screen_verdicts_against_eigenvalues():
    draws = _screened.draw_products(
        800, [1, 2], np.random.default_rng(3), terms=(2, 16), local_terms=(2, 16), u_layers=2
    )
    exact = _screened.assemble(draws)
    dropped = _screened.screen(_screened.assemble(draws, approx=True), 1, 3)
    lam = pt_min_eigenvalues(exact)  # canonical frame: cut 0 (1|23) is the product cut
    assert _screened.product_cut(1, 3) == 0
    assert (lam[dropped][:, 1:].max(axis=1) >= 0.8 * _screened.SCREEN_MARGIN).all()
    assert not dropped[(lam[:, 1:] < _screened.SCREEN_MARGIN).all(axis=1)].any()


def test_screen_applies_only_where_it_reproduces_the_family(monkeypatch):
    assert comb()._screenable(3, 1)
    assert not comb(kind="separable")._screenable(3, 1)  # nothing to drop: every cut is known
    assert not comb(local_terms=(1, 4))._screenable(3, 1)  # a factor of one circuit: engine's rounding
    assert not comb(source="haar")._screenable(3, 1)
    assert not comb()._screenable(4, 1)  # three-qubit factors come from the engine
    assert comb()._screenable(4, 2)
    assert not comb()._screenable(2, 1)  # the only cut is the product cut: nothing to drop
    monkeypatch.setattr(_circuits, "random_gate_params", _circuits.reference_gate_params)
    assert not comb()._screenable(3, 1)  # a swapped gate sampler reaches the rows through the engine


def test_drop_rules_of_the_labelers():
    assert RULE == DropRule(tol=VERIFIED.params.tol)
    assert VerifiedLabeler(VerifiedLabeler.Params(drop_unknown=False)).drop_rule() is None
    assert NegativityLabeler().drop_rule() is None  # keeps everything: nothing may be replaced
    fam = ProductFamily(ProductFamily.Params(kind="separable", source="haar"))  # default: ignores the rule
    a = fam.generate(50, np.random.default_rng(4), 3)
    b = fam.generate(50, np.random.default_rng(4), 3, drop=RULE)
    assert np.array_equal(a.rho, b.rho)


@pytest.mark.parametrize("workers", [1])
def test_store_content_is_the_same_with_and_without_the_screen(tmp_path, monkeypatch, workers):
    spec = DatasetSpec.model_validate(
        {
            "n_qubits": 3,
            "seed": 5,
            "labeler": "verified",
            "families": [
                {
                    "family": "product",
                    "count": 40,
                    "params": {"kind": "biseparable", "terms": [2, 4], "local_terms": [2, 16]},
                },
                {"family": "mixture", "count": 30, "params": {"keep": "npt_all"}},
            ],
        }
    )
    reg = Registry.load()
    replaced = []

    def spy(*args, **kwargs):
        out = _screened.screened_products(*args, **kwargs)
        replaced.append(int(np.all(out == np.eye(8) / 8, axis=(1, 2)).sum()))
        return out

    monkeypatch.setattr(product, "screened_products", spy)
    screened = build_dataset(
        "s", spec, data_dir=tmp_path / "a", registry=reg, workers=workers, progress=False
    )
    assert sum(replaced) > 0  # the build screened
    monkeypatch.setattr(VerifiedLabeler, "drop_rule", lambda self: None)
    plain = build_dataset("s", spec, data_dir=tmp_path / "b", registry=reg, workers=workers, progress=False)
    assert screened.content_hash == plain.content_hash
    assert len(screened) == 70
