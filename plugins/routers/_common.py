"""Shared machinery of the threshold routers: a scalar score per state, cut into domains by edges.

A :class:`ScoreRouter` computes one real score ``s(rho)`` per sample (:meth:`ScoreRouter.scores`)
and sends the sample to domain ``k`` when ``t_k <= s < t_{k+1}`` for the strictly increasing edges
``t_0 < t_1 < ... < t_K`` (``K = n_domains``). The outer domains are open-ended: a score below
``t_0`` goes to domain 0 and a score at or above ``t_K`` to domain ``K - 1``, so every sample gets
a domain. In torch terms ``domain = torch.bucketize(s, t[1:-1], right=True)``.

Edges travel through JSON as numbers, with ``±inf`` written as the strings ``"inf"`` / ``"-inf"``
(JSON has no infinity); the parameter models accept both spellings.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Router

if TYPE_CHECKING:  # torch is imported on first use, so that loading the plugin stays torch-free
    import torch

#: Samples per chunk when scoring (bounds temporaries; the result does not depend on it).
SCORE_CHUNK = 8192


def check_edges(values: Sequence[float]) -> list[float]:
    """Validate domain edges: at least two numbers, no NaN, strictly increasing.

    Raises ``ValueError`` (pydantic turns it into an error located at the field, e.g.
    ``thresholds: Value error, ...``).
    """
    edges = [float(v) for v in values]
    if len(edges) < 2:
        raise ValueError(f"need at least 2 edges (1 domain), got {len(edges)}")
    if any(math.isnan(v) for v in edges):
        raise ValueError("edges must not be NaN")
    bad = [i for i in range(1, len(edges)) if not edges[i] > edges[i - 1]]
    if bad:
        i = bad[0]
        raise ValueError(
            f"must be strictly increasing, but entry {i} ({edges[i]:g}) is not greater than entry {i - 1} ({edges[i - 1]:g})"
        )
    return edges


def edges_to_json(values: Sequence[float]) -> list[float | str]:
    """Edges as JSON-safe values: finite numbers unchanged, ``±inf`` as ``"inf"`` / ``"-inf"``."""
    return [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in map(float, values)]


def bucketize(scores: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Domain ``(N,)`` long of each score for edges ``(K + 1,)``: ``#{j in 1..K-1 : t_j <= s}``.

    Equivalent to ``t_k <= s < t_{k+1}`` with the outer domains open-ended (module docstring).
    """
    import torch

    inner = edges[1:-1].to(device=scores.device, dtype=scores.dtype)
    return torch.bucketize(scores.contiguous(), inner.contiguous(), right=True).to(torch.long)


def check_model_input(x: torch.Tensor, who: str, n_qubits: int | None = None) -> int:
    """Check ``x`` is a model input ``(N, 2, d, d)`` with ``d = 2**n``; returns ``n``.

    With ``n_qubits`` given (a fitted router), a different ``n`` is a :class:`QeframeError`.
    """
    if x.ndim != 4 or x.shape[1] != 2 or x.shape[2] != x.shape[3]:
        raise QeframeError(f"router {who!r}: expected model input (N, 2, d, d), got shape {tuple(x.shape)}")
    d = int(x.shape[-1])
    n = d.bit_length() - 1
    if d < 4 or 2**n != d:
        raise QeframeError(f"router {who!r}: matrix size {d} is not 2**n for n >= 2 qubits")
    if n_qubits is not None and n != n_qubits:
        raise QeframeError(f"router {who!r} was fitted on {n_qubits}-qubit states, got {n}-qubit input")
    return n


