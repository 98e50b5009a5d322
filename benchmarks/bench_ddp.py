"""Benchmark data-parallel training: samples/s with 1 and K processes (torchrun, DDP).

For every process count K in ``--nprocs`` the script starts a fresh training job — K = 1 as one
ordinary process (no process group, the baseline), K > 1 as
``python -m torch.distributed.run --standalone --nproc_per_node=K`` (torchrun) of this same script
in ``--worker`` mode — and writes ``benchmarks/results/ddp.json``::

    # on a machine with K GPUs (nccl): 1 GPU against K GPUs
    python benchmarks/bench_ddp.py --device cuda --nprocs 1 2 4 8 --samples 200000 --epochs 3
    # on the CPU (gloo): 1 process against 2, the cores shared out between the processes
    python benchmarks/bench_ddp.py --device cpu --nprocs 1 2

Each job trains the same model on the same synthetic data (random mixed states with random
per-cut labels, a fraction unknown; see ``bench_train.py``) with the same global batch, in two
configurations: ``plain`` (masked BCE) and ``siamese`` (plus the consistency terms of
``--symmetries``, active from the first epoch). The first epoch is a warm-up; samples/s is the
number of training samples of the later epochs over rank 0's wall time for them (all ranks step
together). ``speedup`` is the rate over the K = 1 rate, ``efficiency`` the speedup over K. The
final training loss of every job is recorded as well: data-parallel training computes the
single-process updates, so it agrees across K to floating-point noise.

Each process uses one device: ``cuda:LOCAL_RANK`` on GPUs; on the CPU one core
(``--threads-per-proc``, default 1), the CPU analogue of one GPU per process, so K processes use
K cores. ``--threads-per-proc 0`` gives each process ``cpu_count // K`` threads instead (all K
use the same cores). The 1-minute load average before and after each job is recorded: on a
shared machine other processes change the numbers a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import device_name, load_average, report_header, write_report

HERE = Path(__file__).resolve().parent


def _configs(args: argparse.Namespace) -> dict:
    from qeframe.config.specs import SymmetryLoss, TrainingSpec

    base = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 0, "select": "last"}
    symmetries = [
        SymmetryLoss(name=s.strip(), start_epoch=0, weight=0.5)
        for s in args.symmetries.split(",")
        if s.strip()
    ]
    return {"plain": TrainingSpec(**base), "siamese": TrainingSpec(**base, symmetries=symmetries)}


def worker(args: argparse.Namespace) -> None:
    """One process of a job: train every configuration, rank 0 writes ``--worker`` JSON."""
    import torch
    from bench_train import _synthetic

    from qeframe.config.specs import ModelSpec
    from qeframe.learn.arrays import resolve_device
    from qeframe.learn.distributed import SINGLE, init_distributed, shutdown, torchrun_env
    from qeframe.learn.train import Trainer
    from qeframe.plugin.registry import Registry

    torch.set_num_threads(args.threads)
    if torchrun_env() is not None:
        ctx, device = init_distributed(args.device)
    else:
        ctx, device = SINGLE, resolve_device(args.device)
    try:
        registry = Registry.load()
        model_spec = ModelSpec(backbone=args.backbone, params=json.loads(args.params))
        data = _synthetic(args.samples, args.n_qubits, seed=0, unknown=0.2)
        rows = {}
        for name, training in _configs(args).items():
            trainer = Trainer(
                model_spec,
                training,
                args.n_qubits,
                registry=registry,
                device=device,
                distributed=ctx if ctx.enabled else None,
            )
            cpu0 = time.process_time()
            result = trainer.fit(data)
            timed = result.history[1:] if len(result.history) > 1 else result.history
            samples = sum(r["samples"] for r in timed)
            seconds = sum(r["train_time_s"] for r in timed)
            rows[name] = {
                "epochs_timed": len(timed),
                "samples": samples,
                "train_time_s": round(seconds, 4),
                "samples_per_s": round(samples / seconds, 1),
                "rank0_cpu_s_all_epochs": round(time.process_time() - cpu0, 3),
                "final_loss": result.history[-1]["loss"],
                "precision": trainer.precision,
            }
        if ctx.is_main:
            info = {
                "world_size": ctx.world_size,
                "backend": ctx.backend,
                "device": str(device),
                "device_name": device_name(device),
                "torch_threads": torch.get_num_threads(),
                "results": rows,
            }
            Path(args.worker).write_text(json.dumps(info, indent=2))
    finally:
        shutdown(ctx)


def _job(k: int, args: argparse.Namespace, passthrough: list[str]) -> dict:
    """Run one job of ``k`` processes in a subprocess; its rank 0's JSON."""
    cpus = os.cpu_count() or 1
    threads = args.threads_per_proc if args.threads_per_proc else max(1, cpus // k)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "worker.json"
        script = [
            str(Path(__file__).resolve()),
            "--worker",
            str(out),
            "--threads",
            str(threads),
            *passthrough,
        ]
        if k == 1:
            cmd = [sys.executable, *script]
        else:
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={k}",
                *script,
            ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(key, None)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"job with {k} processes failed (exit {done.returncode})")
        info = json.loads(out.read_text())
    info["job_wall_s"] = round(time.perf_counter() - t0, 2)
    info["load_average_1min"] = load_average(load_before)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2], help="process counts K to time")
    parser.add_argument("--backbone", default="cnn")
    parser.add_argument("--params", default="{}", help="backbone params as JSON")
    parser.add_argument("--n-qubits", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch (split over K)")
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per configuration (the first is warm-up)"
    )
    parser.add_argument(
        "--symmetries", default="local_unitary,permutation", help="comma-separated symmetry names"
    )
    parser.add_argument(
        "--device", default="auto", help="auto | cpu | cuda (each process uses cuda:LOCAL_RANK)"
    )
    parser.add_argument(
        "--threads-per-proc", type=int, default=1, help="CPU threads per process (0: cpu_count // K)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ddp.json")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    passthrough = [
        "--backbone", args.backbone, "--params", args.params, "--n-qubits", str(args.n_qubits),
        "--samples", str(args.samples), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
        "--symmetries", args.symmetries, "--device", args.device,
    ]  # fmt: skip
    jobs = {}
    for k in args.nprocs:
        jobs[str(k)] = _job(k, args, passthrough)
        rates = ", ".join(f"{n} {r['samples_per_s']:.1f}" for n, r in jobs[str(k)]["results"].items())
        print(f"K={k}: {rates} samples/s", file=sys.stderr)
    base = jobs.get("1")
    for k, job in jobs.items():
        for name, row in job["results"].items():
            if base is not None:
                speedup = row["samples_per_s"] / base["results"][name]["samples_per_s"]
                row["speedup"] = round(speedup, 3)
                row["efficiency"] = round(speedup / int(k), 3)
    first = next(iter(jobs.values()))
    report = {
        **report_header("ddp"),
        "device": first["device"].split(":")[0],
        "device_name": first["device_name"],
        "backbone": args.backbone,
        "params": json.loads(args.params),
        "n_qubits": args.n_qubits,
        "samples": args.samples,
        "global_batch_size": args.batch_size,
        "epochs": args.epochs,
        "symmetries": [s for s in args.symmetries.split(",") if s],
        "jobs": jobs,
    }
    write_report(args.out, report)
    summary = {
        k: {
            n: {"samples_per_s": r["samples_per_s"], "speedup": r.get("speedup")}
            for n, r in j["results"].items()
        }
        for k, j in jobs.items()
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
