"""Collects the CLI commands that live in their own modules (each registers on ``qeframe.cli.app``)."""

from __future__ import annotations
