"""``permutation`` symmetry: a uniformly random qubit permutation per sample.

``rho -> P_pi rho P_pi^†`` where new qubit ``k`` is old qubit ``pi[k]``
(:func:`qeframe.quantum.torch_ops.permute_qubits`). Relabelling qubits moves entanglement from
cut to cut without changing it: cut ``j`` of ``rho`` becomes cut ``k = pi(j)`` of the permuted
state, given by :func:`qeframe.quantum.torch_ops.cut_index_maps`. This is the paper's permuted
view of the triple Siamese network (Eq. 6, third term, ``k = pi(j)``).

A permutation is drawn as a uniform Lehmer rank in ``[0, n!)`` (``[1, n!)`` with
``exclude_identity``) and looked up, with its cut map, in the cached table of all ``n!``
permutations on the input's device. The authors' code draws one non-identity permutation per
batch; ``per_sample = false, exclude_identity = true`` reproduces that.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Params, Symmetry

if TYPE_CHECKING:
    import torch


class PermutationParams(Params):
    exclude_identity: bool = Field(default=False, description="never draw the identity permutation")
    per_sample: bool = Field(
        default=True, description="an independent permutation per sample (false: one for the whole batch)"
    )


class PermutationSymmetry(Symmetry):
    """Uniformly random qubit permutation per sample; cut map ``k = pi(j)``."""

    name = "permutation"
    description = "uniformly random qubit permutation per sample (cuts re-indexed by k = pi(j))"
    Params = PermutationParams

    def _ranks(
        self, batch: int, n_qubits: int, generator: torch.Generator | None, device: torch.device | None
    ) -> torch.Tensor:
        """Uniform Lehmer ranks ``(batch,)`` on ``device`` (one repeated rank unless ``per_sample``)."""
        import torch

        from qeframe.quantum import torch_ops

        if n_qubits > torch_ops.MAX_TABLE_QUBITS:
            raise QeframeError(
                f"permutation: at most {torch_ops.MAX_TABLE_QUBITS} qubits are supported, got {n_qubits}"
            )
        low = 1 if self.params.exclude_identity else 0
        count = batch if self.params.per_sample else 1
        draw_device = generator.device if generator is not None else torch.device("cpu")
        ranks = torch.randint(
            low, math.factorial(n_qubits), (count,), generator=generator, device=draw_device
        )
        return ranks.to(device).expand(batch)

    def draw(
        self,
        batch: int,
        n_qubits: int,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """The permutations :meth:`apply` draws from ``generator``: ``(batch, n_qubits)`` long on ``device``."""
        from qeframe.quantum import torch_ops

        table, _ = torch_ops.permutation_table(n_qubits, device)
        return table[self._ranks(batch, n_qubits, generator, table.device)]

    def apply(
        self, rho: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``rho`` ``(B, d, d)`` complex -> ``(rho2, cut_map)`` with ``cut_map = cut_index_maps(perms)``."""
        from qeframe.quantum import torch_ops
        from qeframe.quantum.ops import num_qubits

        if rho.ndim != 3 or not rho.is_complex():
            raise QeframeError(
                f"permutation: expected a complex (B, d, d) tensor, got {tuple(rho.shape)} {rho.dtype}"
            )
        b, n = rho.shape[0], num_qubits(rho.shape[-1])
        table, maps = torch_ops.permutation_table(n, rho.device)
        ranks = self._ranks(b, n, generator, table.device)
        rho2 = torch_ops.permute_qubits(rho, table[ranks], check=False)
        return rho2, maps[ranks]


@hookimpl
def qeframe_register_symmetries(register):
    register(PermutationSymmetry)
