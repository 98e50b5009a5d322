"""Training throughput and FLOPs of the built-in backbones, plain and as a triple Siamese network.

For each backbone, qubit count and batch size this measures one optimiser step (Adam) on random
density matrices:

* ``plain``: forward, ``BCEWithLogits`` on random labels, backward, step;
* ``siamese``: the paper's triple Siamese step (Eq. 6) as qeframe's trainer runs it — the
  ``local_unitary`` and ``permutation`` symmetry plugins make two views of the batch (complex64,
  on the device), the original and both views go through the shared model (one concatenated
  batch of ``3B``: three forward passes worth of work), loss = BCE + 0.5 * the two L1
  consistency terms ``|p[b, j] - p_view[b, cut_map[b, j]]|``, backward, step.

Throughput is counted in original samples per second (a Siamese sample costs three model passes
plus the symmetry transforms): ``samples_per_s`` from the median step, ``best_samples_per_s``
from the fastest one — on a shared machine the best step is the steadier number; the 1-minute
load average before and after the run is recorded. FLOPs per sample are counted with
:class:`torch.utils.flop_counter.FlopCounterMode` (matmul, convolution and einsum-as-bmm work; the
elementwise work of activations and of the optimiser is not counted): the model's forward pass,
the model's forward plus backward pass, and the whole Siamese step (the three passes plus the
symmetry transforms).

Usage::

    .venv/bin/python benchmarks/bench_models.py                   # CPU, 2 threads, n = 3
    .venv/bin/python benchmarks/bench_models.py --device cuda --qubits 3,4 --batch-sizes 128,512,2048

Results go to ``benchmarks/results/models.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import qeframe
from qeframe.plugin.registry import Registry
from qeframe.quantum.cuts import n_cuts
from qeframe.quantum.torch_ops import to_model_input

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "models.json"


def random_batch(n: int, batch: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """``batch`` random rank-2 density matrices ``(B, d, d)`` complex64 on ``device``."""
    d = 2**n
    g = torch.randn((batch, d, 2, 2), generator=generator, dtype=torch.float32)
    g = torch.view_as_complex(g).to(device)
    rho = g @ g.mH
    return rho / torch.diagonal(rho, dim1=1, dim2=2).sum(-1).real[:, None, None]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Step:
    """One training step of ``model`` (plain or Siamese) on a fixed batch."""

    def __init__(
        self, model: torch.nn.Module, rho: torch.Tensor, siamese: bool, registry: Registry, seed: int
    ):
        self.model = model
        self.rho = rho
        self.x = to_model_input(rho).float()
        n = int(rho.shape[-1]).bit_length() - 1
        gen = torch.Generator().manual_seed(seed)
        self.y = (torch.rand((rho.shape[0], n_cuts(n)), generator=gen) < 0.5).float().to(rho.device)
        self.siamese = siamese
        self.symmetries = (
            [registry.create("symmetry", "local_unitary", {}), registry.create("symmetry", "permutation", {})]
            if siamese
            else []
        )
        self.generator = torch.Generator(device=rho.device).manual_seed(seed)
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss(self) -> torch.Tensor:
        if not self.siamese:
            return F.binary_cross_entropy_with_logits(self.model(self.x), self.y)
        inputs, maps = [self.x], []
        for sym in self.symmetries:
            view, cut_map = sym.apply(self.rho, self.generator)
            inputs.append(to_model_input(view).float())
            maps.append(cut_map)
        logits = self.model(torch.cat(inputs)).chunk(len(inputs))
        p = [torch.sigmoid(z) for z in logits]
        loss = F.binary_cross_entropy_with_logits(logits[0], self.y)
        for p_view, cut_map in zip(p[1:], maps):
            loss = loss + 0.5 * (p[0] - p_view.gather(1, cut_map)).abs().mean()
        return loss

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.loss().backward()
        self.opt.step()


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def time_steps(
    step: Step, device: torch.device, warmup: int, min_time: float, min_iters: int
) -> dict[str, float]:
    for _ in range(warmup):
        step()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    return {"iterations": len(times), "median_step_s": median, "best_step_s": times[0]}


def bench_one(
    registry: Registry,
    backbone: str,
    n: int,
    batch: int,
    mode: str,
    device: torch.device,
    args: argparse.Namespace,
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = registry.create("backbone", backbone, {}).build(n).to(device)
    rho = random_batch(n, batch, device, torch.Generator().manual_seed(1))
    step = Step(model, rho, mode == "siamese", registry, seed=2)
    params = sum(p.numel() for p in model.parameters())
    x1 = step.x[:1]
    forward = count_flops(lambda: model(x1))

    def fwd_bwd() -> None:
        model(x1).sum().backward()

    training = count_flops(fwd_bwd)
    model.zero_grad(set_to_none=True)
    step_flops = count_flops(lambda: step.loss().backward()) / batch
    model.zero_grad(set_to_none=True)
    timing = time_steps(step, device, args.warmup, args.min_time, args.min_iters)
    return {
        "backbone": backbone,
        "n_qubits": n,
        "batch_size": batch,
        "mode": mode,
        "parameters": params,
        "model_forward_flops_per_sample": forward,
        "model_train_flops_per_sample": training,
        "step_flops_per_sample": step_flops,
        "samples_per_s": batch / timing["median_step_s"],
        "best_samples_per_s": batch / timing["best_step_s"],
        **timing,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--backbones", default="cnn,tensor_network")
    parser.add_argument("--qubits", default="3", help="comma-separated qubit counts (default 3)")
    parser.add_argument("--batch-sizes", default="128,512")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-iters", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed steps per case")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    registry = Registry.load()
    load_before = os.getloadavg()
    results = []
    for backbone in args.backbones.split(","):
        for n in (int(q) for q in args.qubits.split(",")):
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                for mode in ("plain", "siamese"):
                    row = bench_one(registry, backbone, n, batch, mode, device, args)
                    results.append(row)
                    print(
                        f"{backbone:15s} n={n} B={batch:5d} {mode:8s} {row['samples_per_s']:10.1f} samples/s  "
                        f"fwd {row['model_forward_flops_per_sample'] / 1e6:8.2f} MFLOP/sample  "
                        f"step {row['step_flops_per_sample'] / 1e6:8.2f} MFLOP/sample",
                        flush=True,
                    )
    report = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "qeframe": qeframe.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": args.threads,
            "dtype": "float32",
            "optimizer": "Adam(lr=1e-3)",
            "siamese_loss": "BCE + 0.5 * L1(local_unitary view) + 0.5 * L1(permutation view)",
            "min_time_s": args.min_time,
            "cpu_count": os.cpu_count(),
            "loadavg_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
