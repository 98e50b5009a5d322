"""``autoencoder`` router: the paper's separability measure M, learned on separable states only.

The paper's ensemble (arXiv 2210.07410, "Ensemble of networks") routes every state by the
reconstruction loss ``M`` of an autoencoder trained to reconstruct *separable* states: a state
that the autoencoder reconstructs well looks like the separable states it was trained on. ``M`` is
cut into ``N_e = 10`` logarithmic domains ``[0, 1e-4), [1e-4, 2e-4), [2e-4, 5e-4), [5e-4, 1e-3),
[1e-3, 2e-3), [2e-3, 5e-3), [5e-3, 1e-2), [1e-2, 2e-2), [2e-2, 5e-2), [5e-2, inf)`` (the default
``thresholds``), and one Siamese model is trained per domain (:mod:`qeframe.learn.ensemble`).

Autoencoder (the authors' separator model, reference [41] of the paper). For ``n`` qubits,
``d = 2**n`` and model input ``x = (Re rho, Im rho)`` of shape ``(B, 2, d, d)``:

* **Encoder** — for every qubit ``q`` it produces ``K = terms`` complex ``2 x 2`` matrices
  ``A_q^k``. A cascade of convolutions walks down the qubits: at step ``q`` (``q = 1 .. n-2``) the
  current feature map of size ``2**(n-q+1)`` is read by a *block* convolution (kernel = stride =
  half its size), whose ``2 x 2`` output is indexed by qubit ``q``'s row and column, and by a
  *dilated* ``2 x 2`` convolution (dilation = half its size) that contracts qubit ``q``'s indices —
  a learned partial trace — leaving a map of the remaining qubits, with the channels growing as
  ``c -> int(c * K**(1/(n-1)))`` from ``c = 2``. The last ``4 x 4`` map gives the last two qubits:
  a block ``2 x 2`` convolution of stride 2 (qubit ``n-1``) and a ``2 x 2`` convolution of
  dilation 2 (qubit ``n``). Each qubit's ``2K`` channels of ``2 x 2`` (channels ``0..K-1`` real
  parts, ``K..2K-1`` imaginary parts) then pass ``fc_layers`` times through ReLU and a linear map
  ``8K -> 8K``. The convolutions themselves are linear (no activation between them).
* **Decoder** — fixed, no weights: the average of ``K`` product operators,
  ``rho_hat = (1/K) sum_k A_1^k (x) A_2^k (x) ... (x) A_n^k`` (big-endian: qubit 1 leftmost).
* **Measure** — ``M(rho) = mean over the 2 d^2 real entries of |x_hat - x|`` (``loss = "l1"``, the
  authors' criterion, for which the default thresholds were chosen) or of ``(x_hat - x)**2``
  (``loss = "mse"``; mean squared error is roughly the square of the L1 value, so pick thresholds to
  match).

Nothing forces the factors to be states: with ``K = 24`` terms every 3-qubit operator can be written
as such a sum, so ``M`` separates separable from entangled states only through what the encoder
learned from separable data — it is an autoencoder's novelty score, not a certificate.

Training (:meth:`AutoencoderRouter.fit`): only the samples whose labels are separable (0) on every
cut (all samples when ``labels`` is ``None``); Adam(``lr``) on ``mean_batch M``, ``epochs`` passes
in ``batch_size`` batches in a shuffled order drawn from a ``torch.Generator`` seeded with
``seed``; weights initialised under ``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng`
(the caller's global RNG is untouched); everything runs in float32 on the input's device. The
weights of the last epoch are kept.

The authors' numbers (repository ``Maticraft/quantum_correlations``, 3 qubits): ``K = 24`` (48
output channels), 4 fully connected layers per qubit, L1 loss, Adam with ``lr = 1e-3``, batch 128,
20 epochs on their separable training set, float64, and the epoch with the lowest L1 loss on a
separable validation set kept. Those are the defaults here, except float32 and the last epoch.
Their routing filter keeps ``t_k < M < t_{k+1}`` with a finite last edge 0.1 (states above are in no
domain); here, as in the paper's text, the last domain is ``[0.05, inf)`` and the outer domains are
open-ended (:mod:`qeframe_plugins.routers._common`).

Example::

    >>> import torch
    >>> router = AutoencoderRouter(AutoencoderRouter.Params(epochs=1, terms=4, fc_layers=1))
    >>> x = torch.zeros(8, 2, 8, 8); x[:, 0, 0, 0] = 1.0      # |000><000|, a product state
    >>> router.fit(x).route(x).shape, router.n_domains
    (torch.Size([8]), 10)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_serializer, field_validator

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Params

from ._common import ScoreRouter, check_edges, edges_to_json

if TYPE_CHECKING:
    import torch

#: The paper's ten logarithmic domains of M (edges; the last domain is open).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.0, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, math.inf)


class AutoencoderParams(Params):
    """Architecture, measure, domain edges and training of the autoencoder router."""

    terms: int = Field(default=24, ge=1, le=1024, description="K: product terms (2x2 factors per qubit).")
    fc_layers: int = Field(default=4, ge=0, le=16, description="ReLU + linear 8K -> 8K layers per qubit.")
    loss: Literal["l1", "mse"] = Field(default="l1", description="M: mean |error| (authors) or mean error^2.")
    thresholds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS),
        description="Strictly increasing domain edges of M; inf may be written as the string 'inf'.",
    )
    epochs: int = Field(default=20, ge=1, le=10_000)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=128, ge=1)
    seed: int = Field(default=0, ge=0)

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        return check_edges(v)

    @field_serializer("thresholds", when_used="json")
    def _json_edges(self, v: list[float]) -> list[float | str]:
        return edges_to_json(v)


_MODEL_CLASS: Any = None


def _model_class() -> Any:
    """The ``nn.Module`` class, defined on first use so that importing the plugin stays torch-free."""
    global _MODEL_CLASS
    if _MODEL_CLASS is not None:
        return _MODEL_CLASS

    import torch
    from torch import nn

    class SeparableAutoencoder(nn.Module):
        """Encoder to ``K`` product terms of ``2 x 2`` factors per qubit, fixed Kronecker decoder.

        ``forward(x)``: ``(B, 2, d, d)`` -> reconstruction ``(B, 2, d, d)``;
        :meth:`encode`: ``(B, 2, d, d)`` -> factors ``(B, n, K, 2, 2)`` complex;
        :meth:`errors`: ``(B,)`` per-sample measure ``M`` (module docstring).
        """

        def __init__(self, n_qubits: int, terms: int, fc_layers: int) -> None:
            super().__init__()
            if n_qubits < 2:
                raise QeframeError(f"autoencoder router: need at least 2 qubits, got {n_qubits}")
            self.n_qubits, self.terms, self.dim = n_qubits, terms, 2**n_qubits
            out = 2 * terms
            growth = terms ** (1.0 / (n_qubits - 1))
            heads: list[nn.Module] = []
            reduces: list[nn.Module] = []
            channels = 2
            for q in range(n_qubits - 2):
                block = 2 ** (n_qubits - 1 - q)  # half the size of the current map
                heads.append(nn.Conv2d(channels, out, kernel_size=block, stride=block))
                nxt = max(1, int(channels * growth))
                reduces.append(nn.Conv2d(channels, nxt, kernel_size=2, dilation=block))
                channels = nxt
            heads.append(nn.Conv2d(channels, out, kernel_size=2, stride=2))
            heads.append(nn.Conv2d(channels, out, kernel_size=2, dilation=2))
            self.heads = nn.ModuleList(heads)
            self.reduces = nn.ModuleList(reduces)
            width = 4 * out
            self.mlps = nn.ModuleList(
                nn.Sequential(*[m for _ in range(fc_layers) for m in (nn.ReLU(), nn.Linear(width, width))])
                for _ in range(n_qubits)
            )

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            b, n, k = x.shape[0], self.n_qubits, self.terms
            feats = []
            cur = x
            for q in range(n - 2):
                feats.append(self.heads[q](cur))
                cur = self.reduces[q](cur)
            feats.append(self.heads[n - 2](cur))
            feats.append(self.heads[n - 1](cur))
            factors = []
            for q, f in enumerate(feats):
                f = self.mlps[q](f.flatten(1)).view(b, 2, k, 2, 2)  # channel c = part * K + k
                factors.append(torch.complex(f[:, 0], f[:, 1]))
            return torch.stack(factors, dim=1)

        @staticmethod
        def decode(factors: torch.Tensor) -> torch.Tensor:
            """``(1/K) sum_k (x)_q A_q^k`` as model input: ``(B, n, K, 2, 2)`` -> ``(B, 2, d, d)``."""
            b, n, k = factors.shape[:3]
            prod = factors[:, 0]
            for q in range(1, n):
                a, f = prod.shape[-1], factors[:, q]
                # kron(P, F)[(i, k), (j, l)] = P[i, j] F[k, l]  (P is the left, more significant factor)
                prod = (prod[..., :, None, :, None] * f[..., None, :, None, :]).reshape(b, k, 2 * a, 2 * a)
            rho = prod.mean(dim=1)
            return torch.stack((rho.real, rho.imag), dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.decode(self.encode(x))

        def errors(self, x: torch.Tensor, loss: str = "l1") -> torch.Tensor:
            """Per-sample ``M``: mean over ``2 d^2`` entries of ``|x_hat - x|`` or ``(x_hat - x)**2``."""
            diff = self(x) - x
            per = diff.abs() if loss == "l1" else diff.square()
            return per.flatten(1).mean(dim=1)

    SeparableAutoencoder.__module__, SeparableAutoencoder.__qualname__ = __name__, "SeparableAutoencoder"
    _MODEL_CLASS = SeparableAutoencoder
    return _MODEL_CLASS


def __getattr__(name: str) -> Any:  # PEP 562: `SeparableAutoencoder` resolves lazily
    if name == "SeparableAutoencoder":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AutoencoderRouter(ScoreRouter):
    """Domains of the reconstruction loss M of an autoencoder trained on separable states."""

    name = "autoencoder"
    description = (
        "domains of the reconstruction loss of an autoencoder trained on separable states (paper's ensemble)"
    )
    Params = AutoencoderParams

    def __init__(self, params: AutoencoderParams | None = None) -> None:
        super().__init__(params)
        self.model: Any = None
        self.history: list[float] = []
        self.n_train = 0

    def _default_n_domains(self) -> int:
        return len(self.params.thresholds) - 1

    def _build(self, n_qubits: int) -> Any:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.params.seed)
            return _model_class()(n_qubits, self.params.terms, self.params.fc_layers)

    def _fit_scores(self, x: torch.Tensor, labels: torch.Tensor | None) -> list[float]:
        import torch

        p = self.params
        if labels is not None:
            x = x[(labels.to(x.device) == 0).all(dim=1)]
        if x.shape[0] == 0:
            raise QeframeError(
                "router 'autoencoder': no training sample is labelled separable (0) on every cut; "
                "the autoencoder learns from separable states only"
            )
        assert self.n_qubits is not None
        model = self._build(self.n_qubits).to(x.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=p.lr, fused=x.device.type == "cuda" or None)
        shuffle = torch.Generator().manual_seed(p.seed)
        n = int(x.shape[0])
        history = []
        model.train()
        with torch.enable_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            for _ in range(p.epochs):
                perm = torch.randperm(n, generator=shuffle).to(x.device)
                total = torch.zeros((), dtype=torch.float64, device=x.device)
                for start in range(0, n, p.batch_size):
                    xb = x[perm[start : start + p.batch_size]].float()
                    loss = model.errors(xb, p.loss).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.detach().double() * xb.shape[0]
                history.append(float(total) / n)
        self.model = model.eval()
        self.history = history
        self.n_train = n
        return list(p.thresholds)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        if next(self.model.parameters()).device != x.device:
            self.model = self.model.to(x.device)
        return self.model.errors(x.float(), self.params.loss)

    def state_dict(self) -> dict[str, Any]:
        """``tensors``: ``edges`` and the autoencoder weights as ``model.<name>``; ``config``: router
        name, ``n_qubits``, params (JSON, ``inf`` as ``"inf"``), training loss per epoch, sample count."""
        tensors, config = self.base_state()
        tensors.update({f"model.{k}": v.detach().cpu().clone() for k, v in self.model.state_dict().items()})
        config.update(history=list(self.history), n_train=self.n_train)
        return {"tensors": tensors, "config": config}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        tensors, config = self.load_base_state(state)
        assert self.n_qubits is not None
        model = self._build(self.n_qubits)
        weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            model.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
            raise QeframeError(
                f"router 'autoencoder': weights do not fit the architecture in the state: {detail}"
            ) from None
        self.model = model.eval()
        self.history = [float(v) for v in config.get("history", [])]
        self.n_train = int(config.get("n_train", 0))


@hookimpl
def qeframe_register_routers(register):
    register(AutoencoderRouter)
