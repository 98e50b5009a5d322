"""Aligned library witnesses (:mod:`qeframe.quantum.filter_witness`): every proof is a proof.

Checks: the library (witnesses and their partial transposes) is verified block-positive and detects
its targets in filter normal form; filtered and locally rotated Horodecki states (and their partial
transposes) are proved; separable states never are (hypothesis); the error budget bounds the actual
floating-point error (extended-precision reference); the stage in the prediction layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qeframe.learn.prediction import PredictionConfig, predict
from qeframe.quantum.filter_witness import (
    aligned_error_bound,
    aligned_library,
    aligned_witness_proofs,
    verify_aligned,
)
from qeframe.quantum.ops import batch_kron, partial_transpose, permute_qubits
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import apply_local_filters, haar_state, haar_unitary, random_local_filters
from qeframe.quantum.witness import horodecki_library_states, verify_block_positive


def test_library_is_verified_and_detects_its_targets_in_fnf():
    lib = aligned_library(3)
    assert lib.witnesses.shape == (10, 8, 8) and len(lib.names) == 10
    for w, name in zip(lib.witnesses, lib.names):
        assert verify_block_positive(w, (2, 4)).verified, name
    targets = horodecki_library_states(3)
    targets = np.concatenate([targets, partial_transpose(targets, [0])])
    assert (np.einsum("kij,kji->k", lib.witnesses, targets).real < -5e-4).all()
    # carried to the FNF of the target, the witness still detects it (the search starts there)
    g = batch_kron(np.linalg.inv(lib.inv_fa), np.linalg.inv(lib.inv_fb))
    sigma = g @ targets @ np.conj(np.swapaxes(g, 1, 2))
    sigma /= np.trace(sigma, axis1=1, axis2=2).real[:, None, None]
    assert (np.einsum("kij,kji->k", lib.w_fnf, sigma).real < 0).all()


def _filtered_horodecki(seed: int, count: int, transpose: bool) -> np.ndarray:
    """Library-``b`` Horodecki states under random single-qubit filters (kappa 4), qubits permuted."""
    rng = np.random.default_rng(seed)
    rho = horodecki_library_states(3)[rng.integers(0, 5, count)]
    if transpose:
        rho = partial_transpose(rho, [0])
    rho = apply_local_filters(rho, random_local_filters(count, 3, 4.0, rng))
    return np.stack([permute_qubits(r, list(rng.permutation(3))) for r in rho])


@pytest.mark.parametrize("transpose", [False, True])
def test_filtered_horodecki_states_are_proved_on_their_ppt_cut(transpose):
    rho = _filtered_horodecki(5, 6, transpose)
    ppt = ~npt_mask(rho)
    assert ppt.sum(axis=1).tolist() == [1] * 6  # one PPT cut each (the construction cut)
    res = aligned_witness_proofs(rho, ppt, restarts=8, steps=200)
    assert res.proved[ppt].all()
    assert not res.proved[~ppt].any() and (res.witness[~ppt] == -1).all()
    assert (res.value[ppt] < -100 * res.budget[ppt]).all() and (res.budget[ppt] < 1e-6).all()


def _separable(seed: int, count: int, terms: int, kappa: float) -> np.ndarray:
    """Random mixtures of ``terms`` product states of three qubits, then random local filters."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, 8, 8), complex)
    for _ in range(terms):
        psi = batch_kron(*(haar_state(2, count, rng) for _ in range(3)))
        out += rng.random(count)[:, None, None] * np.einsum("ni,nj->nij", psi, psi.conj())
    out /= np.trace(out, axis1=1, axis2=2).real[:, None, None]
    return apply_local_filters(out, random_local_filters(count, 3, kappa, rng))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), terms=st.integers(1, 10), kappa=st.floats(1.0, 20.0))