class ScoreRouter(Router):
    """A router that cuts a scalar score into domains at fitted edges (module docstring).

    Subclasses implement :meth:`_fit_scores` (learn what the score needs and return the edges) and
    :meth:`_scores` (the score of a chunk of samples); the base class does the bookkeeping, chunking,
    the not-fitted error and the ``edges``/``n_qubits`` part of the state.
    """

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.edges: torch.Tensor | None = None  # (K + 1,) float64 on CPU, set by fit
        self.n_qubits: int | None = None

    # ---------------------------------------------------------------- to implement
    @abc.abstractmethod
    def _fit_scores(self, x: torch.Tensor, labels: torch.Tensor | None) -> list[float]:
        """Fit on ``x`` ``(N, 2, d, d)``; return the domain edges (strictly increasing)."""

    @abc.abstractmethod
    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` float of a chunk ``x`` ``(B, 2, d, d)`` (on ``x.device``, no grad)."""

    @abc.abstractmethod
    def _default_n_domains(self) -> int:
        """Number of domains before :meth:`fit` (from the parameters)."""

    # ---------------------------------------------------------------- Router contract
    @property
    def fitted(self) -> bool:
        return self.edges is not None

    @property
    def n_domains(self) -> int:
        return int(self.edges.numel()) - 1 if self.edges is not None else self._default_n_domains()

    def fit(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ScoreRouter:
        n = check_model_input(x, self.name)
        if labels is not None and (labels.ndim != 2 or labels.shape[0] != x.shape[0]):
            raise QeframeError(
                f"router {self.name!r}: labels must be (N, n_cuts) with N = {x.shape[0]}, got {tuple(labels.shape)}"
            )
        import torch

        self.n_qubits = n
        edges = check_edges(self._fit_scores(x, labels))
        self.edges = torch.tensor(edges, dtype=torch.float64)
        return self

    def _require_fitted(self) -> None:
        if self.edges is None:
            raise QeframeError(
                f"router {self.name!r} is not fitted: call fit(x, labels) or load_state_dict(...) before route() or scores()"
            )

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The routing score ``(N,)`` of every sample (float, on ``x.device``), in chunks.

        Autocast is switched off inside, so a caller running under bf16 autocast (inference) gets
        the same float32/float64 scores as without it — domain edges like ``1e-4`` need them.
        """
        self._require_fitted()
        check_model_input(x, self.name, self.n_qubits)
        return self._score_all(x)

    def _score_all(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_scores` over ``x`` in chunks of :data:`SCORE_CHUNK`, no grad, autocast off."""
        import torch

        outs = []
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            for start in range(0, x.shape[0], SCORE_CHUNK):
                outs.append(self._scores(x[start : start + SCORE_CHUNK]))
        if not outs:
            return torch.empty(0, device=x.device)
        return torch.cat(outs)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        self._require_fitted()
        assert self.edges is not None
        return bucketize(self.scores(x), self.edges)

    def base_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The shared part of a router's ``state_dict``: ``edges`` tensor, ``n_qubits`` and params in the
        config."""
        self._require_fitted()
        assert self.edges is not None
        config = {
            "router": self.name,
            "n_qubits": self.n_qubits,
            "params": self.params.model_dump(mode="json"),
        }
        return {"edges": self.edges.clone()}, config

    def load_base_state(self, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Restore ``edges``, ``n_qubits`` and the params from a state; returns ``(tensors, config)``."""
        import torch

        try:
            tensors, config = dict(state["tensors"]), dict(state["config"])
            edges = tensors["edges"]
            n_qubits = int(config["n_qubits"])
        except (KeyError, TypeError, ValueError) as exc:
            raise QeframeError(
                f"router {self.name!r}: not a state_dict() of this router ({type(exc).__name__}: {exc})"
            ) from None
        if config.get("router", self.name) != self.name:
            raise QeframeError(f"router {self.name!r}: the state belongs to router {config['router']!r}")
        if "params" in config:
            try:
                self.params = type(self.params).model_validate(config["params"])
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise QeframeError(
                    f"router {self.name!r}: the state's params do not validate: {exc}"
                ) from None
        self.edges = torch.as_tensor(edges, dtype=torch.float64).cpu().clone()
        check_edges(self.edges.tolist())
        self.n_qubits = n_qubits
        return tensors, config
