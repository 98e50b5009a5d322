"""The ``qeframe`` command line (:func:`main` is the ``qeframe`` script).

``base`` holds the typer app, shared options and helpers; ``run`` (run, classify, evaluate, list...),
``data`` (``qeframe data ...``), ``certify`` and ``results`` (``qeframe results ...``) register their
commands on it when this package is imported.
"""

from __future__ import annotations

from qeframe.cli import certify, data, results, run  # noqa: F401  (importing registers the commands on `app`)
from qeframe.cli.base import app, main

__all__ = ["app", "main"]
