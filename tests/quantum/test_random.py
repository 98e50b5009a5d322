"""The package's one Haar sampler (:func:`qeframe.quantum.random.haar_state`, the paper's Eq. A3
recipe) and its phase helpers: exact Haar statistics, against closed forms and against the
normalised-Gaussian construction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from qeframe.quantum.random import haar_state, random_phases, unit_complex


@pytest.mark.parametrize("d", [2, 4, 8])
def test_haar_state_moments(d):
    count = 40000
    psi = haar_state(d, count, np.random.default_rng(11))
    assert psi.shape == (count, d) and psi.dtype == np.complex128
    np.testing.assert_allclose(np.linalg.norm(psi, axis=1), 1.0, atol=1e-12)
    p = np.abs(psi) ** 2
    np.testing.assert_allclose(p.mean(axis=0), 1 / d, atol=4e-3)
    # E|psi_i|^4 = 2 / (d (d + 1)) for the Haar measure (Bengtsson & Zyczkowski, Sec. 7.6)
    np.testing.assert_allclose((p**2).mean(), 2 / (d * (d + 1)), rtol=0.02)
    assert abs(psi.mean()) < 5e-3  # uniform phases: E psi_i = 0


def test_haar_state_component_is_beta_and_matches_gaussians():
    """|psi_0|^2 ~ Beta(1, d - 1) exactly under the Haar measure; the sampler and normalised complex
    Gaussians agree (two-sample KS) on |psi_0|^2 and on the relative phase of two components."""
    d, count = 8, 20000
    rng = np.random.default_rng(3)
    psi = haar_state(d, count, rng)
    g = rng.standard_normal((count, d)) + 1j * rng.standard_normal((count, d))
    gauss = g / np.linalg.norm(g, axis=1, keepdims=True)
    p0 = np.abs(psi[:, 0]) ** 2
    assert stats.kstest(p0, stats.beta(1, d - 1).cdf).pvalue > 1e-3
    assert stats.ks_2samp(p0, np.abs(gauss[:, 0]) ** 2).pvalue > 1e-3
    rel = np.angle(psi[:, 0] * psi[:, 1].conj())
    assert stats.ks_2samp(rel, np.angle(gauss[:, 0] * gauss[:, 1].conj())).pvalue > 1e-3


def test_haar_state_fails_a_biased_phase():
    """A KS check of the phases has power: phases on [0, 1.9 pi) instead of [0, 2 pi) are caught."""
    d, count = 8, 20000
    rng = np.random.default_rng(4)
    psi = haar_state(d, count, rng)
    g = rng.standard_normal((count, d)) + 1j * rng.standard_normal((count, d))
    biased = np.abs(psi) * unit_complex(rng.random((count, d), dtype=np.float32) * np.float32(1.9 * np.pi))
    phase = np.mod(np.angle(psi[:, 0]), 2 * np.pi)
    assert stats.ks_2samp(phase, np.mod(np.angle(g[:, 0]), 2 * np.pi)).pvalue > 1e-3
    assert stats.ks_2samp(phase, np.mod(np.angle(biased[:, 0]), 2 * np.pi)).pvalue < 1e-6


def test_random_phases_are_unit_and_uniform():
    z = random_phases(np.random.default_rng(5), (50000,))
    np.testing.assert_allclose(np.abs(z), 1.0, atol=1e-15)
    u = np.mod(np.angle(z), 2 * np.pi) / (2 * np.pi)
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_unit_complex_is_close_to_exp():
    x = np.linspace(0, 2 * np.pi, 10001, dtype=np.float32)
    z = unit_complex(x)
    np.testing.assert_allclose(np.abs(z), 1.0, atol=2e-16)
    assert np.max(np.abs(np.angle(z * np.exp(-1j * x.astype(np.float64))))) < 4e-7
