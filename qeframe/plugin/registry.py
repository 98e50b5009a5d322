"""The plugin registry: loads every distribution's ``qeframe`` entry points and indexes components.

Discovery uses :func:`importlib.metadata.entry_points` (the standard library; the old
``entrypoints`` package is in maintenance mode and points new code here, and pluggy uses it too).
The built-in plugins are declared in qeframe's own ``pyproject.toml`` under
``[project.entry-points.qeframe]`` exactly as a third-party distribution would declare its own.

* A plugin module that fails to import, or whose hook raises, is recorded as *broken* with its
  distribution and the exception, and contributes no components (what it registered before
  failing is withdrawn); every other plugin keeps working.
* Two distributions registering the same kind and name raise :class:`PluginConflictError` naming both.
* ``QEFRAME_DISABLE_PLUGINS=name1,name2`` blocks entry points by name (e.g. ``family.upb``) or by
  distribution name; ``QEFRAME_TRACE_PLUGINS=1`` prints every hook call (pluggy monitoring).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata as importlib_metadata
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import ValidationError

from qeframe.errors import PluginConflictError, SpecError, UnknownComponentError
from qeframe.plugin import hookspecs
from qeframe.plugin.interfaces import KINDS, Component

ENTRY_POINT_GROUP = "qeframe"

_HOOK_OF_KIND = {
    "family": "qeframe_register_families",
    "labeler": "qeframe_register_labelers",
    "symmetry": "qeframe_register_symmetries",
    "backbone": "qeframe_register_backbones",
    "router": "qeframe_register_routers",
    "baseline": "qeframe_register_baselines",
    "executor": "qeframe_register_executors",
}


@dataclass(frozen=True)
class ComponentInfo:
    """One registered component: what it is and who provides it."""

    kind: str
    name: str
    cls: type[Component]
    plugin: str
    distribution: str
    version: str

    @property
    def description(self) -> str:
        if self.cls.description:
            return self.cls.description
        doc = (self.cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded or whose hook failed."""

    plugin: str
    distribution: str
    version: str
    error: str


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``key.path: message (allowed ...)``, keys prefixed with ``prefix``."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        key = ".".join(p for p in (prefix, loc) if p)
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key or '<root>'}: {msg}")
    return "; ".join(lines)


