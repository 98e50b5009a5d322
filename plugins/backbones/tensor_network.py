"""``tensor_network`` backbone: a matrix-product operator on ``K`` copies of the density matrix.

Why copies. A tensor network contracted with ``rho`` once is linear in ``rho`` — an entanglement
witness, which cannot separate entangled from separable states in general. Entanglement
invariants are polynomials of higher degree: the purity of a reduced state,
``tr(rho_A^2)``, is a contraction of **two** copies of ``rho`` (swap the ``A`` legs between the
copies, trace the rest), and the partial-transpose moments ``tr((rho^{T_A})^k)`` behind the
``p3``-PPT criterion are contractions of ``k`` copies. This backbone therefore learns a tensor
network on ``rho^{⊗K}``; its outputs are degree-``K`` polynomials of the entries of ``rho``, and
with ``K = 2`` and bond dimension 1 per feature it can represent every reduced purity exactly,
which decides the entanglement of a pure state across every cut.

The network. Write ``rho`` as a tensor with legs ``(c, i_1 .. i_n, j_1 .. j_n)`` (``c`` the
real/imaginary channel of the model input, ``i_q``/``j_q`` the row/column bit of qubit ``q``,
big-endian). Site ``q`` of copy ``k`` is the pair ``s_q^(k) = (i_q, j_q)`` (dimension 4; site 1
also carries ``c``: dimension 8). The weights form an MPO along the qubits whose site tensor
``W_q[a, s_q^(1), ..., s_q^(K), b]`` joins the legs of qubit ``q`` of all copies::

    F_m(rho) = sum  W_1[s_1^(1..K), a_1] W_2[a_1, s_2^(1..K), a_2] ... W_n[a_{n-1}, s_n^(1..K), m]
                    * prod_k  rho[s_1^(k), s_2^(k), ..., s_n^(k)]

with bond dimension ``bond_dim`` and ``features`` outputs ``m`` on the last bond. The contraction
runs qubit by qubit with ``torch.einsum`` (copy by copy at site 1), keeping the environment
``E_q[b, a_q, rest of copy 1, ..., rest of copy K]`` of ``B * bond_dim * 4**(K (n - q))`` numbers —
``rho^{⊗K}`` is never formed. For ``K = 2`` (the default) the same function is contracted in a
cheaper order: ``F_m = <rho| W_m |rho>``, the MPO applied to one copy (a sweep that turns each
site leg of copy 1 into an output leg, ``bond_dim * 2 * 4**n`` numbers per sample), then a dot
product with the other copy; this scales to 6 qubits (64 x 64 inputs). A small MLP head (``head_layers`` hidden layers of ``head_width``,
ReLU) maps the ``features`` to one logit per cut.

Initialisation (stable for Adam). Every site tensor starts as the "trace" tensor
``T[s^(1..K)] = prod_k delta(i^(k), j^(k))`` (times ``delta(c^(k), 0)`` at site 1, the real
channel) threaded through the bond — the first site fans ``T`` out to every bond channel, later
sites pass channel ``a`` on to channel ``b`` when ``a == b mod (left bond)`` — plus noise:
``W_q = E_q ⊗ T + init_noise * G_q`` with ``G_q`` standard normal over ``sqrt(fan-in)``,
``fan-in = left bond * (site dim)**K``. The noiseless network outputs ``(tr rho)^K = 1`` for every
feature and every ``n`` (a near-identity MPO, normalised by construction since ``tr rho = 1``),
so depth in ``n`` neither blows up nor kills the signal; the noise adds random degree-``K`` forms
of order one that break the symmetry between channels. The features then pass through
``LayerNorm`` (no affine parameters; ``layer_norm``) before the head, which keeps their scale
fixed during training (the rescaling a long MPS would do with a running log-norm).

Cost per sample, ``K = 2`` (``D = 2 * 4**n`` entries of the site vector): ``64 bond_dim D``
multiply-adds at site 1 and ``16 bond_dim^2 D`` at every later site, memory ``bond_dim D`` — for
``n = 6``, ``bond_dim = 16``: about ``3 10^7`` multiply-adds per sample per site and ``1.3 10^5``
numbers. ``K = 3``: ``bond_dim 4**(3(n-1))`` numbers for the largest environment.
:meth:`TensorNetworkBackbone.build` refuses configurations whose largest intermediate
(:func:`environment_size`) exceeds :data:`MAX_ENVIRONMENT` numbers per sample: with
``bond_dim = 16`` that allows ``n <= 7`` for ``K = 2`` and ``n <= 3`` for ``K = 3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Backbone, Params

if TYPE_CHECKING:
    import torch

INPUT_CHANNELS = 2

#: Largest intermediate (numbers per sample, :func:`environment_size`) that :meth:`build` accepts.
MAX_ENVIRONMENT = 2**21


class TensorNetworkParams(Params):
    copies: int = Field(
        default=2, ge=1, le=3, description="copies K of rho the network acts on (degree in rho)"
    )
    bond_dim: int = Field(default=16, ge=1, description="MPO bond dimension between qubit sites")
    features: int = Field(default=32, ge=1, description="outputs of the last site (inputs of the head)")
    head_layers: int = Field(default=1, ge=0, description="hidden layers of the MLP head (0: linear head)")
    head_width: int = Field(default=64, ge=1, description="units of every hidden head layer")
    init_noise: float = Field(
        default=1.0, ge=0.0, description="scale of the random part of the initial cores"
    )
    layer_norm: bool = Field(default=True, description="LayerNorm (no affine) on the MPO features")


def environment_size(params: TensorNetworkParams, n_qubits: int) -> int:
    """Largest intermediate tensor per sample: ``bond_dim * 2 * 4**n`` for ``K = 2`` (the MPO applied to
    one copy), ``bond_dim * 4**(K (n-1))`` otherwise (the environment of all ``K`` copies)."""
    width = max(params.bond_dim, params.features)
    if params.copies == 2:
        return width * 2 * 4**n_qubits
    return width * 4 ** (params.copies * (n_qubits - 1))


def _site_dims(n_qubits: int) -> list[int]:
    """Physical dimension of one copy at each site: 8 for qubit 1 (with the channel), else 4."""
    return [2 * INPUT_CHANNELS * 2] + [4] * (n_qubits - 1)


def _trace_tensor(copies: int, site_dim: int) -> torch.Tensor:
    """``prod_k delta(i^(k), j^(k)) [delta(c^(k), 0)]`` as a ``(site_dim,)*copies`` tensor."""
    import torch

    one = torch.zeros(site_dim)
    # one copy's site index is c*4 + i*2 + j (i*2 + j without the channel); c = 0 comes first
    one[0] = one[3] = 1.0  # (i, j) = (0, 0) and (1, 1) of the real channel
    t = one
    for _ in range(copies - 1):
        t = torch.tensordot(t, one, dims=0)
    return t


_MODEL_CLASS: Any = None


def _model_class() -> Any:
    """The ``nn.Module`` class, defined on first use so that importing the plugin stays torch-free."""
    global _MODEL_CLASS
    if _MODEL_CLASS is not None:
        return _MODEL_CLASS

    import math

    import torch
    from torch import nn

    from qeframe.quantum.cuts import n_cuts

    class TensorNetworkModel(nn.Module):
        """K-copy MPO features -> LayerNorm -> MLP head -> one logit per cut. See the module docstring."""

        def __init__(self, params: TensorNetworkParams, n_qubits: int) -> None:
            super().__init__()
            if n_qubits < 2:
                raise QeframeError(f"tensor_network: need at least 2 qubits, got {n_qubits}")
            environment = environment_size(params, n_qubits)
            if environment > MAX_ENVIRONMENT:
                raise QeframeError(
                    f"tensor_network: {params.copies} copies of {n_qubits} qubits with bond_dim "
                    f"{params.bond_dim} need {environment} numbers per sample (limit {MAX_ENVIRONMENT}); "
                    "use fewer copies or a smaller bond_dim"
                )
            self.n_qubits = n_qubits
            self.dim = 2**n_qubits
            self.copies = k = params.copies
            chi, m = params.bond_dim, params.features
            dims = _site_dims(n_qubits)
            self.cores = nn.ParameterList()
            for q in range(n_qubits):
                left = 1 if q == 0 else chi
                right = m if q == n_qubits - 1 else chi
                trace = _trace_tensor(k, dims[q])
                # bond channel a feeds channel b when a == b mod left: the first site fans the trace
                # out to every channel, later sites pass each channel on (identity, tiled if wider)
                eye = (torch.arange(left)[:, None] == torch.arange(right)[None, :] % left).to(trace.dtype)
                base = torch.tensordot(eye, trace, dims=0)  # (left, right, s^(1..K))
                base = base.permute(0, *range(2, 2 + k), 1)  # (left, s^(1..K), right)
                fan_in = left * dims[q] ** k
                noise = torch.randn(base.shape) * (params.init_noise / math.sqrt(fan_in))
                core = base + noise
                if q == 0:
                    core = core[0]  # no left bond at the first site: (s^(1..K), right)
                self.cores.append(nn.Parameter(core))
            self.norm = nn.LayerNorm(m, elementwise_affine=False) if params.layer_norm else nn.Identity()
            layers: list[nn.Module] = []
            width_in = m
            for _ in range(params.head_layers):
                layers += [nn.Linear(width_in, params.head_width), nn.ReLU()]
                width_in = params.head_width
            layers.append(nn.Linear(width_in, n_cuts(n_qubits)))
            self.head = nn.Sequential(*layers)

        def mpo_features(self, x: torch.Tensor) -> torch.Tensor:
            """The MPO outputs ``F(rho)`` ``(B, features)`` for model input ``x`` ``(B, 2, d, d)``.

            Computed in the cores' dtype with autocast off: the features are degree-``K``
            polynomials summed over ``4**(K n)`` terms, which bf16 would round too coarsely.
            """
            if x.ndim != 4 or tuple(x.shape[1:]) != (INPUT_CHANNELS, self.dim, self.dim):
                raise QeframeError(
                    f"tensor_network: expected input (B, 2, {self.dim}, {self.dim}) for {self.n_qubits} "
                    f"qubits, got {tuple(x.shape)}"
                )
            with torch.autocast(device_type=x.device.type, enabled=False):
                x = x.to(self.cores[0].dtype)
                return self._contract_quadratic(x) if self.copies == 2 else self._contract(x)

        def _site_vector(self, x: torch.Tensor) -> torch.Tensor:
            """``(B, c, i_1..i_n, j_1..j_n)`` -> ``(B, 8, 4**(n-1))``: site legs ``s_1 = (c, i_1, j_1)``, rest."""
            n, b = self.n_qubits, x.shape[0]
            t = x.reshape((b, INPUT_CHANNELS) + (2,) * (2 * n))
            order = [0, 1] + [a for q in range(n) for a in (2 + q, 2 + n + q)]
            return t.permute(order).reshape(b, 8, 4 ** (n - 1))

        def _contract_quadratic(self, x: torch.Tensor) -> torch.Tensor:
            """``K = 2``: ``F_m = <rho| W_m |rho>`` computed as the MPO applied to one copy, then a dot product.

            The same function as :meth:`_contract` (the same cores, legs ``s^(1)`` contracted with the
            first copy, ``s^(2)`` with the second), in a different order: sweep the sites, turning
            copy-1 leg ``s_q`` into output leg ``t_q`` through core ``q``; the intermediate
            ``T[b, a, t_1..t_q, s_{q+1}..s_n]`` has ``bond_dim * 2 * 4**n`` numbers per sample
            (instead of ``bond_dim * 4**(2(n-1))``), so 64 x 64 inputs (6 qubits) fit.
            """
            n, b = self.n_qubits, x.shape[0]
            sites = self._site_vector(x)  # (B, 8, R)
            t = torch.einsum("bsr,stc->bctr", sites, self.cores[0])  # (B, chi, 8, R)
            done = 8
            for q in range(1, n):
                rest = 4 ** (n - 1 - q)
                t = t.reshape(b, t.shape[1], done, 4, rest)
                t = torch.einsum("balsr,astc->bcltr", t, self.cores[q])
                done *= 4
            return torch.einsum("bml,bl->bm", t.reshape(b, t.shape[1], -1), sites.reshape(b, -1))

        def _contract(self, x: torch.Tensor) -> torch.Tensor:
            """Any ``K``: the environment of all ``K`` copies, qubit by qubit (module docstring)."""
            n, k, b = self.n_qubits, self.copies, x.shape[0]
            sites = self._site_vector(x)  # (B, 8, 4**(n-1))
            # einsum sublists: 0 batch, 1 bond, 2.. site legs s^(k) (2+k), rest legs R^(k) (2+K+k)
            bat, bond = 0, 1
            s_leg = [2 + c for c in range(k)]
            r_leg = [2 + k + c for c in range(k)]
            core = self.cores[0]
            env = torch.einsum(
                sites, [bat, s_leg[0], r_leg[0]], core, s_leg + [bond], [bat] + s_leg[1:] + [bond, r_leg[0]]
            )
            for c in range(1, k):
                env = torch.einsum(
                    env,
                    [bat] + s_leg[c:] + [bond] + r_leg[:c],
                    sites,
                    [bat, s_leg[c], r_leg[c]],
                    [bat] + s_leg[c + 1 :] + [bond] + r_leg[: c + 1],
                )
            out_bond = 2 + 2 * k
            for q in range(1, n):
                rest = 4 ** (n - 1 - q)
                env = env.reshape((b, env.shape[1]) + (4, rest) * k)
                legs = [bat, bond] + [a for c in range(k) for a in (s_leg[c], r_leg[c])]
                env = torch.einsum(
                    env, legs, self.cores[q], [bond] + s_leg + [out_bond], [bat, out_bond] + r_leg
                )
            return env.reshape(b, -1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.norm(self.mpo_features(x)))

    TensorNetworkModel.__module__, TensorNetworkModel.__qualname__ = __name__, "TensorNetworkModel"
    _MODEL_CLASS = TensorNetworkModel
    return _MODEL_CLASS


def __getattr__(name: str) -> Any:  # PEP 562: `TensorNetworkModel` resolves lazily (pickle, docs)
    if name == "TensorNetworkModel":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TensorNetworkBackbone(Backbone):
    """An MPO over qubits acting on K copies of rho (degree-K polynomial features), with an MLP head."""

    name = "tensor_network"
    description = "MPO on K copies of rho (K=2: reduced purities are exact), LayerNorm, MLP head"
    Params = TensorNetworkParams

    def build(self, n_qubits: int) -> torch.nn.Module:
        """A freshly initialised ``float32`` model (draws from torch's global RNG: use ``torch.manual_seed``)."""
        return _model_class()(self.params, n_qubits)


@hookimpl
def qeframe_register_backbones(register):
    register(TensorNetworkBackbone)