def test_separable_states_are_never_proved(seed, terms, kappa):
    rho = _separable(seed, 4, terms, kappa)
    res = aligned_witness_proofs(rho, restarts=3, steps=40, skip_separable=False)
    assert not res.proved.any()
    assert np.nanmin(res.value) > -1e-12  # not even close: tr(H^† W H rho) >= 0 for separable rho
    staged = aligned_witness_proofs(rho, restarts=3, steps=40, check_every=10, keep=6, dtype="float32")
    assert not staged.proved.any()
    # what the rank rules skip (mixtures of <= 4 product states have rank <= 4) is never searched
    assert (np.isnan(staged.value) == (staged.skipped > 0)).all()


def test_verification_refutes_nothing_it_should_not_and_uses_the_given_factors():
    """The verdict depends only on the factors passed: the aligned filters found for a filtered
    Horodecki state prove it; the same factors swapped onto a product state prove nothing; and
    scaling ``H`` (the test is homogeneous) keeps the verdict."""
    rho = _filtered_horodecki(11, 1, False)
    cut = int(np.flatnonzero(~npt_mask(rho)[0])[0])
    res = aligned_witness_proofs(rho, restarts=8, steps=200)
    assert res.proved[0, cut]
    # rebuild the filters by the search on the qubit-first state and check them directly
    from qeframe.quantum.alignment_search import search_alignment
    from qeframe.quantum.realignment import filter_normal_form
    from qeframe.quantum.witness import qubit_first

    lib = aligned_library(3)
    x = qubit_first(rho, cut)
    fnf = filter_normal_form(x, 2, 4)
    u_a, u_b, k, _ = search_alignment(fnf.sigma, lib, restarts=8, steps=200, seed=cut)
    h_a, h_b = lib.inv_fa[k] @ u_a @ fnf.f_a, lib.inv_fb[k] @ u_b @ fnf.f_b
    assert verify_aligned(x, lib, k, h_a, h_b).proved.all()
    assert verify_aligned(x, lib, k, 7.0 * h_a, 0.3 * h_b).proved.all()
    product = np.zeros((1, 8, 8), complex)
    product[0, 0, 0] = 1.0
    assert not verify_aligned(product, lib, k, h_a, h_b).proved.any()
    bad = np.full_like(h_a, np.nan)
    assert not verify_aligned(x, lib, k, bad, h_b).proved.any()


