"""Exceptions meant for people. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


class QeframeError(Exception):
    """Base class of every error caused by user input (specs, files, plugin names)."""


class UnknownComponentError(QeframeError, KeyError):
    """A plugin name that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginConflictError(QeframeError):
    """Two distributions register the same kind and name."""


class InvalidDensityMatrixError(QeframeError, ValueError):
    """An array that is not a batch of density matrices.

    Attributes:
        check: which check failed (``shape``, ``finite``, ``hermitian``, ``trace``, ``psd``).
        index: index of the first offending matrix in the batch (``None`` for shape errors).
    """

    def __init__(self, check: str, message: str, index: int | None = None):
        super().__init__(message)
        self.check = check
        self.index = index


class SpecError(QeframeError):
    """A ``registry.toml`` entry that does not validate; the message names the key."""


class StoreError(QeframeError):
    """A dataset store that is missing, incomplete, or inconsistent."""
