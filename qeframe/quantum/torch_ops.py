"""Batched n-qubit numerics on torch tensors, on any device, for training and symmetry views.

The torch counterparts of :mod:`qeframe.quantum.ops`, :mod:`qeframe.quantum.random` and
:mod:`qeframe.quantum.cuts`, with the same conventions:

* a batch of density matrices is ``(B, d, d)`` ``complex64`` or ``complex128`` with ``d = 2**n``,
  big-endian: qubit 0 (named qubit 1) is the leftmost Kronecker factor, so the basis index is
  ``i = sum_k i_k 2**(n-1-k)``;
* a qubit permutation ``perm`` maps old to new qubits as in :func:`qeframe.quantum.ops.permute_qubits`:
  new qubit ``k`` is old qubit ``perm[k]``;
* cuts are in :func:`qeframe.quantum.cuts.bipartitions` order;
* model input is real ``(B, 2, d, d)``: channel 0 the real part, channel 1 the imaginary part.

Every function works on the whole batch at once (reshape/permute, ``einsum``, ``gather``); the only
Python loops run over qubits or cuts. Random functions draw only from an explicit
``torch.Generator``; numbers are drawn on the generator's device and then moved to ``device``, so a
CPU generator with a fixed seed gives the same samples whatever device the result lives on.

Example::

    >>> import torch
    >>> from qeframe.quantum import torch_ops as T
    >>> g = torch.Generator().manual_seed(0)
    >>> rho = torch.eye(8, dtype=torch.complex128).expand(4, 8, 8) / 8
    >>> perms = T.random_permutations(4, 3, g)
    >>> T.permute_qubits(rho, perms).shape, T.cut_index_maps(perms).shape
    (torch.Size([4, 8, 8]), torch.Size([4, 3]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from itertools import permutations

import numpy as np
import torch

from qeframe.quantum.cuts import bipartitions, cut_index_map
from qeframe.quantum.cuts import cut_index_maps as _np_cut_index_maps
from qeframe.quantum.ops import num_qubits

#: Largest ``n`` for which :func:`permutation_table` tabulates all ``n!`` permutations
#: (8! = 40320 rows); :func:`cut_index_maps` falls back to the numpy routine above it.
MAX_TABLE_QUBITS = 8

_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


# --------------------------------------------------------------------------------------------------
# helpers


def _as_batch(rho: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(d, d)`` -> ``(1, d, d)`` (and a flag to undo it); checks ``(B, d, d)`` otherwise."""
    if rho.ndim == 2:
        rho = rho.unsqueeze(0)
        single = True
    else:
        single = False
    if rho.ndim != 3 or rho.shape[-1] != rho.shape[-2]:
        raise ValueError(f"expected (B, d, d) or (d, d), got shape {tuple(rho.shape)}")
    return rho, single


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in _REAL_OF:
        raise ValueError(f"expected complex64 or complex128, got {dtype}")
    return _REAL_OF[dtype]


