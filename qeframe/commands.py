"""Collects the CLI commands that live in their own modules (each registers on ``qeframe.cli.app``)."""

from __future__ import annotations

from qeframe import (
    cli_certify,  # noqa: F401
    cli_data,  # noqa: F401
    cli_run,  # noqa: F401
)
