"""OpenMP wait policy and thread count: the paper CNN's training step under the machine's load.

Runs the plain training step of the paper's 3-qubit CNN (batch 128, random input, plain
BCE, forward + backward + Adam; 3 warm-up steps, then ``--steps`` timed) in one fresh process per
configuration, because OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads it:

* ``2 threads, wait policy unset`` (torch's and OpenMP's defaults: idle threads spin),
* ``2 threads, OMP_WAIT_POLICY=PASSIVE`` (what the ``qeframe`` command sets by default),
* ``1 thread``.

The configurations are interleaved ``--repeats`` times, and every line gives the 1-minute load
average, since the figures depend on what else runs on the machine. Prints one line per process::

    python benchmarks/bench_omp_wait.py --steps 40 --repeats 2

See docs/training-speed.md ("Threads under load") for figures measured on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CONFIGS = [(2, None), (2, "PASSIVE"), (1, None)]


def child(threads: int, steps: int) -> None:
    """Time ``steps`` training steps in this process and print one line."""
    import torch
    from qeframe_plugins.backbones.cnn import CNNBackbone

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CNNBackbone().build(3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(128, 2, 8, 8)
    y = (torch.rand(128, 3) > 0.5).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n = steps * 128
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(
        f"threads {threads}  OMP_WAIT_POLICY {policy:8s}  {n / wall:7.0f} samples/s  "
        f"{n / cpu:7.0f} samples/CPU-s  load {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.steps)
        return
    for _ in range(args.repeats):
        for threads, policy in CONFIGS:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
            if policy is not None:
                env["OMP_WAIT_POLICY"] = policy
            cmd = [sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps)]
            subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
