"""Test states and checks shared by the PPT-test suites (tests/quantum/test_ppt.py,
test_npt_compiled.py, test_npt_native.py, test_npt_screen.py) and the DPS-2 suites (tests/plugins/test_baselines.py,
test_dps_extension.py) and the separability-proof suites (tests/quantum/test_rank_separable.py,
test_separable_proofs.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from qeframe.quantum import ppt
from qeframe.quantum.ops import apply_local_unitaries, batch_kron, pure_density
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.random import apply_local_filters, haar_state, haar_unitary, random_local_filters


def separable_mixtures(count: int, n: int, terms: int, rng: np.random.Generator) -> np.ndarray:
    """Random convex mixtures of ``terms`` pure fully-product states (separable on every cut)."""
    out = np.zeros((count, 2**n, 2**n), dtype=np.complex128)
    weights = rng.random((count, terms))
    weights /= weights.sum(axis=1, keepdims=True)
    for t in range(terms):
        psi = haar_state(2, count, rng)
        for _ in range(n - 1):
            psi = batch_kron(psi, haar_state(2, count, rng))
        out += weights[:, t, None, None] * pure_density(psi)
    return out


def filtered_product_mixture(seed: int, count: int, terms: int, kappa: float) -> np.ndarray:
    """``count`` three-qubit mixtures of ``terms`` product states under random local filters of
    condition number ``kappa``: separable, rank ``terms`` (generic), ``(count, 8, 8)``."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, 8, 8), complex)
    for _ in range(terms):
        psi = batch_kron(*(haar_state(2, count, rng) for _ in range(3)))
        out += (0.1 + rng.random(count))[:, None, None] * np.einsum("ni,nj->nij", psi, psi.conj())
    out = apply_local_filters(out, random_local_filters(count, 3, kappa, rng))
    return out / np.trace(out, axis1=1, axis2=2).real[:, None, None]


def mixtures(n: int, count: int, rng: np.random.Generator, rank: int = 4) -> np.ndarray:
    """``count`` mixtures of ``rank`` Haar states of ``n`` qubits, Dirichlet weights: ``(count, d, d)``."""
    d = 2**n
    psi = haar_state(d, count * rank, rng).reshape(count, rank, d)
    w = rng.dirichlet(np.ones(rank), size=count)
    return np.einsum("nk,nki,nkj->nij", w, psi, psi.conj())


def near_boundary(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Mixtures of Haar states with white noise scaled to put the most negative cut close to its
    PPT threshold (noise fractions 0.9x..1.1x the critical one): about half NPT, half PPT."""
    rho = mixtures(n, count, rng)
    d = 2**n
    lam = pt_min_eigenvalues(rho).min(axis=1)  # < 0 for these states
    p_crit = -lam * d / (1 - lam * d)  # (1-p) lam + p/d = 0
    p = np.clip(rng.uniform(0.9, 1.1, count) * p_crit, 0, 1)
    return (1 - p)[:, None, None] * rho + p[:, None, None] * np.eye(d) / d


def ghz_at_threshold(lam: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` noisy 3-qubit GHZ states with ``lambda_min(rho^{T_A}) = lam`` on every cut (exact by
    construction: ``(1 - p)/d - p/2``), rotated by Haar local unitaries: ``(count, 8, 8)``."""
    d = 8
    p = (1 / d - lam) / (1 / d + 0.5)
    ghz = np.zeros(d)
    ghz[[0, -1]] = 2**-0.5
    rho = p * np.outer(ghz, ghz) + (1 - p) * np.eye(d) / d
    rho = np.broadcast_to(rho, (count, d, d)).astype(complex)
    rho = apply_local_unitaries(rho, haar_unitary(2, count * 3, rng).reshape(count, 3, 2, 2))
    np.testing.assert_allclose(pt_min_eigenvalues(rho), lam, atol=1e-14)
    return rho


def shifted_to(rho: np.ndarray, cut: int, target: float) -> tuple[np.ndarray, np.ndarray]:
    """``rho`` plus a multiple of the identity per state so that ``cut``'s ``lambda_min(rho^{T_A})``
    is ``target`` (the shift moves every partial transpose's spectrum alike). Returns the shifted
    states and their ``(N, n_cuts)`` minimal partial-transpose eigenvalues."""
    d = rho.shape[-1]
    lam = pt_min_eigenvalues(rho)[:, cut]
    rho = rho + (target - lam)[:, None, None] * np.eye(d)
    return rho, pt_min_eigenvalues(rho)


def assert_labelers_match_numpy(
    monkeypatch: Any, rho: np.ndarray, backend: str | None, module: Any, attr: str, *, exact_evidence: bool
) -> None:
    """The verified, negativity and certified labelers on ``rho`` (3 qubits, no ground truth) with
    ``QEFRAME_NPT_BACKEND=backend`` (``None``: unset, the default) give the kept rows, labels and
    provenance of ``QEFRAME_NPT_BACKEND=numpy``, and the same evidence (``exact_evidence``) or the
    same NaN pattern; every labeler must call ``module.attr`` (the backend's kernel) at least once."""
    from qeframe_plugins.labelers.certified import CertifiedLabeler
    from qeframe_plugins.labelers.negativity import NegativityLabeler
    from qeframe_plugins.labelers.verified import VerifiedLabeler

    from qeframe.plugin.interfaces import StateBatch
    from qeframe.plugin.labels import provenance_code

    truth = np.full((len(rho), 3), -1, dtype=np.int8)
    prov = np.full(truth.shape, provenance_code("unknown"), dtype=np.uint8)
    batch = StateBatch(rho, truth, prov, meta={})
    labelers = [
        VerifiedLabeler(VerifiedLabeler.Params(drop_unknown=False)),
        NegativityLabeler(),
        CertifiedLabeler(CertifiedLabeler.Params(sdp=False, progress=False, realignment=False)),
    ]
    calls = []
    real = getattr(module, attr)

    def counting(*args):
        calls.append(1)
        return real(*args)

    for labeler in labelers:
        monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "numpy")
        ref = labeler.label(batch)
        if backend is None:
            monkeypatch.delenv(ppt.NPT_BACKEND_ENV)
        else:
            monkeypatch.setenv(ppt.NPT_BACKEND_ENV, backend)
        monkeypatch.setattr(module, attr, counting)
        got = labeler.label(batch)
        monkeypatch.setattr(module, attr, real)
        np.testing.assert_array_equal(got.keep, ref.keep)
        np.testing.assert_array_equal(got.labels, ref.labels)
        np.testing.assert_array_equal(got.provenance, ref.provenance)
        if exact_evidence:
            np.testing.assert_array_equal(got.evidence, ref.evidence)
        else:
            np.testing.assert_array_equal(np.isnan(got.evidence), np.isnan(ref.evidence))
    assert len(calls) >= len(labelers)  # every labeler went through the backend's kernel
