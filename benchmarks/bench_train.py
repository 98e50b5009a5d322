"""Benchmark training throughput: samples/s of plain and Siamese training for one backbone.

Trains on synthetic data (random mixed 3-qubit states with random per-cut labels, a fraction of
them unknown) resident on the device, exactly as ``qeframe run`` does, and writes
``benchmarks/results/train.json``::

    python benchmarks/bench_train.py --backbone cnn --samples 20000 --epochs 2
    python benchmarks/bench_train.py --backbone cnn --params '{"fc_width": 64}' --device cuda

Three configurations are timed for the same backbone:

* ``plain``: masked BCE only (the paper's CNN);
* ``siamese``: BCE plus two consistency terms with the symmetries ``--symmetries`` (default
  ``local_unitary`` and ``permutation``, the paper's triple Siamese network), both active from
  the first epoch;
* ``inference``: forward passes only (evaluation / ``classify``).

Samples/s counts training samples (original states), not symmetry views; ``samples_per_cpu_s``
divides by the process CPU time instead of the wall time (steadier on a shared machine). The first epoch of each
configuration is a warm-up and is not timed when ``--epochs`` > 1. The 1-minute load average
before and after is recorded: on a shared machine, other processes change the numbers a lot.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from _common import device_name, load_average, report_header, write_report


def _synthetic(n: int, n_qubits: int, seed: int, unknown: float):
    """``n`` random mixed states (rank 1..d Wishart) with random labels; returns DatasetArrays."""
    import numpy as np

    from qeframe.quantum.cuts import n_cuts
    from qeframe.train import DatasetArrays

    rng = np.random.default_rng(seed)
    d = 2**n_qubits
    g = rng.standard_normal((n, d, d)) + 1j * rng.standard_normal((n, d, d))
    g[:, :, rng.integers(1, d + 1) :] = 0
    rho = g @ g.conj().transpose(0, 2, 1)
    rho /= np.trace(rho, axis1=1, axis2=2).real[:, None, None]
    labels = rng.integers(0, 2, (n, n_cuts(n_qubits))).astype(np.int8)
    labels[rng.random(labels.shape) < unknown] = -1
    return DatasetArrays("synthetic", rho, labels)


def _time_training(registry, model_spec, training_spec, n_qubits, data, device) -> dict:
    from qeframe.train import Trainer

    trainer = Trainer(model_spec, training_spec, n_qubits, registry=registry, device=device)
    cpu_marks = [time.process_time()]
    result = trainer.fit(data, on_epoch_end=lambda record: cpu_marks.append(time.process_time()))
    skip = 1 if len(result.history) > 1 else 0
    timed = result.history[skip:]
    samples = sum(r["samples"] for r in timed)
    seconds = sum(r["train_time_s"] for r in timed)
    cpu_seconds = cpu_marks[-1] - cpu_marks[skip]
    return {
        "epochs_timed": len(timed),
        "samples": samples,
        "train_time_s": round(seconds, 4),
        "samples_per_s": round(samples / seconds, 1),
        "cpu_s": round(cpu_seconds, 4),
        "samples_per_cpu_s": round(samples / cpu_seconds, 1),
        "precision": trainer.precision,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "final_loss": result.history[-1]["loss"],
    }


def _time_inference(registry, model_spec, n_qubits, data, device, repeats: int = 3) -> dict:
    import torch

    from qeframe.train import autocast_dtype, model_input, predict_logits, resolve_device

    dev = resolve_device(device)
    model = registry.create("backbone", model_spec.backbone, model_spec.params).build(n_qubits).to(dev)
    x = model_input(data.rho, dev)
    amp = autocast_dtype("auto", dev)
    predict_logits(model, x[:1024], amp_dtype=amp)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        predict_logits(model, x, amp_dtype=amp)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    return {
        "samples": repeats * len(data),
        "seconds": round(seconds, 4),
        "samples_per_s": round(repeats * len(data) / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="cnn")
    parser.add_argument("--params", default="{}", help="backbone params as JSON")
    parser.add_argument("--n-qubits", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs per configuration (the first is warm-up)"
    )
    parser.add_argument(
        "--symmetries", default="local_unitary,permutation", help="comma-separated symmetry names"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--plugin", action="append", default=[], help="extra plugin module to register (import path)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train.json")
    args = parser.parse_args(argv)

    import torch

    from qeframe.registry import Registry
    from qeframe.specs import ModelSpec, SymmetryLoss, TrainingSpec
    from qeframe.train import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    registry = Registry.load(plugins=[(m, importlib.import_module(m)) for m in args.plugin])
    device = resolve_device(args.device)
    model_spec = ModelSpec(backbone=args.backbone, params=json.loads(args.params))
    data = _synthetic(args.samples, args.n_qubits, seed=0, unknown=0.2)
    symmetries = [
        SymmetryLoss(name=s.strip(), start_epoch=0, weight=0.5)
        for s in args.symmetries.split(",")
        if s.strip()
    ]
    base = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 0}
    configs = {
        "plain": TrainingSpec(**base),
        "siamese": TrainingSpec(**base, symmetries=symmetries),
    }
    load_before = os.getloadavg()
    rows = {}
    for name, spec in configs.items():
        rows[name] = _time_training(registry, model_spec, spec, args.n_qubits, data, device)
        print(f"{name:10s} {rows[name]['samples_per_s']:>12.1f} samples/s", file=sys.stderr)
    rows["inference"] = _time_inference(registry, model_spec, args.n_qubits, data, device)
    print(f"{'inference':10s} {rows['inference']['samples_per_s']:>12.1f} samples/s", file=sys.stderr)
    report = {
        **report_header("train"),
        "load_average_1min": load_average(load_before),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": device_name(device),
        "backbone": args.backbone,
        "params": model_spec.params,
        "n_qubits": args.n_qubits,
        "samples": args.samples,
        "batch_size": args.batch_size,
        "symmetries": [s.name for s in symmetries],
        "results": rows,
    }
    write_report(args.out, report)
    print(json.dumps(report["results"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