def test_error_budget_bounds_the_rounding_error():
    """``|v_float64 - v_reference|`` (reference: the same sums in extended precision, ``np.clongdouble``)
    is far below the rounding part of :func:`aligned_error_bound` for random states and filters of
    condition number up to 1e4."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("no extended precision on this platform")
    rng = np.random.default_rng(0)
    n = 50
    psi = haar_state(8, 3 * n, rng).reshape(n, 3, 8)
    rho = np.einsum("nki,nkj->nij", psi, psi.conj()) / 3
    s = np.exp(rng.uniform(-np.log(1e4), 0, (n, 2)))
    h_a = haar_unitary(2, n, rng) * np.stack([np.ones(n), s[:, 0]], 1)[:, None, :] @ haar_unitary(2, n, rng)
    h_b = haar_unitary(4, n, rng) * np.linspace(1, 1e-2, 4)[None, None, :] @ haar_unitary(4, n, rng)
    lib = aligned_library(3)
    w = lib.witnesses[rng.integers(0, 10, n)]
    k = batch_kron(h_a, h_b)
    y = k @ rho @ np.conj(np.swapaxes(k, 1, 2))
    v = np.einsum("nij,nji->n", w, y).real
    kl, rl, wl = (a.astype(np.clongdouble) for a in (batch_kron(h_a, h_b), rho, w))
    yl = np.einsum("nij,njk,nlk->nil", kl, rl, np.conj(kl))
    vl = np.einsum("nij,nji->n", wl, yl).real
    bound = aligned_error_bound(rho, k, w, input_tol=0.0)
    assert (np.abs(v - vl.astype(float)) <= bound / 100).all()  # the bound holds without its safety factor
    assert (bound > 0).all()


def test_prediction_stage_names_the_proof_and_the_proof_policy_keeps_it():
    """The stage in :func:`predict`: a model that abstains on every PPT cut (p = 0.5 between the
    thresholds) lets the search run; proved cuts are entangled with proof ``aligned_witness`` under the
    proof policy, the rest stay unknown. A model that answers "separable" screens the search out (the
    stage only runs where the model does not say separable), so the same states get no such proof."""
    rho = _filtered_horodecki(3, 3, False)
    ppt = ~npt_mask(rho)
    config = PredictionConfig.uncalibrated(3)
    config.t_separable, config.t_entangled = 0.1, np.inf  # p = 0.5: unknown on every PPT cut
    config.proofs = ("aligned_witness",)
    config.ppt_entangled = "proof"
    out = predict(config, np.zeros((3, 3)), rho)
    proofs = np.array(out.proof(), dtype=object)
    assert (proofs[~ppt] == "npt").all() and set(proofs[ppt]) <= {"aligned_witness", None}
    assert (proofs[ppt] == "aligned_witness").sum() >= 2  # the search is a heuristic: 97 % at these sizes
    assert ((out.answer == 1) == (proofs != None)).all()  # entangled exactly where proved
    assert (out.answer[proofs == None] == -1).all()  # unproved: the model abstains
    assert (out.probability[proofs == "aligned_witness"] == 1.0).all()
    config.t_separable = 0.9  # now the model says separable on every PPT cut: nothing to search
    out = predict(config, np.zeros((3, 3)), rho)
    assert (np.array(out.proof(), dtype=object)[ppt] == None).all() and (out.answer[ppt] == 0).all()
    config.proof_search = "all"  # ... unless the search runs on every PPT cut
    out = predict(config, np.zeros((3, 3)), rho)
    proofs = np.array(out.proof(), dtype=object)
    assert (proofs[ppt] == "aligned_witness").sum() >= 2 and "every PPT cut" in config.describe()
    assert ((out.answer[ppt] == 1) == (proofs[ppt] == "aligned_witness")).all()
    on_device = predict(config, np.zeros((3, 3)), rho, device="cpu")  # the search's device, passed through
    assert (np.array(on_device.proof(), dtype=object) == proofs).all()


def test_four_qubits_filtered_horodecki_states_are_proved():
    """``2 x 8`` cuts: the library of four-qubit Horodecki witnesses, unitaries in SU(8) (measured:
    3 of 4 at 100 steps, 4 of 4 at 300); deterministic seeds, so this is not a flaky count."""
    rng = np.random.default_rng(1)
    rho = horodecki_library_states(4)[rng.integers(0, 5, 4)]
    rho = apply_local_filters(rho, random_local_filters(4, 4, 4.0, rng))
    ppt = ~npt_mask(rho)
    assert ppt.sum(axis=1).tolist() == [1] * 4
    res = aligned_witness_proofs(rho[:2], ppt[:2], restarts=8, steps=300)
    assert res.proved[ppt[:2]].all() and not res.proved[~ppt[:2]].any()


def test_given_starts_are_used_as_they_are():
    """``search_alignment(starts=...)``: the generators of a found alignment (matrix logarithm of the
    unitaries), given as the only non-identity start with zero steps, give back the same unitaries,
    value and proof — the input a proposer would provide is taken as is."""
    from qeframe.quantum.alignment_search import search_alignment
    from qeframe.quantum.realignment import filter_normal_form
    from qeframe.quantum.witness import qubit_first

    rho = _filtered_horodecki(11, 1, False)
    cut = int(np.flatnonzero(~npt_mask(rho)[0])[0])
    lib = aligned_library(3)
    x = qubit_first(rho, cut)
    fnf = filter_normal_form(x, 2, 4)
    u_a, u_b, k, value = search_alignment(fnf.sigma, lib, restarts=8, steps=200, seed=cut)

    def generator(u):  # Hermitian h with U = exp(i h) (U unitary, eigenvalues distinct)
        lam, vec = np.linalg.eig(u)
        return vec @ np.diag(np.angle(lam)) @ np.linalg.inv(vec)

    h_a, h_b = generator(u_a[0]), generator(u_b[0])
    h_a, h_b = 0.5 * (h_a + h_a.conj().T), 0.5 * (h_b + h_b.conj().T)
    params = np.concatenate([np.stack([h.real, h.imag], -1).ravel() for h in (h_a, h_b)])
    starts = np.broadcast_to(params, (1, 1, len(lib.names), params.size)).copy()
    v_a, v_b, k2, value2 = search_alignment(fnf.sigma, lib, restarts=2, steps=0, starts=starts)
    assert k2[0] == k[0] and abs(value2[0] - value[0]) < 1e-9
    assert np.allclose(v_a, u_a, atol=1e-8) and np.allclose(v_b, u_b, atol=1e-8)
    proof = verify_aligned(x, lib, k2, lib.inv_fa[k2] @ v_a @ fnf.f_a, lib.inv_fb[k2] @ v_b @ fnf.f_b)
    assert proof.proved.all()


# --------------------------------------------------------------------------------------------------
# the staged search: early exit, staged restarts, float32 search, device, exact skip


def _fnf_of(rho: np.ndarray):
    from qeframe.quantum.realignment import filter_normal_form
    from qeframe.quantum.witness import qubit_first

    cuts = np.flatnonzero(~npt_mask(rho)[0])
    x = np.stack([qubit_first(r, int(np.flatnonzero(~npt_mask(r[None])[0])[0])) for r in rho])
    assert len(cuts) == 1
    return x, filter_normal_form(x, 2, 4)


def test_search_is_torch_adam_written_out():
    """Without checks, :func:`search_alignment` follows ``torch.optim.Adam`` on
    :func:`alignment_values` exactly (float64): the written-out update is that optimiser's."""
    import torch

    from qeframe.quantum.alignment_search import alignment_values, search_alignment

    _, fnf = _fnf_of(_filtered_horodecki(3, 3, False))
    lib = aligned_library(3)
    _u_a, _u_b, k, value = search_alignment(fnf.sigma, lib, restarts=3, steps=25, lr=0.2, seed=7)
    gen = torch.Generator().manual_seed(7)
    n_k, n_par = len(lib.names), 8 + 2 * 16
    h = torch.cat(
        [
            torch.zeros(3, 1, n_k, n_par, dtype=torch.float64),
            torch.randn(3, 2, n_k, n_par, dtype=torch.float64, generator=gen),
        ],
        dim=1,
    ).requires_grad_(True)
    s, wf = torch.from_numpy(fnf.sigma)[:, None, None], torch.from_numpy(np.array(lib.w_fnf))
    opt = torch.optim.Adam([h], lr=0.2)
    for _ in range(25):
        opt.zero_grad()
        alignment_values(h, s, wf)[0].sum().backward()
        opt.step()
    with torch.no_grad():
        ref, _ua, _ = alignment_values(h, s, wf)
    flat = ref.reshape(3, -1)
    assert np.allclose(value, flat.min(dim=1).values.numpy(), atol=1e-12)
    assert (k == (flat.argmin(dim=1) % n_k).numpy()).all()


