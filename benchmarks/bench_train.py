"""Benchmark training throughput: samples/s of plain and Siamese training for one backbone.

Trains on synthetic data (random mixed 3-qubit states with random per-cut labels, a fraction of
them unknown) resident on the device, exactly as ``qeframe run`` does, and writes
``benchmarks/results/train.json``::

    python benchmarks/bench_train.py --backbone cnn --samples 20000 --epochs 2
    python benchmarks/bench_train.py --backbone cnn --params '{"fc_width": 64}' --device cuda
    python benchmarks/bench_train.py --device cuda --samples 51200 --compile \
        --out benchmarks/results/train_cuda_cnn.json          # the GPU step at the floor

Configurations timed for the same backbone, in one process:

* ``plain``: masked BCE only (the paper's CNN);
* ``siamese``: BCE plus two consistency terms with the symmetries ``--symmetries`` (default
  ``local_unitary`` and ``permutation``, the paper's triple Siamese network), both active from
  the first epoch, the original and the views in one fused forward pass (what the trainer does);
  ``--symmetry-fraction f`` gives views to a share ``f`` of each batch;
* ``siamese_unfused``: the same loss with one forward pass per branch — the reference that shows
  what fusing the views saves (skip it with ``--no-unfused``);
* with ``--compile``: ``plain_compiled`` and ``siamese_compiled``, the same steps through
  ``torch.compile`` (``training.compile``: Inductor; CUDA graphs on one GPU);
* ``inference``: forward passes only (evaluation / ``classify``).

Samples/s counts training samples (original states), not symmetry views; ``samples_per_cpu_s``
divides by the process CPU time instead of the wall time (steadier on a shared machine). The first
epoch of each configuration is a warm-up (with ``--compile``: the compilation) and is not timed
when ``--epochs`` > 1; its wall time is recorded as ``warmup_s``. ``ratios`` compares
configurations measured in this run (the figures that count on a shared machine); ``previous``
holds the figures of the report this run replaces (same ``--out``), for comparison. The 1-minute
load average before and after is recorded: on a shared machine, other processes change the
numbers a lot.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

from _common import device_name, load_average, report_header, write_report


def _synthetic(n: int, n_qubits: int, seed: int, unknown: float):
    """``n`` random mixed states (rank 1..d Wishart) with random labels; returns DatasetArrays."""
    import numpy as np

    from qeframe.learn.arrays import DatasetArrays
    from qeframe.quantum.cuts import n_cuts

    rng = np.random.default_rng(seed)
    d = 2**n_qubits
    g = rng.standard_normal((n, d, d)) + 1j * rng.standard_normal((n, d, d))
    g[:, :, rng.integers(1, d + 1) :] = 0
    rho = g @ g.conj().transpose(0, 2, 1)
    rho /= np.trace(rho, axis1=1, axis2=2).real[:, None, None]
    labels = rng.integers(0, 2, (n, n_cuts(n_qubits))).astype(np.int8)
    labels[rng.random(labels.shape) < unknown] = -1
    return DatasetArrays("synthetic", rho, labels)


def unfused_loss(model, inputs, labels, cut_maps, *args, **kwargs):
    """:func:`qeframe.learn.losses.fused_loss` with one forward pass per Siamese branch (the reference)."""
    import torch

    from qeframe.learn.losses import fused_loss

    b = labels.shape[0]
    v = cut_maps[0].shape[0] if cut_maps else 0
    bounds = [0, b, *(b + (i + 1) * v for i in range(len(cut_maps)))]

    def per_branch(x):
        return torch.cat([model(x[lo:hi]) for lo, hi in itertools.pairwise(bounds)])

    return fused_loss(per_branch, inputs, labels, cut_maps, *args, **kwargs)


def _time_training(registry, model_spec, training_spec, n_qubits, data, device, unfused=False) -> dict:
    from qeframe.learn.train import Trainer

    trainer = Trainer(model_spec, training_spec, n_qubits, registry=registry, device=device)
    if unfused:
        trainer._loss_fn = unfused_loss
    cpu_marks = [time.process_time()]
    result = trainer.fit(data, on_epoch_end=lambda record: cpu_marks.append(time.process_time()))
    skip = 1 if len(result.history) > 1 else 0
    timed = result.history[skip:]
    samples = sum(r["samples"] for r in timed)
    seconds = sum(r["train_time_s"] for r in timed)
    cpu_seconds = cpu_marks[-1] - cpu_marks[skip]
    return {
        "epochs_timed": len(timed),
        "warmup_s": round(result.history[0]["time_s"], 4) if skip else None,
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

    from qeframe.learn.arrays import autocast_dtype, model_input, predict_logits, resolve_device

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


#: (name, numerator, denominator): throughput ratios of configurations timed in the same run
RATIOS = [
    ("siamese_over_plain", "siamese", "plain"),
    ("fused_over_unfused", "siamese", "siamese_unfused"),
    ("plain_compiled_over_eager", "plain_compiled", "plain"),
    ("siamese_compiled_over_eager", "siamese_compiled", "siamese"),
]


def _ratios(rows: dict) -> dict:
    """Throughput ratios (wall and CPU) between configurations of this run."""
    out = {}
    for name, a, b in RATIOS:
        if a in rows and b in rows:
            out[name] = {
                key: round(rows[a][key] / rows[b][key], 3) for key in ("samples_per_s", "samples_per_cpu_s")
            }
    return out


def _previous(path: Path) -> dict | None:
    """The throughput figures of the report at ``path`` (the one this run replaces), if any."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keep = ("samples_per_s", "samples_per_cpu_s")
    return {
        "date": old.get("date"),
        "device_name": old.get("device_name"),
        "torch": old.get("torch"),
        "load_average_1min": old.get("load_average_1min"),
        "results": {
            name: {k: row[k] for k in keep if k in row} for name, row in old.get("results", {}).items()
        },
        "ratios": old.get("ratios"),
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
    parser.add_argument(
        "--symmetry-fraction", type=float, default=1.0, help="training.symmetry_fraction of the Siamese runs"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time the steps through torch.compile (training.compile)"
    )
    parser.add_argument(
        "--no-unfused", action="store_true", help="skip the unfused Siamese reference (one pass per branch)"
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

    from qeframe.config.specs import ModelSpec, SymmetryLoss, TrainingSpec
    from qeframe.learn.arrays import resolve_device
    from qeframe.plugin.registry import Registry

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
    siamese = {**base, "symmetries": symmetries, "symmetry_fraction": args.symmetry_fraction}
    configs: dict[str, tuple[TrainingSpec, bool]] = {
        "plain": (TrainingSpec(**base), False),
        "siamese": (TrainingSpec(**siamese), False),
    }
    if not args.no_unfused:
        configs["siamese_unfused"] = (TrainingSpec(**siamese), True)
    if args.compile:
        configs["plain_compiled"] = (TrainingSpec(**base, compile=True), False)
        configs["siamese_compiled"] = (TrainingSpec(**siamese, compile=True), False)
    previous = _previous(args.out)
    load_before = os.getloadavg()
    rows = {}
    for name, (spec, unfused) in configs.items():
        rows[name] = _time_training(registry, model_spec, spec, args.n_qubits, data, device, unfused=unfused)
        print(f"{name:18s} {rows[name]['samples_per_s']:>12.1f} samples/s", file=sys.stderr)
    rows["inference"] = _time_inference(registry, model_spec, args.n_qubits, data, device)
    print(f"{'inference':18s} {rows['inference']['samples_per_s']:>12.1f} samples/s", file=sys.stderr)
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
        "symmetry_fraction": args.symmetry_fraction,
        "resident": "the whole training set is one tensor on the device; batches are index gathers",
        "results": rows,
        "ratios": _ratios(rows),
        "previous": previous,
    }
    write_report(args.out, report)
    print(json.dumps({"results": report["results"], "ratios": report["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
