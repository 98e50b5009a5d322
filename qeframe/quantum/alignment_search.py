"""The local-unitary search of the ``aligned_witness`` proof stage (:mod:`qeframe.quantum.filter_witness`).

Given states ``sigma`` ``(N, 2D, 2D)`` in filter normal form (qubit first) and an
:class:`AlignedLibrary` of verified block-positive witnesses carried to the FNF of their targets
(``w_fnf``), :func:`search_alignment` minimises ``tr(W_k^F U sigma U^†)`` over local unitaries
``U = exp(i h_A) ⊗ exp(i h_B)`` by Adam, batched over states, witnesses and starts (``torch``; no
per-state Python loop), optionally in float32 and on a CUDA device, with an early-exit check every
few steps. The search only *proposes*: a proof is :func:`qeframe.quantum.filter_witness.verify_aligned`
(float64, from the stored input, with a rigorous error budget), so nothing here can make a false
proof. Split from :mod:`~qeframe.quantum.filter_witness` to keep each module about one thing: that
module holds the library, the error bound, the verification and the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Defaults of the search (measured in docs/beyond-ppt.md, section 9).
DEFAULT_RESTARTS = 8
DEFAULT_STEPS = 120
DEFAULT_LR = 0.2


@dataclass(frozen=True)
class AlignedLibrary:
    """The witnesses the search aligns, for ``2 x D`` cuts (qubit first), with their FNF data.

    Attributes:
        witnesses: ``(K, 2D, 2D)`` complex128, verified block-positive (library and transposes).
        names: ``K`` names (``horodecki-b0.1``, ``horodecki-b0.1-T``, ...).
        inv_fa: ``(K, 2, 2)``, inverse FNF filter on A of each witness' target state.
        inv_fb: ``(K, D, D)``, the same on B.
        w_fnf: ``(K, 2D, 2D)``, ``W_k`` carried to the FNF of its target and scaled to unit
            Frobenius norm (the search objective only; never used in a proof).
    """

    witnesses: np.ndarray
    names: tuple[str, ...]
    inv_fa: np.ndarray
    inv_fb: np.ndarray
    w_fnf: np.ndarray

    @property
    def dims(self) -> tuple[int, int]:
        return 2, self.witnesses.shape[-1] // 2


# --------------------------------------------------------------------------------------------------
# the search


def local_unitaries(h: Any, db: int) -> tuple[Any, Any]:
    """``(exp(i h_A), exp(i h_B))`` of generator parameters ``h`` ``(..., 8 + 2 db^2)`` (torch):
    the first 8 numbers are the real and imaginary parts of a ``2 x 2`` matrix ``X`` (``h_A =
    (X + X^†)/2``), the rest those of a ``db x db`` one. ``h = 0`` is the identity."""
    import torch

    def unitary(x: Any, p: int) -> Any:
        x = x.reshape(*x.shape[:-1], p, p, 2)
        m = torch.complex(x[..., 0], x[..., 1])
        return torch.linalg.matrix_exp(0.5j * (m + m.conj().transpose(-1, -2)))

    return unitary(h[..., :8], 2), unitary(h[..., 8:], db)


def alignment_values(h: Any, sigma: Any, w_fnf: Any) -> tuple[Any, Any, Any]:
    """The search objective ``tr(W_k^F U sigma U^†)`` (torch, differentiable in ``h``).

    ``h`` ``(N, R, K, 8 + 2 D^2)`` generators (:func:`local_unitaries`), ``sigma`` ``(N, 1, 1, 2D, 2D)``
    FNF states (trace 1), ``w_fnf`` ``(K, 2D, 2D)``. Returns ``(values (N, R, K), u_a, u_b)``.
    """
    import torch

    d = sigma.shape[-1]
    ua, ub = local_unitaries(h, d // 2)
    u = torch.einsum("...ij,...kl->...ikjl", ua, ub).reshape(*h.shape[:-1], d, d)
    y = u @ sigma @ u.conj().transpose(-1, -2)
    return torch.einsum("kij,nrkji->nrk", w_fnf, y).real, ua, ub


#: Adam's moment decay rates and epsilon (the defaults of ``torch.optim.Adam``; the search's update
#: is that optimiser's, written out so that states and candidates can leave the batch mid-search).
_ADAM_BETAS, _ADAM_EPS = (0.9, 0.999), 1e-8
#: States per batch of the search on CPU and on a CUDA device (``chunk=None``).
CPU_CHUNK, CUDA_CHUNK = 128, 8192

#: ``verify(rows, u_a, u_b, witness) -> proved``: the early-exit check of :func:`search_alignment`
#: (``rows`` ``(M,)`` indices into ``sigma``, ``u_a`` ``(M, 2, 2)``, ``u_b`` ``(M, D, D)`` complex128,
#: ``witness`` ``(M,)`` int) returning an ``(M,)`` bool mask of proved states.
Verifier = Any


def _candidate_values(h: Any, sigma: Any, w: Any) -> tuple[Any, Any, Any]:
    """``tr(W_c U_c sigma U_c^†)`` for flattened candidates: ``h`` ``(M, C, P)``, ``sigma``
    ``(M, 1, 2D, 2D)``, ``w`` ``(M, C, 2D, 2D)`` (each candidate's witness). Returns
    ``(values (M, C), u_a (M, C, 2, 2), u_b (M, C, D, D))``."""
    import torch

    d = sigma.shape[-1]
    ua, ub = local_unitaries(h, d // 2)
    u = torch.einsum("...ij,...kl->...ikjl", ua, ub).reshape(*h.shape[:-1], d, d)
    y = u @ sigma @ u.conj().transpose(-1, -2)
    return torch.einsum("ncij,ncji->nc", w, y).real, ua, ub


def search_alignment(
    sigma: np.ndarray,
    library: AlignedLibrary,
    *,
    restarts: int = DEFAULT_RESTARTS,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    starts: np.ndarray | None = None,
    chunk: int | None = None,
    verify: Verifier | None = None,
    check_every: int | None = None,
    keep: int | None = None,
    device: Any = None,
    dtype: str = "float64",
    identity: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local unitaries aligning every library witness to FNF states ``sigma`` ``(N, 2D, 2D)``.

    Minimises ``tr(W_k^F U sigma U^†)`` over ``U = exp(i h_A) ⊗ exp(i h_B)`` by Adam (``lr``,
    ``steps``; the update of ``torch.optim.Adam`` with its default betas), batched over states,
    witnesses and starts (in chunks of ``chunk`` states: :data:`CPU_CHUNK`, or :data:`CUDA_CHUNK` on
    a CUDA ``device``). Starts: ``U = 1``, the ``starts`` given (``(N, S, K, 2*2*2 + D*D*2)`` float64
    generator parameters, as a proposer returns them), then random ones (``torch`` generator on the
    CPU seeded with ``seed``, so the same on every device) up to ``restarts`` in all; every start is
    paired with every witness, ``C = restarts · K`` candidates per state. ``identity=False`` leaves
    the ``U = 1`` start out (a later round of
    :func:`~qeframe.quantum.filter_witness.aligned_witness_proofs` has tried it).

    Staged search (all optional; without them every candidate runs ``steps`` steps):

    - ``verify`` with ``check_every``: every ``check_every`` steps the best candidate of each state
      still searched is passed to ``verify`` (:data:`Verifier`); proved states leave the batch
      (early exit) with that candidate. Candidates do not interact (the objective is a sum), so the
      states that stay follow exactly the trajectories they would follow without the checks.
    - ``keep``: at the first check, only the ``keep`` candidates of lowest objective per state
      continue (pruning; the others are dropped).

    ``device``: a ``torch`` device for the whole chunk (default CPU). ``dtype``: ``"float64"`` or
    ``"float32"`` for the search (the proof is the float64
    :func:`~qeframe.quantum.filter_witness.verify_aligned` from the stored input, so the search's
    precision only affects which candidates are found).

    Returns ``(u_a (N, 2, 2), u_b (N, D, D), witness (N,), value (N,))`` (complex128 / int /
    float64): per state the candidate that was proved, else the best one at the end, and its
    objective (the proof is :func:`~qeframe.quantum.filter_witness.verify_aligned`, not this value).
    """
    import torch

    sigma = np.asarray(sigma, np.complex128)
    n, d = sigma.shape[0], sigma.shape[-1]
    db = d // 2
    n_k = library.witnesses.shape[0]
    n_par = 8 + 2 * db * db
    dev = torch.device("cpu" if device is None else device)
    real = {"float64": torch.float64, "float32": torch.float32}[dtype]
    cplx = torch.complex128 if real == torch.float64 else torch.complex64
    if chunk is None:
        chunk = CUDA_CHUNK if dev.type == "cuda" else CPU_CHUNK
    gen = torch.Generator().manual_seed(int(seed))
    wf = torch.from_numpy(np.array(library.w_fnf)).to(dev, cplx)
    out_a = np.zeros((n, 2, 2), complex)
    out_b = np.zeros((n, db, db), complex)
    out_k = np.zeros(n, int)
    out_v = np.full(n, np.inf)
    b1, b2 = _ADAM_BETAS

    def record(rows: Any, value: Any, ua: Any, ub: Any, kidx: Any) -> Any:
        """Write the best candidate of each state in ``rows`` (local indices); return its index."""
        best = value.argmin(dim=1)
        i = torch.arange(len(best), device=value.device)
        glob = rows.cpu().numpy()
        out_a[glob] = ua[i, best].detach().cpu().numpy()
        out_b[glob] = ub[i, best].detach().cpu().numpy()
        out_k[glob] = kidx[i, best].cpu().numpy()
        out_v[glob] = value[i, best].detach().cpu().double().numpy()
        return glob

    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        m = hi - lo
        parts = [torch.zeros(m, 1 if identity else 0, n_k, n_par, dtype=torch.float64)]
        if starts is not None:
            parts.append(torch.from_numpy(np.asarray(starts[lo:hi], np.float64)))
        used = sum(p.shape[1] for p in parts)
        if restarts > used:
            parts.append(torch.randn(m, restarts - used, n_k, n_par, dtype=torch.float64, generator=gen))
        h = torch.cat(parts, dim=1).reshape(m, -1, n_par).to(dev, real)
        kidx = (torch.arange(h.shape[1], device=dev) % n_k).expand(m, -1)
        w = wf[kidx]
        s = torch.from_numpy(sigma[lo:hi]).to(dev, cplx)[:, None]
        rows = torch.arange(lo, hi, device=dev)
        m1, m2 = torch.zeros_like(h), torch.zeros_like(h)
        pruned = False
        for step in range(steps):
            h.requires_grad_(True)
            value, ua, ub = _candidate_values(h, s, w)
            if verify is not None and check_every and step > 0 and step % check_every == 0:
                glob = record(rows, value, ua, ub, kidx)
                done = torch.from_numpy(
                    np.asarray(verify(glob, out_a[glob], out_b[glob], out_k[glob]), bool)
                ).to(dev)
                stay = ~done
                if keep is not None and not pruned and keep < h.shape[1]:
                    top = value.detach().topk(keep, dim=1, largest=False).indices
                    h, m1, m2 = (x.detach().gather(1, _expand(top, x)) for x in (h, m1, m2))
                    kidx = kidx.gather(1, top)
                    w = wf[kidx]
                    pruned = True
                if done.any():
                    h, m1, m2 = h.detach()[stay], m1[stay], m2[stay]
                    kidx, w, s, rows = kidx[stay], w[stay], s[stay], rows[stay]
                if len(rows) == 0:
                    break
                h = h.detach().requires_grad_(True)  # the batch changed: value of the new batch
                value, ua, ub = _candidate_values(h, s, w)
            (grad,) = torch.autograd.grad(value.sum(), h)
            with torch.no_grad():
                h = h.detach()
                m1.lerp_(grad, 1 - b1)
                m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                denom = (m2.sqrt() / ((1 - b2 ** (step + 1)) ** 0.5)).add_(_ADAM_EPS)
                h.addcdiv_(m1, denom, value=-lr / (1 - b1 ** (step + 1)))
        if len(rows):
            with torch.no_grad():
                value, ua, ub = _candidate_values(h.detach(), s, w)
            record(rows, value, ua, ub, kidx)
    return out_a, out_b, out_k, out_v


def _expand(index: Any, x: Any) -> Any:
    """``index`` ``(M, C')`` broadcast to gather along dim 1 of ``x`` ``(M, C, ...)``."""
    return index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
