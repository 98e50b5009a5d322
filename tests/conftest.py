"""Shared test setup. The suite mirrors the package: ``tests/<room>/`` tests ``qeframe/<room>/``
(``tests/plugins/`` the built-in plugins of ``plugins/``, ``tests/docs/`` the documentation), and
``tests/test_architecture.py`` / ``tests/test_python_api.py`` the package as a whole.

The helpers live here, at the top of ``tests/`` (pytest puts this folder on ``sys.path`` because
this ``conftest.py`` is in it, so every test imports them by name):

* :mod:`train_plugins` — test-only backbone, symmetries and the ``test-toy`` family; synthetic
  arrays; the ``toy`` registry of the ``qeframe run`` tests (``REGISTRY_TOML``); a tiny trained run;
* :mod:`store_plugins` — test-only families for the store, shard and ``qeframe data`` tests;
* the fixtures ``qeframe_registry`` and ``qeframe_cli`` come from :mod:`qeframe.testing`, the
  ``pytest11`` plugin that plugin authors get too; ``registry`` below is the common case.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def registry(qeframe_registry):
    """The process registry with the training test plugins and the ``negativity`` labeler only
    (test modules that need more plugins define their own ``registry``)."""
    import train_plugins
    from qeframe_plugins.labelers import negativity

    return qeframe_registry(train_plugins, negativity, entry_points=False)
