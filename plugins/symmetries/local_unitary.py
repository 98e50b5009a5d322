"""``local_unitary`` symmetry: an independent Haar-random single-qubit unitary on every qubit.

``rho -> (U_1 ⊗ ... ⊗ U_n) rho (U_1 ⊗ ... ⊗ U_n)^†`` with ``U_k`` Haar on SU(2), drawn
independently per qubit and per sample. Local unitaries change no entanglement across any cut
(the partial-transpose spectrum of every cut is invariant: ``(U_A ⊗ U_B) rho (U_A ⊗ U_B)^†``
has partial transpose ``(U_A^* ⊗ U_B) rho^{T_A} (U_A^* ⊗ U_B)^†``), so the cut map is the
identity. This is the paper's "LU" view of the triple Siamese network (Eq. 6, second term).

Haar U(2) and Haar SU(2) give the same distribution of conjugations (the global phase cancels),
so SU(2) matrices are drawn directly as uniform unit quaternions, without a QR decomposition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Params, Symmetry

if TYPE_CHECKING:
    import torch


class LocalUnitaryParams(Params):
    qubits: list[int] | None = Field(
        default=None,
        description="1-based qubits that get a random unitary (default: all); the others are left alone.",
    )

    @field_validator("qubits")
    @classmethod
    def _distinct_positive(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value or min(value) < 1 or len(set(value)) != len(value):
            raise ValueError("qubits must be a non-empty list of distinct 1-based qubit numbers")
        return sorted(value)


class LocalUnitarySymmetry(Symmetry):
    """Independent Haar SU(2) on each qubit of each sample; identity cut map."""

    name = "local_unitary"
    description = "independent Haar-random SU(2) on every qubit (entanglement unchanged, identity cut map)"
    Params = LocalUnitaryParams

    def apply(
        self, rho: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``rho`` ``(B, d, d)`` complex -> ``(rho2, cut_map)``; ``cut_map[b] = 0..n_cuts-1``.

        Random numbers come from ``generator`` (drawn on its device, then moved to ``rho``'s).
        """
        import torch

        from qeframe.quantum import torch_ops
        from qeframe.quantum.cuts import n_cuts
        from qeframe.quantum.ops import num_qubits

        if rho.ndim != 3 or not rho.is_complex():
            raise QeframeError(
                f"local_unitary: expected a complex (B, d, d) tensor, got {tuple(rho.shape)} {rho.dtype}"
            )
        b, n = rho.shape[0], num_qubits(rho.shape[-1])
        qubits = list(range(n)) if self.params.qubits is None else [q - 1 for q in self.params.qubits]
        if max(qubits) >= n:
            raise QeframeError(f"local_unitary: qubit {max(qubits) + 1} does not exist in a {n}-qubit state")
        us = torch_ops.random_su2(b * len(qubits), generator, rho.device, rho.dtype).reshape(
            b, len(qubits), 2, 2
        )
        rho2 = torch_ops.apply_local_unitaries(rho, us, qubits)
        cut_map = torch.arange(n_cuts(n), device=rho.device).repeat(b, 1)
        return rho2, cut_map


@hookimpl
def qeframe_register_symmetries(register):
    register(LocalUnitarySymmetry)
