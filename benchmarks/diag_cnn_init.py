"""Why the paper's CNN is constant at 4+ qubits: the state-dependent part of its output at initialisation.

For Haar-random n-qubit states it prints, per ReLU, the spread of the activations across states
relative to their mean size, and for the logits ``std across states / mean |logit|`` — with the
paper's configuration and with ``batch_norm = true``. Used in docs/n-qubits.md::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diag_cnn_init.py
"""

from __future__ import annotations

import numpy as np
import torch

from qeframe.plugin.registry import get_registry
from qeframe.quantum import torch_ops


@torch.no_grad()
def main() -> None:
    reg = get_registry()
    for n in (3, 4, 5):
        fam = reg.create("family", "haar", {"kind": "entangled"})
        rho = torch.as_tensor(fam.generate(256, np.random.default_rng(0), n).rho)
        x = torch_ops.to_model_input(rho, torch.float32)
        for bn in (False, True):
            torch.manual_seed(0)
            model = reg.create("backbone", "cnn", {"batch_norm": bn}).build(n).train()
            h, spread = x, []
            for layer in [*model.features, torch.nn.Flatten(1), *model.classifier]:
                h = layer(h)
                if isinstance(layer, torch.nn.ReLU):
                    spread.append(float(h.std(0).mean() / (h.abs().mean() + 1e-12)))
            out = model.head(h)
            ratio = float(out.std(0).mean() / out.abs().mean())
            print(
                f"n={n} batch_norm={bn!s:5} input mean |x| {float(x.abs().mean()):.1e}  "
                f"per-ReLU spread {' '.join(f'{s:.3f}' for s in spread)}  logit spread/size {ratio:.1e}"
            )


if __name__ == "__main__":
    main()
