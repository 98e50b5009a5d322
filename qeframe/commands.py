"""Collects the CLI commands that live in their own modules (each registers on ``qeframe.cli.app``)."""

from __future__ import annotations

from . import cli_data  # noqa: F401
from . import cli_run  # noqa: F401
from . import cli_certify  # noqa: F401
