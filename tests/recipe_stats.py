"""Summary statistics of a dataset entry's rows, and their comparison with a stored reference.

Used by ``benchmarks/recipe_statistics.py`` (which writes ``tests/fixtures/recipe_statistics.json``
from one version of the generators) and by ``tests/data/test_recipe_statistics.py`` (which draws
from the current generators and checks that every changed recipe's statistics agree with the
stored ones within sampling error).

Rows are drawn exactly as a build draws them: :func:`~qeframe.data.build.compute_block` of the
dataset's generation context (family, ``local_randomize``, labeler and its dropping), blocks
``first_block, first_block + 1, ...`` of the entry until ``n`` states are kept. Statistics of one
entry (``d = 2**n``, cuts in :func:`~qeframe.quantum.cuts.bipartitions` order):

* ``fractions`` — binomial proportions: per cut NPT (``lambda_min(rho^{T_A}) < -PPT_TOL``), per cut
  and label value (1/0/-1), per cut and provenance code, and ``pure`` (``tr rho^2 > 1 - 1e-9``);
* ``means`` — mean and standard deviation of the purity, of each sorted eigenvalue of ``rho`` and of
  ``lambda_min(rho^{T_A})`` per cut;
* ``quantiles`` — the 5 %, 10 %, ..., 95 % quantiles ``q_k`` of the purity, ``lambda_max(rho)``,
  ``lambda_min(rho)`` and ``lambda_min(rho^{T_A})`` per cut, with the empirical CDF on both sides of
  each, ``P(X < q_k)`` and ``P(X <= q_k)`` (values rounded to :data:`RESOLUTION` first, so that
  point masses such as the zero eigenvalues of low-rank states or the purity 1 of pure states are
  atoms, not rounding noise).

Comparison (:func:`compare`), each statistic a z-score with both samples' sampling error:

* a proportion: ``(p_new - p_ref) / sqrt(p (1 - p) (1/n_ref + 1/n_new))`` with the pooled ``p``;
* a mean: ``(m_new - m_ref) / sqrt(s_ref^2 / n_ref + s_new^2 / n_new)`` (CLT);
* a reference quantile ``q_k``: the new sample's ``P(X < q_k)`` and ``P(X <= q_k)`` against the
  reference's, each a proportion as above (the two-sample Kolmogorov-Smirnov comparison read at
  19 points, each with its binomial error, and exact at atoms).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qeframe.data.build import block_rows, compute_block, planned_block_count
from qeframe.quantum.ops import PURE_TOL, purity
from qeframe.quantum.ppt import PPT_TOL, partial_transposes

LEVELS = np.round(np.arange(0.05, 0.951, 0.05), 2)
#: Values are rounded to this absolute resolution before quantiles and CDFs are taken.
RESOLUTION = 1e-9
#: Constant statistics (a proportion of 0 or 1 in both samples, a zero spread) are compared exactly.
_EXACT = 1e-12


def draw_rows(ctx, entry: int, n: int, *, count: int, block_size: int = 2048, first_block: int = 0):
    """At least ``n`` kept rows of ``entry`` (``count`` its wanted states in the spec): arrays of
    :func:`compute_block`, concatenated, truncated to ``n``."""
    planned = planned_block_count(count, block_size)
    parts: list[dict[str, np.ndarray]] = []
    kept, b = 0, first_block
    while kept < n:
        size = block_rows(count, b, block_size) if b < planned else block_size
        block = compute_block(ctx, entry, b, size)
        parts.append(block.arrays)
        kept += len(block)
        b += 1
        if b - first_block > 10_000:
            raise RuntimeError(f"entry {entry}: only {kept} rows kept after {b - first_block} blocks")
    return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}


def summarize(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The statistics of one entry's rows (see the module docstring)."""
    rho = arrays["rho"]
    n = rho.shape[0]
    pts = partial_transposes(rho)  # (N, n_cuts, d, d)
    pt_min = np.linalg.eigvalsh(pts)[..., 0]  # (N, n_cuts)
    eig = np.linalg.eigvalsh(rho)  # ascending (N, d)
    pur = purity(rho)
    fractions: dict[str, float] = {"pure": float(np.mean(pur > 1.0 - PURE_TOL))}
    means: dict[str, list[float]] = {"purity": [float(pur.mean()), float(pur.std())]}
    quantiles = {key: _quantiles(v) for key, v in quantile_values(arrays).items()}
    for k in range(eig.shape[1]):
        means[f"eig_{k}"] = [float(eig[:, k].mean()), float(eig[:, k].std())]
    for c in range(pt_min.shape[1]):
        fractions[f"npt_{c}"] = float(np.mean(pt_min[:, c] < -PPT_TOL))
        means[f"pt_min_{c}"] = [float(pt_min[:, c].mean()), float(pt_min[:, c].std())]
        for value in (-1, 0, 1):
            fractions[f"label_{c}_{value}"] = float(np.mean(arrays["labels"][:, c] == value))
        for code in np.unique(arrays["provenance"][:, c]):
            fractions[f"provenance_{c}_{int(code)}"] = float(np.mean(arrays["provenance"][:, c] == code))
    return {"n": n, "fractions": fractions, "means": means, "quantiles": quantiles}


def quantile_values(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-state values whose quantiles :func:`summarize` stores, by the same names."""
    rho = arrays["rho"]
    pt_min = np.linalg.eigvalsh(partial_transposes(rho))[..., 0]
    eig = np.linalg.eigvalsh(rho)
    out = {"purity": purity(rho), "eig_max": eig[:, -1], "eig_min": eig[:, 0]}
    out.update({f"pt_min_{c}": pt_min[:, c] for c in range(pt_min.shape[1])})
    return {k: np.round(v / RESOLUTION) * RESOLUTION for k, v in out.items()}


def _quantiles(values: np.ndarray) -> dict[str, list[float]]:
    q = np.quantile(values, LEVELS)
    return {
        "q": q.tolist(),
        "below": [float(np.mean(values < x)) for x in q],
        "at_or_below": [float(np.mean(values <= x)) for x in q],
    }


def compare(ref: dict[str, Any], new_arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """z-scores of every statistic of ``new_arrays`` against the reference summary ``ref``."""
    new = summarize(new_arrays)
    n_ref, n_new = ref["n"], new["n"]
    z: dict[str, float] = {}

    def proportion(p_ref: float, p_new: float) -> float:
        pooled = (p_ref * n_ref + p_new * n_new) / (n_ref + n_new)
        return _z(p_new - p_ref, pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_new))

    for key in sorted(set(ref["fractions"]) | set(new["fractions"])):
        z[f"fraction {key}"] = proportion(ref["fractions"].get(key, 0.0), new["fractions"].get(key, 0.0))
    for key, (m_ref, s_ref) in ref["means"].items():
        m_new, s_new = new["means"][key]
        z[f"mean {key}"] = _z(m_new - m_ref, s_ref**2 / n_ref + s_new**2 / n_new)
    values = quantile_values(new_arrays)
    for key, stored in ref["quantiles"].items():
        v = values[key]
        for level, q, lt, le in zip(LEVELS, stored["q"], stored["below"], stored["at_or_below"], strict=True):
            z[f"P({key} < q{level:.2f})"] = proportion(lt, float(np.mean(v < q)))
            z[f"P({key} <= q{level:.2f})"] = proportion(le, float(np.mean(v <= q)))
    return z


def _z(diff: float, var: float) -> float:
    if var <= _EXACT:
        return 0.0 if abs(diff) <= 1e-9 else float("inf")
    return float(diff / np.sqrt(var))
