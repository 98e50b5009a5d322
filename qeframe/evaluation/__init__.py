"""Evaluation of a trained model against the baselines, on the test datasets.

* :mod:`.evaluate` — the runner: the model, the gated model and the baselines on every test set.
* :mod:`.metrics` — the numbers: per-cut accuracy under the ``paper`` and ``correct`` label
  conventions, recall / false positives / abstention on proved PPT cuts, calibration; the
  ``results.json`` layout.
* :mod:`.tables` — the rendering: ``results.md`` and the terminal (test sets as rows, predictors as
  columns), and the comparison of several runs.
* :mod:`.plots` — the PNG plots of a run folder.
"""
