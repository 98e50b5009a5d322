"""qeframe-example-family: an example third-party qeframe plugin.

It adds one :class:`~qeframe.plugin.interfaces.StateFamily`, ``werner_ghz`` (see
:mod:`qeframe_example_family.werner_ghz`), through an entry point in the ``qeframe`` group, exactly
as qeframe declares its own built-in plugins.
"""

from __future__ import annotations

__version__ = "0.1.0"
