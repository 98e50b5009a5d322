"""``cnn`` backbone: the paper's convolutional network (Pawłowski & Krawczyk, Fig. 2a).

Input ``(B, 2, d, d)`` float (real and imaginary part of ``rho``, ``d = 2**n``), output
``(B, n_cuts)`` logits (the paper applies a sigmoid; qeframe keeps logits and uses
``BCEWithLogits``).

Architecture (defaults = the paper's, confirmed against the authors' model code):

* ``conv_layers`` convolutions, ``kernel_size x kernel_size``, no padding, stride ``stride``,
  each followed by the activation (ReLU); optional batch norm before the activation and a
  ``2x2`` stride-1 pooling after it (both off in the paper). Channel counts
  ``c_i = floor(r_i c_{i-1})`` with ``c_0 = 2`` and ``r_1 = ratio``; ``ratio_type = "sqrt"``
  gives ``r_i = sqrt(r_{i-1})`` (16, 4, 2 -> channels 32, 128, 256), ``"constant"`` keeps
  ``r_i = r_1``, ``"square"`` uses ``r_i = r_{i-1}**2``.
* Spatial size ``s_i = floor((s_{i-1} - dilation (k - 1) - 1) / stride) + 1`` (minus 1 per pooling),
  ``s_0 = d``: for three 2x2 layers, 8 -> 7 -> 6 -> 5 (3 qubits), 16 -> 13 (4 qubits), 4 -> 1 (2 qubits).
* ``fc_layers`` fully connected layers of ``fc_width`` units with the activation; dropout
  (when ``dropout > 0``) follows every hidden layer after the first, as in the authors' code
  (which uses ``p = 0.5`` when enabled and is off for the paper's models).
* a final linear layer to one logit per cut.

Parameter counts of the paper configuration: 247 201 (2 qubits), 1 033 891 (3 qubits; 819 328 of
them in the first fully connected layer, 6400 -> 128), 5 752 999 (4 qubits). The authors build
the model in float64 and train it with Adam (lr 1e-3), batch 128, for 20 epochs; ``build``
returns float32 (``.double()`` gives theirs).

Example::

    >>> import torch
    >>> from qeframe_plugins.backbones.cnn import CNNBackbone
    >>> model = CNNBackbone().build(3)
    >>> model(torch.zeros(5, 2, 8, 8)).shape
    torch.Size([5, 3])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Backbone, Params

if TYPE_CHECKING:
    import torch

INPUT_CHANNELS = 2


class CNNParams(Params):
    conv_layers: int = Field(default=3, ge=1, description="number of convolutional layers")
    kernel_size: int = Field(default=2, ge=1, description="square kernel size of every convolution")
    ratio: float = Field(default=16.0, gt=0, description="channel increase ratio r_1 of the first layer")
    ratio_type: Literal["sqrt", "constant", "square"] = Field(
        default="sqrt", description="r_i = sqrt(r_{i-1}) | r_1 | r_{i-1}**2"
    )
    stride: int = Field(default=1, ge=1, description="stride of every convolution")
    dilation: int = Field(default=1, ge=1, description="dilation of every convolution")
    pooling: Literal["none", "avg", "max"] = Field(
        default="none", description="2x2 stride-1 pooling after every convolution"
    )
    batch_norm: bool = Field(default=False, description="BatchNorm2d after every convolution")
    activation: Literal["relu", "leaky_relu"] = Field(default="relu", description="leaky_relu has slope 0.1")
    fc_layers: int = Field(default=5, ge=1, description="number of fully connected hidden layers")
    fc_width: int = Field(default=128, ge=1, description="units of every fully connected hidden layer")
    dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="dropout after hidden FC layers 2..fc_layers"
    )


def conv_channels(params: CNNParams, input_channels: int = INPUT_CHANNELS) -> list[int]:
    """Channel counts ``[c_1, ..., c_L]`` with ``c_i = floor(r_i c_{i-1})`` (see the module docstring)."""
    channels: list[int] = []
    c, r = input_channels, params.ratio
    for _ in range(params.conv_layers):
        c = math.floor(c * r + 1e-9)  # guard 2.0 * 128 = 255.999... style rounding
        if c < 1:
            raise QeframeError(f"cnn: ratio {params.ratio} leaves a convolution with no channels")
        channels.append(c)
        if params.ratio_type == "sqrt":
            r = math.sqrt(r)
        elif params.ratio_type == "square":
            r = r * r
    return channels


def spatial_sizes(params: CNNParams, dim: int) -> list[int]:
    """Side length of the feature maps after each convolution block, starting from ``dim``."""
    sizes = []
    s = dim
    for _ in range(params.conv_layers):
        s = (s - params.dilation * (params.kernel_size - 1) - 1) // params.stride + 1
        if params.pooling != "none":
            s -= 1
        sizes.append(s)
    return sizes


def _activation(name: str) -> torch.nn.Module:
    from torch import nn

    return nn.ReLU() if name == "relu" else nn.LeakyReLU(0.1)


_MODEL_CLASS: Any = None


def _model_class() -> Any:
    """The ``nn.Module`` class, defined on first use so that importing the plugin stays torch-free."""
    global _MODEL_CLASS
    if _MODEL_CLASS is not None:
        return _MODEL_CLASS

    import torch
    from torch import nn

    from qeframe.quantum.cuts import n_cuts

    class CNNModel(nn.Module):
        """Conv stack -> flatten -> fully connected stack -> one logit per cut (module docstring)."""

        def __init__(self, params: CNNParams, n_qubits: int) -> None:
            super().__init__()
            if n_qubits < 2:
                raise QeframeError(f"cnn: need at least 2 qubits, got {n_qubits}")
            self.n_qubits = n_qubits
            self.dim = 2**n_qubits
            sizes = spatial_sizes(params, self.dim)
            if min(sizes) < 1:
                raise QeframeError(
                    f"cnn: {params.conv_layers} convolutions of kernel {params.kernel_size} (stride "
                    f"{params.stride}, dilation {params.dilation}, pooling {params.pooling}) do not fit a "
                    f"{self.dim}x{self.dim} input (feature map sizes {sizes}); "
                    "use a smaller kernel_size or fewer conv_layers"
                )
            channels = conv_channels(params)
            layers: list[nn.Module] = []
            c_in = INPUT_CHANNELS
            for c_out in channels:
                layers.append(
                    nn.Conv2d(c_in, c_out, params.kernel_size, params.stride, dilation=params.dilation)
                )
                if params.batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(_activation(params.activation))
                if params.pooling == "avg":
                    layers.append(nn.AvgPool2d(2, stride=1))
                elif params.pooling == "max":
                    layers.append(nn.MaxPool2d(2, stride=1))
                c_in = c_out
            self.features = nn.Sequential(*layers)
            self.flat_dim = channels[-1] * sizes[-1] ** 2
            fc: list[nn.Module] = [nn.Linear(self.flat_dim, params.fc_width), _activation(params.activation)]
            for _ in range(params.fc_layers - 1):
                fc += [nn.Linear(params.fc_width, params.fc_width), _activation(params.activation)]
                if params.dropout > 0:
                    fc.append(nn.Dropout(params.dropout))
            self.classifier = nn.Sequential(*fc)
            self.head = nn.Linear(params.fc_width, n_cuts(n_qubits))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.ndim != 4 or tuple(x.shape[1:]) != (INPUT_CHANNELS, self.dim, self.dim):
                raise QeframeError(
                    f"cnn: expected input (B, 2, {self.dim}, {self.dim}) for {self.n_qubits} qubits, "
                    f"got {tuple(x.shape)}"
                )
            if x.device.type == "cpu":  # oneDNN's 2x2 convolutions run faster on NHWC (same values);
                # channels-last strides by permutation, which unlike .contiguous(memory_format=...)
                # also works under torch.func.vmap (stacked ensembles)
                x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
            return self.head(self.classifier(torch.flatten(self.features(x), 1)))

    CNNModel.__module__, CNNModel.__qualname__ = __name__, "CNNModel"
    _MODEL_CLASS = CNNModel
    return _MODEL_CLASS


def __getattr__(name: str) -> Any:  # PEP 562: `CNNModel` resolves lazily (pickle, docs)
    if name == "CNNModel":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CNNBackbone(Backbone):
    """The paper's CNN: conv layers with growing channels, five FC layers of 128, one logit per cut."""

    name = "cnn"
    description = "the paper's CNN: 3 conv layers (2x2, channels 32/128/256), 5 FC layers of 128"
    Params = CNNParams

    def build(self, n_qubits: int) -> torch.nn.Module:
        """A freshly initialised ``float32`` model for ``n_qubits`` qubits (PyTorch default init)."""
        return _model_class()(self.params, n_qubits)


@hookimpl
def qeframe_register_backbones(register):
    register(CNNBackbone)
