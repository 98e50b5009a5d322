"""``pt_spectrum`` router: domains of the smallest partial-transpose eigenvalue over all cuts.

Score of a state (no learning involved)::

    s(rho) = min over cuts A|B of lambda_min(rho^{T_A})        in [-1/2, 1/d] for d = 2**n

(``rho^{T_A}`` and ``rho^{T_B}`` have the same spectrum.) ``s < 0`` means NPT on some cut, hence
entangled; ``s >= 0`` means PPT on every cut — separable or PPT-entangled. A pure state has
``s = 0`` when it is a product state and ``s < 0`` otherwise; a mixed state of full rank that is
PPT on every cut has ``s > 0``. The router shows that the
:class:`~qeframe.plugin.interfaces.Router` interface is not tied to the autoencoder: any per-state
statistic can define the domains of an ensemble.

Domains: the strictly increasing ``thresholds`` (when not given,
``[-inf, -0.1, -0.02, -1e-6, 1e-3, 0.02, inf]``: clearly NPT, NPT, weakly NPT, the PPT boundary
where pure product states and rank-deficient PPT states sit, PPT close to the boundary, PPT
interior), or, with ``quantiles = k``, edges at the ``j/k`` quantiles (``j = 1 .. k-1``) of the
``N`` training scores — edge ``j`` is the ``ceil(j N / k)``-th smallest score (0-based) — learned by
:meth:`PtSpectrumRouter.fit`, so that with distinct scores the domains hold ``N/k`` training
samples up to one (tied edges are merged, so there may be fewer than ``k`` domains). Outer domains are open-ended (:mod:`qeframe_plugins.routers._common`).

Computation: the input ``(B, 2, d, d)`` is turned into ``complex128`` matrices on its device, every
cut's partial transpose is taken at once (:func:`qeframe.quantum.torch_ops.partial_transposes`) and
:func:`torch.linalg.eigvalsh` runs on the whole ``(B, n_cuts, d, d)`` batch; the result agrees with
:func:`qeframe.quantum.ppt.pt_min_eigenvalues` (numpy/LAPACK).

Example::

    >>> import torch
    >>> from qeframe.quantum.torch_ops import to_model_input
    >>> ghz = torch.zeros(8, dtype=torch.complex128); ghz[[0, 7]] = 2 ** -0.5
    >>> x = to_model_input(torch.outer(ghz, ghz.conj())[None])
    >>> router = PtSpectrumRouter().fit(x)
    >>> round(router.scores(x).item(), 6), router.route(x).tolist()   # lambda_min = -1/2: domain 0
    (-0.5, [0])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_serializer, field_validator, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import Params

from ._common import ScoreRouter, check_edges, edges_to_json

if TYPE_CHECKING:
    import torch

#: Default edges of the score (module docstring).
DEFAULT_PT_THRESHOLDS: tuple[float, ...] = (-math.inf, -0.1, -0.02, -1e-6, 1e-3, 0.02, math.inf)


class PtSpectrumParams(Params):
    """Fixed domain edges of ``min_cuts lambda_min(rho^{T_A})``, or a number of quantile domains."""

    thresholds: list[float] | None = Field(
        default=None,
        description="Strictly increasing edges of the score (default DEFAULT_PT_THRESHOLDS); "
        "-inf/inf may be written as strings.",
    )
    quantiles: int | None = Field(
        default=None,
        ge=2,
        le=1000,
        description="Learn k equally populated domains from the training set instead.",
    )

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, v: list[float] | None) -> list[float] | None:
        return None if v is None else check_edges(v)

    @model_validator(mode="after")
    def _one_way(self) -> PtSpectrumParams:
        if self.quantiles is not None and self.thresholds is not None:
            raise ValueError("give either thresholds or quantiles, not both")
        return self

    @field_serializer("thresholds", when_used="json")
    def _json_edges(self, v: list[float] | None) -> list[float | str] | None:
        return None if v is None else edges_to_json(v)

    @property
    def edges(self) -> list[float]:
        """The fixed edges: ``thresholds``, or :data:`DEFAULT_PT_THRESHOLDS` when not given."""
        return list(self.thresholds) if self.thresholds is not None else list(DEFAULT_PT_THRESHOLDS)


def min_pt_eigenvalue(x: torch.Tensor) -> torch.Tensor:
    """``min_cuts lambda_min(rho^{T_A})`` ``(B,)`` float64 of model input ``x`` ``(B, 2, d, d)``."""
    import torch

    from qeframe.quantum.torch_ops import partial_transposes

    rho = torch.complex(x[:, 0].double(), x[:, 1].double())
    return torch.linalg.eigvalsh(partial_transposes(rho))[..., 0].amin(dim=1)


class PtSpectrumRouter(ScoreRouter):
    """Domains of the smallest partial-transpose eigenvalue over the cuts (fixed or quantile edges)."""

    name = "pt_spectrum"
    description = "domains of min over cuts of the smallest partial-transpose eigenvalue"
    Params = PtSpectrumParams

    def _default_n_domains(self) -> int:
        return self.params.quantiles if self.params.quantiles is not None else len(self.params.edges) - 1

    def _fit_scores(self, x: torch.Tensor, labels: torch.Tensor | None) -> list[float]:
        k = self.params.quantiles
        if k is None:
            return self.params.edges
        import torch

        s = self._score_all(x).sort().values.cpu()
        if s.numel() == 0:
            from qeframe.errors import QeframeError

            raise QeframeError("router 'pt_spectrum': cannot learn quantile edges from an empty training set")
        n = s.numel()
        # edge j = the ceil(j n / k)-th smallest score (0-based): ceil(j n / k) scores lie below it
        idx = torch.tensor([min(n - 1, -(-j * n // k)) for j in range(1, k)], dtype=torch.long)
        inner = torch.unique(s[idx]).tolist()  # sorted, ties merged
        return [-math.inf, *inner, math.inf]

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return min_pt_eigenvalue(x)

    def state_dict(self) -> dict[str, Any]:
        """``tensors``: ``edges`` (fixed or learned); ``config``: router name, ``n_qubits``, params."""
        tensors, config = self.base_state()
        return {"tensors": tensors, "config": config}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state(state)


@hookimpl
def qeframe_register_routers(register):
    register(PtSpectrumRouter)