def _randn(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Standard normals drawn on the generator's device (CPU without one), then moved to ``device``."""
    draw_device = generator.device if generator is not None else torch.device(device or "cpu")
    z = torch.randn(shape, generator=generator, device=draw_device, dtype=dtype)
    return z.to(device) if device is not None else z


def _rand(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Uniform ``[0, 1)`` numbers, drawn like :func:`_randn`."""
    draw_device = generator.device if generator is not None else torch.device(device or "cpu")
    u = torch.rand(shape, generator=generator, device=draw_device, dtype=dtype)
    return u.to(device) if device is not None else u


# --------------------------------------------------------------------------------------------------
# model input


def to_model_input(rho: torch.Tensor | np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Complex ``(B, d, d)`` -> real ``(B, 2, d, d)``: channel 0 ``Re rho``, channel 1 ``Im rho``.

    ``dtype`` defaults to the real dtype matching the input (``complex64`` -> ``float32``,
    ``complex128`` -> ``float64``). numpy arrays are converted with :func:`torch.as_tensor`.
    A real input is taken as a matrix with zero imaginary part.
    """
    rho = torch.as_tensor(rho)
    if not rho.is_complex():
        rho = rho.to(_COMPLEX_OF.get(rho.dtype, torch.complex128))
    x = torch.stack((rho.real, rho.imag), dim=-3)
    return x if dtype is None else x.to(dtype)


def from_model_input(x: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2, d, d)`` -> complex ``(B, d, d)`` ``Re + i Im`` (``float32`` -> ``complex64``)."""
    if x.ndim < 3 or x.shape[-3] != 2:
        raise ValueError(f"expected (B, 2, d, d) model input, got shape {tuple(x.shape)}")
    if x.dtype not in _COMPLEX_OF:
        x = x.to(torch.float32)
    return torch.complex(x[..., 0, :, :], x[..., 1, :, :])


# --------------------------------------------------------------------------------------------------
# partial transpose, qubit permutations


def partial_transpose(rho: torch.Tensor, qubits: Sequence[int]) -> torch.Tensor:
    """Partial transpose on the 0-based ``qubits``: ``(B, d, d)`` -> ``(B, d, d)`` (or ``(d, d)``).

    ``<i_q j_q| rho^{T_q} |k_q l_q> = <k_q j_q| rho |i_q l_q>`` for each ``q`` in ``qubits``:
    the row and column index of every listed qubit are swapped. Same as
    :func:`qeframe.quantum.ops.partial_transpose`.
    """
    rho, single = _as_batch(rho)
    b, d = rho.shape[0], rho.shape[-1]
    n = num_qubits(d)
    axes = list(range(1 + 2 * n))
    for q in qubits:
        if not 0 <= q < n:
            raise ValueError(f"qubit {q} out of range for {n} qubits")
        axes[1 + q], axes[1 + n + q] = axes[1 + n + q], axes[1 + q]
    out = rho.reshape((b,) + (2,) * (2 * n)).permute(axes).reshape(b, d, d)
    return out[0] if single else out


def partial_transposes(rho: torch.Tensor) -> torch.Tensor:
    """``rho^{T_A}`` for every cut (side A named first): ``(B, d, d)`` -> ``(B, n_cuts, d, d)``."""
    rho, _ = _as_batch(rho)
    n = num_qubits(rho.shape[-1])
    return torch.stack([partial_transpose(rho, cut.side_a) for cut in bipartitions(n)], dim=1)


def negativities(rho: torch.Tensor) -> torch.Tensor:
    """Negativity per cut, ``sum |negative eigenvalues of rho^{T_A}|``: ``(B, d, d)`` -> ``(B, n_cuts)`` real.

    The torch counterpart of :func:`qeframe.quantum.ppt.negativities` (``eigvalsh`` of every cut's
    partial transpose, batched over samples and cuts).
    """
    ev = torch.linalg.eigvalsh(partial_transposes(rho))
    return -torch.clamp(ev, max=0.0).sum(dim=-1)


def basis_permutation(perms: torch.Tensor) -> torch.Tensor:
    """Basis-index maps of qubit permutations: ``(B, n)`` long -> ``(B, 2**n)`` long.

    With new qubit ``k`` = old qubit ``perms[b, k]``, the new basis state ``|i_0 ... i_{n-1}>``
    is the old basis state with bit ``i_k`` on qubit ``perms[b, k]``, i.e. old index
    ``P[b, i] = sum_k i_k 2**(n-1-perms[b, k])``. Then ``rho_new[b, i, j] = rho[b, P[b, i], P[b, j]]``.
    Same as :func:`qeframe.quantum.ops.basis_permutation` (without its trailing axis).
    """
    perms = torch.as_tensor(perms, dtype=torch.long)
    n = perms.shape[-1]
    d = 2**n
    shifts = torch.arange(n - 1, -1, -1, device=perms.device)
    bits = (torch.arange(d, device=perms.device)[:, None] >> shifts[None, :]) & 1  # (d, n)
    weights = torch.ones_like(perms) << (n - 1 - perms)  # (B, n)
    return (bits[None, :, :] * weights[:, None, :]).sum(dim=-1)  # (B, d); no integer bmm on CUDA


def _check_permutations(perms: torch.Tensor, n: int) -> None:
    if perms.ndim != 2 or perms.shape[1] != n:
        raise ValueError(f"expected permutations of shape (B, {n}), got {tuple(perms.shape)}")
    expected = torch.arange(n, device=perms.device)
    if not bool((torch.sort(perms, dim=1).values == expected).all()):
        raise ValueError(f"every row of perms must be a permutation of 0..{n - 1}")


def permute_qubits(
    rho: torch.Tensor, perms: torch.Tensor | Sequence[int], check: bool = True
) -> torch.Tensor:
    """Reorder qubits with one permutation per sample: new qubit ``k`` = old qubit ``perms[b, k]``.

    ``rho`` ``(B, d, d)``; ``perms`` ``(B, n)`` long, or ``(n,)`` for the same permutation on
    every sample. Implemented as two ``gather`` calls with :func:`basis_permutation` index maps,
    so different samples may use different permutations. For a product state ``a⊗b⊗c`` and
    ``perm = (2, 0, 1)`` the result is ``c⊗a⊗b``. ``check`` validates ``perms`` (a device sync).
    """
    rho, single = _as_batch(rho)
    b, d = rho.shape[0], rho.shape[-1]
    n = num_qubits(d)
    perms = torch.as_tensor(perms, dtype=torch.long, device=rho.device)
    if perms.ndim == 1:
        perms = perms.unsqueeze(0).expand(b, n)
    if check:
        _check_permutations(perms, n)
    if perms.shape[0] != b:
        raise ValueError(f"perms has {perms.shape[0]} rows for a batch of {b}")
    index = basis_permutation(perms)  # (B, d)
    rows = torch.gather(rho, 1, index[:, :, None].expand(b, d, d))
    out = torch.gather(rows, 2, index[:, None, :].expand(b, d, d))
    return out[0] if single else out


@cache
def _permutation_table_cpu(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    perms = np.array(list(permutations(range(n))), dtype=np.int64).reshape(-1, n)
    maps = np.stack([cut_index_map(p) for p in perms])
    return torch.from_numpy(perms), torch.from_numpy(maps)


@cache
def _permutation_table(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    perms, maps = _permutation_table_cpu(n)
    return perms.to(device), maps.to(device)


def permutation_table(n: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``n!`` permutations of ``n`` qubits and their cut maps, cached per ``(n, device)``.

    Returns ``(perms, maps)``: ``perms`` ``(n!, n)`` long in lexicographic order (row ``r`` is
    the permutation of Lehmer rank ``r``; row 0 is the identity) and ``maps`` ``(n!, n_cuts)``
    long with ``maps[r] == qeframe.quantum.cuts.cut_index_map(perms[r])``.
    Only for ``2 <= n <=`` :data:`MAX_TABLE_QUBITS`.
    """
    if not 2 <= n <= MAX_TABLE_QUBITS:
        raise ValueError(f"permutation tables cover 2..{MAX_TABLE_QUBITS} qubits, got {n}")
    dev = torch.device(device or "cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return _permutation_table(n, dev)


def permutation_ranks(perms: torch.Tensor) -> torch.Tensor:
    """Lexicographic (Lehmer) rank of each permutation: ``(B, n)`` -> ``(B,)`` long.

    ``rank = sum_k c_k (n-1-k)!`` with ``c_k = #{j > k : perms[j] < perms[k]}``; it indexes the
    rows of :func:`permutation_table`.
    """
    perms = torch.as_tensor(perms, dtype=torch.long)
    n = perms.shape[-1]
    later = torch.ones(n, n, dtype=torch.bool, device=perms.device).triu(diagonal=1)  # [k, j]: j > k
    smaller = perms[:, None, :] < perms[:, :, None]  # [b, k, j]: perms[j] < perms[k]
    counts = (smaller & later).sum(dim=-1)
    fact = torch.tensor([math.factorial(n - 1 - k) for k in range(n)], dtype=torch.long, device=perms.device)
    return (counts * fact).sum(dim=-1)


def cut_index_maps(perms: torch.Tensor) -> torch.Tensor:
    """Cut re-indexing of each permutation: ``(B, n)`` long -> ``(B, n_cuts)`` long, on ``perms``' device.

    Cut ``j`` of the old state is cut ``maps[b, j]`` of the permuted state (``k = pi(j)``), so
    per-cut quantities satisfy ``q_new[b, maps[b, j]] == q_old[b, j]``. A table lookup by
    :func:`permutation_ranks` in :func:`permutation_table`; for ``n >`` :data:`MAX_TABLE_QUBITS`
    it falls back to :func:`qeframe.quantum.cuts.cut_index_maps` (numpy, on the CPU).
    """
    perms = torch.as_tensor(perms, dtype=torch.long)
    n = perms.shape[-1]
    if n > MAX_TABLE_QUBITS:
        maps = _np_cut_index_maps(perms.cpu().numpy())
        return torch.from_numpy(maps).to(perms.device)
    _, maps = permutation_table(n, perms.device)
    return maps[permutation_ranks(perms)]


def random_permutations(
    size: int, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """``size`` uniformly random permutations of ``0..n-1``: ``(size, n)`` long (argsort of uniforms)."""
    u = _rand((size, n), generator, None, torch.float64)
    perms = torch.argsort(u, dim=1)
    return perms.to(device) if device is not None else perms


# --------------------------------------------------------------------------------------------------
# random unitaries, local unitaries


def haar_unitary(
    dim: int,
    size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.complex128,
) -> torch.Tensor:
    """``size`` Haar-random unitaries ``(size, dim, dim)`` (Mezzadri's QR recipe).

    ``Z`` has i.i.d. standard complex Gaussian entries; with ``Z = QR``, ``U = Q diag(r_ii/|r_ii|)``
    moves the phases of ``R``'s diagonal into ``Q``, which makes ``U`` exactly Haar distributed
    (plain ``Q`` is not, since QR fixes the phase convention of ``R``).
    """
    real = _real_dtype(dtype)
    z = torch.view_as_complex(_randn((size, dim, dim, 2), generator, device, real)) / math.sqrt(2.0)
    q, r = torch.linalg.qr(z)
    diag = torch.diagonal(r, dim1=-2, dim2=-1)
    mag = diag.abs()
    phases = torch.where(
        mag > 0, diag / torch.where(mag > 0, mag, torch.ones_like(mag)), torch.ones_like(diag)
    )
    return q * phases[:, None, :]


def random_su2(
    size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.complex128,
) -> torch.Tensor:
    """``size`` Haar-random SU(2) matrices ``(size, 2, 2)``.

    SU(2) is the unit 3-sphere of quaternions: with ``x`` uniform on S^3 (a normalised 4-d Gaussian),
    ``a = x0 + i x1``, ``b = x2 + i x3``, ``U = [[a, -b*], [b, a*]]`` is Haar distributed and has
    ``det U = 1``. Conjugation by a Haar U(2) matrix acts on states exactly as conjugation by a
    Haar SU(2) matrix (the global phase cancels), so this is the cheap choice for local unitaries.
    """
    real = _real_dtype(dtype)
    x = _randn((size, 4), generator, device, real)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    a = torch.complex(x[:, 0], x[:, 1])
    b = torch.complex(x[:, 2], x[:, 3])
    return torch.stack((torch.stack((a, -b.conj()), -1), torch.stack((b, a.conj()), -1)), -2)


def apply_local_unitaries(
    rho: torch.Tensor, us: torch.Tensor, qubits: Sequence[int] | None = None
) -> torch.Tensor:
    """``(U_1 ⊗ ... ⊗ U_n) rho (U_1 ⊗ ... ⊗ U_n)^†`` per sample, one qubit at a time.

    ``rho`` ``(B, d, d)``; ``us`` ``(B, n, 2, 2)`` with ``us[:, k]`` acting on qubit ``k`` — or,
    when ``qubits`` (0-based) is given, ``(B, len(qubits), 2, 2)`` with ``us[:, k]`` acting on
    ``qubits[k]`` and the identity elsewhere. For qubit ``q`` the row index is viewed as
    ``(2**q, 2, 2**(n-q-1))`` and contracted with ``U`` (a broadcast batched ``matmul``), the
    column index likewise with ``U*``; the ``d x d`` Kronecker product is never formed
    (cost ``O(B n d^2)``).
    Same as :func:`qeframe.quantum.ops.apply_local_unitaries`.
    """
    rho, single = _as_batch(rho)
    b, d = rho.shape[0], rho.shape[-1]
    n = num_qubits(d)
    targets = list(range(n)) if qubits is None else [int(q) for q in qubits]
    if us.shape[0] != b or us.shape[1] != len(targets) or tuple(us.shape[2:]) != (2, 2):
        raise ValueError(f"expected unitaries of shape ({b}, {len(targets)}, 2, 2), got {tuple(us.shape)}")
    us = us.to(dtype=rho.dtype, device=rho.device)
    out = rho
    for k, q in enumerate(targets):
        if not 0 <= q < n:
            raise ValueError(f"qubit {q} out of range for {n} qubits")
        u = us[:, k, None]  # (B, 1, 2, 2), broadcast over the other index blocks
        left, right = 2**q, 2 ** (n - q - 1)
        # rows: (U rho)[l, i, r; c] = sum_j U[i, j] rho[l, j, r; c]
        out = torch.matmul(u, out.reshape(b, left, 2, right * d))
        # columns: (rho U^dag)[c; l, i, r] = sum_j conj(U[i, j]) rho[c; l, j, r]
        out = torch.matmul(u.conj(), out.reshape(b, d * left, 2, right)).reshape(b, d, d)
    return out[0] if single else out


def random_local_unitaries(
    size: int,
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.complex128,
) -> torch.Tensor:
    """Independent Haar SU(2) matrices for every qubit of every sample: ``(size, n, 2, 2)``."""
    return random_su2(size * n, generator, device, dtype).reshape(size, n, 2, 2)


__all__ = [
    "MAX_TABLE_QUBITS",
    "apply_local_unitaries",
    "basis_permutation",
    "cut_index_maps",
    "from_model_input",
    "haar_unitary",
    "negativities",
    "partial_transpose",
    "partial_transposes",
    "permutation_ranks",
    "permutation_table",
    "permute_qubits",
    "random_local_unitaries",
    "random_permutations",
    "random_su2",
    "to_model_input",
]