def test_checks_that_prove_nothing_change_nothing_and_a_proof_stops_the_search():
    """Candidates do not interact: checks that prove nothing leave every output as without checks;
    a state declared proved at a check keeps the candidate it had there (and leaves the batch)."""
    from qeframe.quantum.alignment_search import search_alignment

    _, fnf = _fnf_of(_filtered_horodecki(4, 4, False))
    lib = aligned_library(3)
    kw = {"restarts": 2, "steps": 30, "seed": 3}
    base = search_alignment(fnf.sigma, lib, **kw)
    never = search_alignment(fnf.sigma, lib, verify=lambda i, *a: np.zeros(len(i), bool), check_every=5, **kw)
    for a, b in zip(base, never):
        assert np.allclose(a, b, atol=1e-12)
    seen = {}

    def first_two(i, u_a, u_b, k):  # "prove" states 0 and 1 at the first check
        for j, a in zip(i, u_a):
            seen.setdefault(int(j), a.copy())
        return np.isin(i, [0, 1])

    got = search_alignment(fnf.sigma, lib, verify=first_two, check_every=10, **kw)
    assert np.allclose(got[0][:2], [seen[0], seen[1]]) and np.allclose(got[0][2:], base[0][2:], atol=1e-12)


def test_pruning_keeps_the_best_candidates():
    """``keep``: after the first check only ``keep`` candidates per state remain; the answer is
    still one of the library witnesses and the objective can only be that of a kept candidate."""
    from qeframe.quantum.alignment_search import search_alignment

    _, fnf = _fnf_of(_filtered_horodecki(6, 3, True))
    lib = aligned_library(3)
    none = lambda i, *a: np.zeros(len(i), bool)
    u_a, _u_b, k, value = search_alignment(
        fnf.sigma, lib, restarts=4, steps=60, verify=none, check_every=20, keep=3
    )
    assert ((k >= 0) & (k < len(lib.names))).all() and np.isfinite(value).all()
    assert np.allclose(u_a @ np.conj(np.swapaxes(u_a, 1, 2)), np.eye(2), atol=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_staged_defaults_prove_filtered_horodecki_states(dtype):
    """The stage's defaults (early exit every 10 steps, restarts in rounds of 4) in float64 and in
    float32 (search only: the proof is the float64 check) prove filtered Horodecki states and their
    partial transposes on their PPT cut and nowhere else; the device path on CPU gives the same."""
    rho = np.concatenate([_filtered_horodecki(21, 4, False), _filtered_horodecki(22, 4, True)])
    ppt = ~npt_mask(rho)
    res = aligned_witness_proofs(rho, ppt, restarts=8, steps=200, dtype=dtype)
    assert res.proved[ppt].all() and not res.proved[~ppt].any()
    assert (res.skipped == 0).all()
    on_cpu = aligned_witness_proofs(rho, ppt, restarts=8, steps=200, dtype=dtype, device="cpu")
    assert (on_cpu.proved == res.proved).all() and np.allclose(on_cpu.value, res.value, equal_nan=True)
    ok = res.proved[ppt]
    assert (res.value[ppt][ok] < -(res.budget[ppt][ok])).all()


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_search_proves_what_the_cpu_search_proves():  # pragma: no cover - CUDA only
    rho = _filtered_horodecki(21, 8, False)
    ppt = ~npt_mask(rho)
    res = aligned_witness_proofs(rho, ppt, restarts=8, steps=200, device="cuda")
    assert res.proved[ppt].all() and not res.proved[~ppt].any()


def test_rank_skip_is_reported_and_never_searched():
    """Pure product states and low-rank separable mixtures are skipped (no value, no witness) on
    their PPT cuts; entangled pure states (NPT) and Horodecki states (rank > 4 on 2 x 4) are not."""
    rng = np.random.default_rng(2)
    prod = batch_kron(*(haar_state(2, 3, rng) for _ in range(3)))
    pure = np.einsum("ni,nj->nij", prod, prod.conj())
    ghz = np.zeros(8, complex)
    ghz[[0, 7]] = 2**-0.5
    rho = np.concatenate([pure, np.outer(ghz, ghz.conj())[None], _filtered_horodecki(1, 2, False)])
    res = aligned_witness_proofs(rho, ~npt_mask(rho), restarts=2, steps=5)
    assert (res.skipped[:3] == 1).all() and np.isnan(res.value[:3]).all()
    assert (res.skipped[3:] == 0).all()
    assert not res.proved[:4].any()
