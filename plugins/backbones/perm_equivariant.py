"""``perm_equivariant`` backbone: per-cut invariants, a shared per-cut head, exact qubit-permutation equivariance.

Contract (exact, by construction). For a qubit permutation ``pi`` (new qubit ``k`` = old qubit
``pi[k]``, :func:`qeframe.quantum.torch_ops.permute_qubits`) with cut map ``m = cut_index_map(pi)``
(cut ``j`` of ``rho`` is cut ``m[j]`` of the permuted state ``rho'``), the logits satisfy::

    model(rho')[:, m[j]] == model(rho)[:, j]        for every cut j

up to floating-point rounding, for every weight setting — not learned, so the Siamese
permutation term of Eq. 6 (arXiv 2210.07410) is zero (to rounding) from the first step. The logits
are also invariant under local unitaries ``U_1 ⊗ … ⊗ U_n`` (the Siamese ``local_unitary`` term is
zero too).

Why. Every cut ``A|B`` gets a feature vector ``f(A|B)`` built only from quantities that are
invariant under local unitaries and under permutations of the qubits *inside* ``A`` and inside
``B``, and symmetric under exchanging ``A`` and ``B``:

* the cut size ``min(|A|, |B|)`` (one-hot over ``1 … n//2``);
* Rényi-2 entropies ``S_2(X) = -log2 tr rho_X^2`` of both reduced states ``X = A, B`` (normalised
  by ``|X|``), the entropy differences ``S_2(AB) - S_2(X)`` (negative for some ``X`` only if the
  state is entangled across the cut: separable states satisfy ``S_2(AB) >= S_2(X)``, R. Horodecki,
  P. Horodecki & M. Horodecki, Phys. Lett. A 210, 377 (1996); exact for pure states), and the moment ratios
  ``tr rho_X^3 / (tr rho_X^2)^2``, each pair sorted (min, max) so that ``A <-> B`` does not matter;
* partial-transpose moments ``p_k = tr (rho^{T_A})^k`` for ``k = 3, 4`` as ``p_3 / p_2^2 - 1`` and
  ``p_4 / p_2^3`` (``p_2 = tr rho^2``); ``p_3 < p_2^2`` proves NPT (the p3-PPT criterion, Elben et
  al., Phys. Rev. Lett. 125, 200501 (2020)). ``rho^{T_B} = (rho^{T_A})^T`` has the same spectrum, so
  these are symmetric in ``A <-> B``;
* with ``pt_spectrum`` (default): ``λ_min(rho^{T_A}) / sqrt(p_2)`` and the negativity
  ``Σ |λ_-|``; ``λ_min < 0`` is the PPT criterion (Peres, Phys. Rev. Lett. 77, 1413 (1996);
  Horodecki, Phys. Lett. A 223, 1 (1996)).

The "criterion" features (entropy differences, ``p_3 / p_2^2 - 1``, ``λ_min``) are also given
sharpened, ``asinh(s x) / asinh(s)`` with ``s = sharpness``, so that a small ReLU network can
threshold them at 0. Global features of the whole state (``S_2(AB) / n``, ``tr rho^3 / p_2^2``) are
permutation invariant. The network is a DeepSets-style per-cut head (Zaheer et al., NeurIPS 2017):
an MLP ``phi`` embeds each cut's features, the embeddings are averaged over all cuts (a symmetric
pooling), and an MLP ``psi`` maps ``[phi(f_j), mean_c phi(f_c), global]`` to cut ``j``'s logit —
the same weights for every cut. A permutation of the qubits maps the set of cuts onto itself
(``j -> m[j]``) and each cut's features onto the same values, so the outputs are permuted exactly
as the cuts are.

Computation: one gather puts the qubits of ``A`` first for every cut (``(B, n_cuts, d, d)``), then,
per cut size (a loop over at most ``n // 2`` sizes, never over states), batched partial traces,
partial transposes, one ``matmul`` per cut for the moments and (``pt_spectrum``) one batched
``eigvalsh``. The features carry no gradient (they depend on the input only) and are computed in
the input's precision with autocast off. Cost per sample at ``d = 2**n``: ``n_cuts`` products of
``d x d`` complex matrices (``~ n_cuts d^3`` multiply-adds) plus, with ``pt_spectrum``,
``n_cuts`` Hermitian eigenvalue problems of size ``d`` — for ``n = 6`` about ``8 10^6`` complex
multiply-adds plus 31 eigensolves of size 64, which dominate (measured in
``benchmarks/bench_nqubits.py``, see docs/n-qubits.md).

Input ``(B, 2, d, d)`` float (channel 0 ``Re rho``, channel 1 ``Im rho``, big-endian qubits), output
``(B, n_cuts)`` logits in :func:`qeframe.quantum.cuts.bipartitions` order.

Example::

    >>> import torch
    >>> from qeframe_plugins.backbones.perm_equivariant import PermEquivariantBackbone
    >>> model = PermEquivariantBackbone().build(4)
    >>> x = torch.zeros(3, 2, 16, 16)
    >>> x[:, 0] = torch.eye(16) / 16  # the maximally mixed state
    >>> model(x).shape
    torch.Size([3, 7])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Backbone, Params

if TYPE_CHECKING:
    import torch

INPUT_CHANNELS = 2


class PermEquivariantParams(Params):
    width: int = Field(default=64, ge=1, description="units of every hidden layer of phi and psi")
    embed_layers: int = Field(default=2, ge=1, description="layers of the per-cut embedding MLP phi")
    head_layers: int = Field(default=2, ge=1, description="hidden layers of the per-cut head MLP psi")
    pt_spectrum: bool = Field(
        default=True,
        description="add lambda_min and the negativity of every cut's partial transpose (eigvalsh)",
    )
    sharpness: float = Field(
        default=1000.0, gt=0, description="s of the sharpened criterion features asinh(s x) / asinh(s)"
    )


def feature_count(n_qubits: int, pt_spectrum: bool) -> int:
    """Length of one cut's feature vector (see the module docstring)."""
    sizes = n_qubits // 2
    base = 6 + 2  # S2/|X| (2), S2(AB)-S2(X) (2), moment ratio (2), PT ratios (2)
    sharp = 3  # sharpened: two entropy differences, p3 ratio
    spectrum = 3 if pt_spectrum else 0  # lambda_min, negativity, sharpened lambda_min
    return sizes + base + sharp + spectrum