class Registry:
    """Components by kind and name, loaded through pluggy from entry points and explicit plugins."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._components: dict[tuple[str, str], ComponentInfo] = {}
        self.broken: list[BrokenPlugin] = []
        self._dist_of: dict[str, tuple[str, str]] = {}
        self.tracing = False

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        *,
        entry_points: bool = True,
        plugins: Iterable[tuple[str, Any]] = (),
        disabled: Iterable[str] | None = None,
    ) -> Registry:
        """Build a registry from the installed entry points and/or explicit ``(name, plugin)`` pairs.

        ``disabled`` defaults to ``$QEFRAME_DISABLE_PLUGINS`` (comma-separated).
        """
        reg = cls()
        if disabled is None:
            disabled = [
                s.strip() for s in os.environ.get("QEFRAME_DISABLE_PLUGINS", "").split(",") if s.strip()
            ]
        blocked = set(disabled)
        if os.environ.get("QEFRAME_TRACE_PLUGINS"):
            # Hooks are called one implementation at a time (to isolate broken plugins), so the
            # registry prints each call itself; pluggy's tracing covers any other hook call.
            reg.tracing = True
            reg.pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            reg.pm.enable_tracing()
        if entry_points:
            for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else "<unknown>"
                version = ep.dist.version if ep.dist is not None else ""
                if ep.name in blocked or dist in blocked:
                    reg.pm.set_blocked(ep.name)
                    continue
                if reg.pm.get_plugin(ep.name) is not None or reg.pm.is_blocked(ep.name):
                    continue
                try:
                    plugin = ep.load()
                except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the others down
                    reg.broken.append(BrokenPlugin(ep.name, dist, version, f"{type(exc).__name__}: {exc}"))
                    continue
                reg._add_plugin(ep.name, plugin, dist, version)
        for name, plugin in plugins:
            reg._add_plugin(name, plugin, "<local>", "")
        reg._collect()
        return reg

    def _add_plugin(self, name: str, plugin: Any, dist: str, version: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - unknown hook names, duplicate registration, ...
            self.broken.append(BrokenPlugin(name, dist, version, f"{type(exc).__name__}: {exc}"))
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self.broken.append(BrokenPlugin(name, dist, version, f"PluginValidationError: {exc}"))
            return
        self._dist_of[name] = (dist, version)

    def _collect(self) -> None:
        failed: set[str] = set()
        for kind, hook_name in _HOOK_OF_KIND.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order (pluggy stores them so; calls are LIFO)
                plugin_name = impl.plugin_name
                if plugin_name in failed:
                    continue
                dist, version = self._dist_of.get(plugin_name, ("<local>", ""))

                def register(
                    component: type[Component], _k=kind, _p=plugin_name, _d=dist, _v=version
                ) -> None:
                    self._register_component(_k, component, _p, _d, _v)

                if self.tracing:
                    print(f"qeframe: {hook_name} -> plugin {plugin_name} ({dist} {version})", file=sys.stderr)
                try:
                    impl.function(register=register)
                except PluginConflictError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a failing hook is reported, the rest keep working
                    self.broken.append(
                        BrokenPlugin(plugin_name, dist, version, f"{type(exc).__name__}: {exc}")
                    )
                    self._drop_plugin(plugin_name)
                    failed.add(plugin_name)

    def _drop_plugin(self, name: str) -> None:
        """Forget a plugin whose hook failed: its components, its version record, its hooks."""
        for key in [k for k, c in self._components.items() if c.plugin == name]:
            del self._components[key]
        self._dist_of.pop(name, None)
        self.pm.unregister(name=name)

    def _register_component(
        self, kind: str, component: type[Component], plugin: str, dist: str, version: str
    ) -> None:
        base = KINDS[kind]
        if not (isinstance(component, type) and issubclass(component, base)):
            raise TypeError(f"{component!r} registered as a {kind} is not a subclass of {base.__name__}")
        if not component.name:
            raise TypeError(f"{component.__name__} has no `name`")
        key = (kind, component.name)
        if key in self._components:
            other = self._components[key]
            raise PluginConflictError(
                f"two plugins register the {kind} {component.name!r}: "
                f"{other.distribution} {other.version} (plugin {other.plugin}) and "
                f"{dist} {version} (plugin {plugin}); uninstall one or block it with QEFRAME_DISABLE_PLUGINS"
            )
        self._components[key] = ComponentInfo(kind, component.name, component, plugin, dist, version)

    # ------------------------------------------------------------------ lookup
    def components(self, kind: str | None = None, pattern: str = "*") -> list[ComponentInfo]:
        """Registered components, optionally of one kind and matching a glob ``pattern``."""
        return sorted(
            (
                c
                for (k, n), c in self._components.items()
                if (kind is None or k == kind) and fnmatch.fnmatch(n, pattern)
            ),
            key=lambda c: (list(KINDS).index(c.kind), c.name),
        )

    def names(self, kind: str) -> list[str]:
        return [c.name for c in self.components(kind)]

    def info(self, kind: str, name: str) -> ComponentInfo:
        if kind not in KINDS:
            raise UnknownComponentError(f"unknown component kind {kind!r}; allowed: {', '.join(KINDS)}")
        try:
            return self._components[(kind, name)]
        except KeyError:
            available = ", ".join(self.names(kind)) or "none installed"
            raise UnknownComponentError(f"unknown {kind} {name!r}; available: {available}") from None

    def get(self, kind: str, name: str) -> type[Component]:
        """The component class registered as ``kind``/``name``; the error lists the available names."""
        return self.info(kind, name).cls

    def create(
        self,
        kind: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str = "",
        name_key: str = "",
    ) -> Component:
        """Validate ``params`` with the component's ``Params`` model and construct it.

        ``key`` is the ``registry.toml`` location of the params, used to name bad keys in errors;
        ``name_key`` the location of the name, which starts the error of an unknown name.
        """
        try:
            cls = self.get(kind, name)
        except UnknownComponentError as exc:
            if not name_key:
                raise
            raise UnknownComponentError(f"{name_key}: {exc}") from None
        try:
            validated = cls.Params.model_validate(dict(params or {}))
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, key or f"{kind}.{name}.params")) from None
        return cls(validated)

    def plugin_versions(self) -> dict[str, dict[str, str]]:
        """``{plugin name: {"distribution": ..., "version": ...}}`` for run records."""
        return {name: {"distribution": d, "version": v} for name, (d, v) in sorted(self._dist_of.items())}


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry of installed plugins (loaded on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry.load()
    return _DEFAULT


def set_registry(registry: Registry | None) -> None:
    """Replace (or with ``None``, reset) the process-wide registry — for tests and embedding."""
    global _DEFAULT
    _DEFAULT = registry
