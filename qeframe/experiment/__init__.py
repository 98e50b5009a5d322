"""Experiments end to end, the library face of ``qeframe run``.

* :func:`run_experiment` — one experiment of ``registry.toml``: check it, build its missing
  datasets, train (one model, data-parallel under torchrun, or an ensemble), evaluate and write
  the run folder ``runs/<experiment>/<run-id>/`` (:mod:`.single`, :mod:`.ensemble`);
* :func:`run_many` — several experiments, each in a child process, ``jobs`` at a time, and the
  comparison of their results (:mod:`.many`, :mod:`.jobs`).

Both return the numbers (``results.json``'s document) and write the same files as the command
line, which only parses arguments and prints. Example (``docs/python-api.md``)::

    from qeframe.experiment import run_experiment
    result = run_experiment("quickstart", epochs=1)
    result.results["quickstart-test-mixed"]["balanced"]["model"]["mean"]
"""

from __future__ import annotations

from qeframe.experiment.many import ManyResult, run_many
from qeframe.experiment.single import ExperimentResult, RunOptions, check_experiment, run_experiment

__all__ = ["ExperimentResult", "ManyResult", "RunOptions", "check_experiment", "run_experiment", "run_many"]