GLOBAL_FEATURES = 2


def _cut_plan(n_qubits: int) -> tuple[Any, list[tuple[int, Any]]]:
    """``(index (n_cuts, d) long, [(size, cut indices)])``: basis maps putting side A first, cuts by size."""
    import torch

    from qeframe.quantum import torch_ops
    from qeframe.quantum.cuts import bipartitions

    cuts = bipartitions(n_qubits)
    perms = torch.tensor([c.side_a + c.side_b for c in cuts], dtype=torch.long)
    index = torch_ops.basis_permutation(perms)  # (C, d): rho_c[i, j] = rho[index[c, i], index[c, j]]
    groups = []
    for size in range(1, n_qubits // 2 + 1):
        members = [c.index for c in cuts if len(c.side_a) == size]
        groups.append((size, torch.tensor(members, dtype=torch.long)))
    return index, groups


_MODEL_CLASS: Any = None


def _model_class() -> Any:
    """The ``nn.Module`` class, defined on first use so that importing the plugin stays torch-free."""
    global _MODEL_CLASS
    if _MODEL_CLASS is not None:
        return _MODEL_CLASS

    import torch
    from torch import nn

    from qeframe.quantum.cuts import n_cuts

    def _mlp(width_in: int, width: int, layers: int, width_out: int | None) -> nn.Sequential:
        mods: list[nn.Module] = []
        w = width_in
        for _ in range(layers):
            mods += [nn.Linear(w, width), nn.ReLU()]
            w = width
        if width_out is not None:
            mods.append(nn.Linear(w, width_out))
        return nn.Sequential(*mods)

    def _hermitian_moments(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``tr M^2, tr M^3, tr M^4`` of Hermitian ``(..., k, k)`` matrices (real), one matmul."""
        m2 = m @ m
        t2 = torch.view_as_real(m).square().sum(dim=(-3, -2, -1))  # |M_ij|^2 without a complex abs
        t3 = (m2 * m.transpose(-2, -1)).sum(dim=(-2, -1)).real
        t4 = torch.view_as_real(m2).square().sum(dim=(-3, -2, -1))
        return t2, t3, t4

    class PermEquivariantModel(nn.Module):
        """Per-cut invariant features -> shared per-cut DeepSets head. See the module docstring."""

        def __init__(self, params: PermEquivariantParams, n_qubits: int) -> None:
            super().__init__()
            if n_qubits < 2:
                raise QeframeError(f"perm_equivariant: need at least 2 qubits, got {n_qubits}")
            self.n_qubits = n_qubits
            self.dim = 2**n_qubits
            self.n_cuts = n_cuts(n_qubits)
            self.pt_spectrum = params.pt_spectrum
            self.sharpness = params.sharpness
            index, groups = _cut_plan(n_qubits)
            self.register_buffer("cut_basis", index, persistent=False)
            self.sizes = [size for size, _ in groups]
            for size, members in groups:
                self.register_buffer(f"cuts_of_size_{size}", members, persistent=False)
            self.register_buffer(
                "cut_order",
                torch.argsort(torch.cat([members for _, members in groups])),
                persistent=False,
            )
            f = feature_count(n_qubits, params.pt_spectrum)
            self.phi = _mlp(f, params.width, params.embed_layers, None)
            self.psi = _mlp(2 * params.width + GLOBAL_FEATURES, params.width, params.head_layers, 1)

        # ---------------------------------------------------------------- features (no gradient)
        def _sharp(self, x: torch.Tensor) -> torch.Tensor:
            s = self.sharpness
            return torch.asinh(s * x) / math.asinh(s)

        @torch.no_grad()
        def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """``(per-cut (B, n_cuts, F), global (B, 2))`` real features of input ``x`` ``(B, 2, d, d)``."""
            if x.ndim != 4 or tuple(x.shape[1:]) != (INPUT_CHANNELS, self.dim, self.dim):
                raise QeframeError(
                    f"perm_equivariant: expected input (B, 2, {self.dim}, {self.dim}) for {self.n_qubits} "
                    f"qubits, got {tuple(x.shape)}"
                )
            with torch.autocast(device_type=x.device.type, enabled=False):
                real = torch.float64 if x.dtype == torch.float64 else torch.float32
                return self._features(torch.complex(x[:, 0].to(real), x[:, 1].to(real)))

        def _features(self, rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            n, d, b = self.n_qubits, self.dim, rho.shape[0]
            tiny = torch.finfo(rho.real.dtype).tiny
            g2, g3, _ = _hermitian_moments(rho)
            s2_ab = -torch.log2(g2.clamp_min(tiny))  # (B,)
            glob = torch.stack([s2_ab / n, g3 / g2.clamp_min(tiny) ** 2], dim=-1)
            idx = self.cut_basis
            per_size = []
            for size in self.sizes:
                members = getattr(self, f"cuts_of_size_{size}")
                sub = idx[members]  # (Cs, d)
                rows = rho[:, sub]  # (B, Cs, d, d): rows reordered
                rc = torch.gather(rows, 3, sub[None, :, None, :].expand(b, -1, d, d))
                da, db = 2**size, 2 ** (n - size)
                t = rc.reshape(b, -1, da, db, da, db)
                rho_a = t.diagonal(dim1=3, dim2=5).sum(-1)  # (B, Cs, da, da)
                rho_b = t.diagonal(dim1=2, dim2=4).sum(-1)  # (B, Cs, db, db)
                pt = t.transpose(2, 4).reshape(b, -1, d, d)  # rho^{T_A}
                sides = []
                for red, k in ((rho_a, size), (rho_b, n - size)):
                    r2, r3, _ = _hermitian_moments(red)
                    s2 = -torch.log2(r2.clamp_min(tiny))
                    sides.append((s2 / k, (s2_ab[:, None] - s2) / n, r3 / r2.clamp_min(tiny) ** 2))
                pairs = [torch.stack([a, c], dim=-1).sort(dim=-1).values for a, c in zip(*sides)]
                _, p3, p4 = _hermitian_moments(pt)
                p2 = g2[:, None]
                ratio3 = p3 / p2**2 - 1.0
                cols = [
                    torch.nn.functional.one_hot(torch.full_like(members, size - 1), n // 2)
                    .to(rho.real.dtype)
                    .expand(b, -1, -1),
                    *pairs,
                    ratio3[..., None],
                    (p4 / p2**3)[..., None],
                    self._sharp(pairs[1]),
                    self._sharp(ratio3)[..., None],
                ]
                if self.pt_spectrum:
                    ev = torch.linalg.eigvalsh(pt)
                    lam = ev[..., 0] / p2.sqrt()
                    neg = -ev.clamp(max=0.0).sum(dim=-1)
                    cols += [lam[..., None], neg[..., None], self._sharp(lam)[..., None]]
                per_size.append(torch.cat(cols, dim=-1))
            feats = torch.cat(per_size, dim=1)[:, self.cut_order]  # back to bipartitions order
            return feats, glob

        # ---------------------------------------------------------------- network
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feats, glob = self.features(x)
            w = self.phi[0].weight
            feats, glob = feats.to(w.dtype), glob.to(w.dtype)
            emb = self.phi(feats)  # (B, C, W)
            pooled = emb.mean(dim=1, keepdim=True).expand_as(emb)
            g = glob[:, None, :].expand(-1, emb.shape[1], -1)
            return self.psi(torch.cat([emb, pooled, g], dim=-1)).squeeze(-1)

    PermEquivariantModel.__module__, PermEquivariantModel.__qualname__ = __name__, "PermEquivariantModel"
    _MODEL_CLASS = PermEquivariantModel
    return _MODEL_CLASS


def __getattr__(name: str) -> Any:  # PEP 562: the model class resolves lazily (pickle, docs)
    if name == "PermEquivariantModel":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PermEquivariantBackbone(Backbone):
    """Exactly qubit-permutation-equivariant (and LU-invariant) per-cut model on reduced/PT invariants."""

    name = "perm_equivariant"
    description = (
        "exactly permutation-equivariant: LU-invariant per-cut features (Renyi-2, PT moments, "
        "lambda_min), DeepSets head shared by all cuts"
    )
    Params = PermEquivariantParams

    def build(self, n_qubits: int) -> torch.nn.Module:
        """A freshly initialised ``float32`` model (draws from torch's global RNG: use ``torch.manual_seed``)."""
        return _model_class()(self.params, n_qubits)


@hookimpl
def qeframe_register_backbones(register):
    register(PermEquivariantBackbone)
