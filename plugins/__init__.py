"""qeframe's built-in plugins, installed as the import package ``qeframe_plugins``.

The folder ``plugins/`` of the repository maps to ``qeframe_plugins`` (see ``[tool.setuptools]`` in
``pyproject.toml``). Each module is one plugin, registered through the ``qeframe`` entry-point group
exactly like a third-party plugin; the core never imports this package.
"""
