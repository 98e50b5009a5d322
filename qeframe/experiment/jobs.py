"""Child processes for :func:`qeframe.experiment.run_many` (``qeframe run A B C --jobs 3``).

A training step of the paper's networks (about a million weights, batches of 128 matrices of 8x8) is
bound by Python and kernel-launch overhead, not by the GPU: on one H100 six ``qeframe run``
processes sharing the GPU each kept about 86 % of their solo speed (``docs/reproducing.md``,
"Speed on the H100"). So the way to use one GPU for many experiments is to run them at the same
time, one process each. This module does that:

* the parent (:func:`~qeframe.experiment.run_many`) has already checked every experiment and built
  every dataset they read (once, with all cores), so the children only load stores;
* :func:`run_jobs` starts at most ``jobs`` children ``python -m qeframe.cli run EXPERIMENT --json
  --progress ...`` at a time, in the order given, and starts the next one when one ends;
* each child writes its progress (stderr: one line per epoch) to ``<log_dir>/<experiment>.log`` and
  its JSON result (stdout) to ``<log_dir>/<experiment>.json``; the run folder it created is read from that JSON;
* a failing child does not stop the others; its status says ``failed`` with the last line of its log.

The children inherit the environment; unless the user set ``OMP_NUM_THREADS``, each gets
``max(1, cores // jobs)`` CPU threads so that ``jobs`` processes do not oversubscribe the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class Job:
    """One experiment run as a child process.

    Attributes:
        experiment: experiment name.
        command: the child's command line.
        log: file with the child's stderr (progress bars, epoch lines, errors).
        result: file with the child's stdout (``qeframe run --json`` output).
        status: ``pending``, ``running``, ``done`` or ``failed``.
        returncode: the child's exit status once it ended.
        started, ended: ``time.monotonic()`` stamps.
        run: the run folder the child reported (``None`` until it ends successfully).
        error: the last non-empty line of the log of a failed child.
    """

    experiment: str
    command: list[str]
    log: Path
    result: Path
    status: str = "pending"
    returncode: int | None = None
    started: float | None = None
    ended: float | None = None
    run: str | None = None
    error: str | None = None
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _files: tuple[IO[Any], ...] = field(default=(), repr=False)

    @property
    def wall_s(self) -> float | None:
        """Seconds from start to end (``None`` before the end)."""
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    def record(self) -> dict[str, Any]:
        """The job as JSON (``qeframe run ... --json`` with several experiments)."""
        wall = self.wall_s
        return {
            "experiment": self.experiment,
            "status": self.status,
            "returncode": self.returncode,
            "wall_s": None if wall is None else round(wall, 1),
            "run": self.run,
            "log": str(self.log),
            "error": self.error,
        }


def child_command(
    experiment: str,
    *,
    registry: Path,
    data_dir: Path,
    runs_dir: Path,
    device: str,
    epochs: int | None = None,
    compile: bool = False,
) -> list[str]:
    """``python -m qeframe.cli run EXPERIMENT --json`` with the parent's registry, folders, device
    and ``--epochs`` / ``--compile`` overrides."""
    command = [
        sys.executable, "-m", "qeframe.cli", "run", experiment,
        "--registry", str(registry),
        "--data-dir", str(data_dir),
        "--runs-dir", str(runs_dir),
        "--device", device,
        "--json", "--progress",
    ]  # fmt: skip
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if compile:
        command.append("--compile")
    return command


def child_environment(jobs: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The children's environment: ``base`` (default ``os.environ``) with ``OMP_NUM_THREADS`` set to
    ``max(1, cores // jobs)`` unless it is set already."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(jobs, 1))))
    return env


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


def _start(job: Job, env: dict[str, str]) -> None:
    job.log.parent.mkdir(parents=True, exist_ok=True)
    out = job.result.open("w")
    err = job.log.open("w")
    job._files = (out, err)
    job._process = subprocess.Popen(job.command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    job.started = time.monotonic()
    job.status = "running"


def _finish(job: Job, returncode: int) -> None:
    job.ended = time.monotonic()
    job.returncode = returncode
    for f in job._files:
        f.close()
    job._files = ()
    job._process = None
    payload: dict[str, Any] | None = None
    try:
        payload = json.loads(job.result.read_text())
    except (OSError, ValueError):
        payload = None
    if returncode == 0 and isinstance(payload, dict) and payload.get("run"):
        job.status = "done"
        job.run = str(payload["run"])
    else:
        job.status = "failed"
        job.error = _last_line(job.log) or f"exit status {returncode}"


def run_jobs(
    jobs: Sequence[Job],
    max_parallel: int,
    *,
    env: dict[str, str] | None = None,
    poll_s: float = 0.5,
    on_change: Callable[[Job], None] | None = None,
) -> list[Job]:
    """Run ``jobs`` with at most ``max_parallel`` children at a time, in order; returns them ended.

    ``on_change(job)`` is called when a job starts and when it ends. On ``KeyboardInterrupt`` the
    running children are terminated (then killed after 10 s) and the interrupt is re-raised.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    env = child_environment(max_parallel) if env is None else env
    pending = list(jobs)
    running: list[Job] = []
    try:
        while pending or running:
            while pending and len(running) < max_parallel:
                job = pending.pop(0)
                _start(job, env)
                running.append(job)
                if on_change is not None:
                    on_change(job)
            for job in list(running):
                assert job._process is not None
                code = job._process.poll()
                if code is not None:
                    _finish(job, code)
                    running.remove(job)
                    if on_change is not None:
                        on_change(job)
            if running:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        for job in running:
            if job._process is not None:
                job._process.terminate()
        for job in running:
            if job._process is not None:
                try:
                    job._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    job._process.kill()
                    job._process.wait()
                _finish(job, job._process.returncode if job._process else -1)
        raise
    return list(jobs)
