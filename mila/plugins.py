"""The plugin manager: the only module that loads entry points (found by
:mod:`mila.entry_points`).

Load order (pluggy calls the last registered first):

1. entry points in the group ``mila`` — the built-ins (``git``, ``aws``, ``local``,
   ``cloudformation``, ``sandbox``) are registered this way, exactly as third-party plugins are;
2. modules listed in ``plugins = [...]`` in ``mila.toml``;
3. modules listed in the ``MILA_PLUGINS`` environment variable (comma-separated).

``disable_plugins = [...]`` (or ``MILA_DISABLE_PLUGINS``) names plugins not to load. A plugin
that fails to import, or registers a hasher/backend/deployer/command name another plugin already
registered, stops mila with a :class:`PluginError` naming the plugin and its distribution:
silently skipping a deployer would turn its services into packages and their stacks into
``destroy`` rows.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from mila import entry_points as installed
from mila import hookspecs
from mila.errors import MilaError, PluginError
from mila.protocols import DeployerType, HasherType, ReferenceResolverType, StateBackendType

if TYPE_CHECKING:
    from pathlib import Path

    import click

ENTRY_POINT_GROUP = "mila"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One loaded plugin, as ``mila plugins`` shows it.

    ``dist`` is the entry point's distribution; its name and version are read from its
    metadata only when shown (parsing every distribution's METADATA costs ~30 ms per run)."""

    name: str
    module: str
    dist: Any = None
    source: str = "entry point"  # "entry point" | "config" | "MILA_PLUGINS"

    @property
    def distribution(self) -> str | None:
        return str(self.dist.metadata["Name"]) if self.dist is not None else None

    @property
    def version(self) -> str | None:
        return str(self.dist.version) if self.dist is not None else None


@dataclass
class Registry:
    """Everything plugins registered, by name, with the plugin that registered each."""

    hashers: dict[str, HasherType] = field(default_factory=dict)
    state_backends: dict[str, StateBackendType] = field(default_factory=dict)
    deployers: dict[str, DeployerType] = field(default_factory=dict)
    commands: dict[str, click.Command] = field(default_factory=dict)
    reference_resolvers: dict[str, ReferenceResolverType] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin


class MilaPluginManager(pluggy.PluginManager):
    """pluggy's manager plus what mila knows of each plugin (distribution, version, source)."""

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None

    def register_plugin(self, plugin: Any, info: PluginInfo) -> None:
        if info.name in self.infos or self.get_plugin(info.name) is not None:
            other = self.infos.get(info.name)
            raise PluginError(
                f"two plugins are named '{info.name}': {_describe(info)} and "
                f"{_describe(other) if other else 'an earlier registration'}",
                hint=f"uninstall one, or add '{info.name}' to disable_plugins")
        try:
            self.register(plugin, name=info.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {_describe(info)} is invalid: {exc}") from exc
        self.infos[info.name] = info
        self._registry = None

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call hook ``hook_name`` once per implementation, through pluggy, and return
        ``(plugin name, result)`` for each, in pluggy's calling order (last registered first).

        pluggy does the calling (``subset_hook_caller``): each implementation receives only the
        arguments it declares, and wrappers are honoured. The core uses it wherever a result or
        an error must be attributed to the plugin that produced it: a :class:`MilaError` raised
        by an implementation propagates as it is, any other exception becomes a
        :class:`PluginError` naming the plugin and its distribution.
        """
        caller = getattr(self.hook, hook_name)
        impls = caller.get_hookimpls()
        plain = [i for i in impls if not (i.hookwrapper or i.wrapper)]
        out: list[tuple[str, Any]] = []
        for impl in reversed(plain):  # pluggy calls the last registered first
            others = [i.plugin for i in plain if i.plugin is not impl.plugin]
            subset = self.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                results = subset(**kwargs)
            except MilaError:
                raise
            except Exception as exc:  # a broken plugin must not look like a mila bug
                raise PluginError(f"plugin {self._name(impl.plugin_name)} failed in "
                                  f"{hook_name}: {exc!r}") from exc
            if caller.spec is not None and caller.spec.opts.get("firstresult"):
                out.append((impl.plugin_name, results))
            else:
                out.append((impl.plugin_name, results[0] if results else None))
        return out

    @property
    def registry(self) -> Registry:
        """Call the registration hooks once; refuse duplicate names, naming both plugins."""
        if self._registry is None:
            reg = Registry()
            self._collect(reg, "hasher", reg.hashers, self.hook.mila_hashers)
            self._collect(reg, "state backend", reg.state_backends, self.hook.mila_state_backends)
            self._collect(reg, "deployer", reg.deployers, self.hook.mila_deployers)
            self._collect(reg, "command", reg.commands, self.hook.mila_commands)
            self._collect(reg, "reference kind", reg.reference_resolvers,
                          self.hook.mila_reference_resolvers)
            self._registry = reg
        return self._registry

    def _collect(self, reg: Registry, kind: str, into: dict[str, Any], hook: Any) -> None:
        # Each implementation on its own, so an error names the plugin that caused it; in
        # registration order, so of two plugins registering one name the first is named first.
        for plugin_name, items in reversed(self.call_each(hook.name)):
            for item in items or []:
                name = getattr(item, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {self._name(plugin_name)} registered a "
                                      f"{kind} without a name: {item!r}")
                if name in into:
                    first = reg.owners[(kind, name)]
                    raise PluginError(
                        f"{kind} '{name}' is registered twice: by plugin "
                        f"{self._name(first)} and by plugin {self._name(plugin_name)}",
                        hint="add one of them to disable_plugins")
                into[name] = item
                reg.owners[(kind, name)] = plugin_name

    def _name(self, plugin_name: str) -> str:
        info = self.infos.get(plugin_name)
        return _describe(info) if info else f"'{plugin_name}'"

    def hooks_of(self, plugin_name: str) -> list[str]:
        plugin = self.get_plugin(plugin_name)
        return sorted(c.name for c in self.get_hookcallers(plugin) or [])

    def registered_by(self, plugin_name: str) -> dict[str, list[str]]:
        reg = self.registry
        out: dict[str, list[str]] = {}
        for (kind, name), owner in sorted(reg.owners.items()):
            if owner == plugin_name:
                out.setdefault(kind, []).append(name)
        return out


def _describe(info: PluginInfo | None) -> str:
    if info is None:
        return "?"
    if info.distribution:
        return f"'{info.name}' (distribution {info.distribution} {info.version or ''})".replace(" )", ")")
    return f"'{info.name}' (module {info.module}, from {info.source})"


def build_plugin_manager(
    config_plugins: Iterable[str] = (),
    disabled: Iterable[str] = (),
    environ: dict[str, str] | None = None,
    entry_points: Callable[[], Iterable[Any]] | None = None,
    cache_dir: Path | None = None,
) -> MilaPluginManager:
    """Load every plugin in the documented order and check for hook typos (``check_pending``).

    With ``cache_dir`` (a project's ``.mila/cache``) the installed entry points are remembered
    there until something installed changes (:mod:`mila.entry_points`)."""
    env = os.environ if environ is None else environ
    disabled_set = set(disabled) | _split(env.get("MILA_DISABLE_PLUGINS", ""))
    pm = MilaPluginManager()
    eps = entry_points() if entry_points else installed.find(ENTRY_POINT_GROUP, cache_dir)
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in disabled_set:
            continue
        info = PluginInfo(ep.name, ep.value.split(":")[0], getattr(ep, "dist", None))
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {_describe(info)} failed to import: "
                              f"{type(exc).__name__}: {exc}",
                              hint=f"fix or reinstall it, or add '{ep.name}' to "
                                   "disable_plugins in mila.toml") from exc
        pm.register_plugin(plugin, info)
    for source, modules in (("config", list(config_plugins)),
                            ("MILA_PLUGINS", sorted(_split(env.get("MILA_PLUGINS", ""))))):
        for module in modules:
            if module in disabled_set:
                continue
            info = PluginInfo(module, module, source=source)
            try:
                plugin = importlib.import_module(module)
            except Exception as exc:
                raise PluginError(f"plugin module '{module}' (from {source}) failed to import: "
                                  f"{type(exc).__name__}: {exc}",
                                  hint="check the module name and that it is installed") from exc
            pm.register_plugin(plugin, info)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}", hint="a hook name is misspelt; see mila/hookspecs.py") from exc
    return pm


def _split(value: str) -> set[str]:
    return {v.strip() for v in value.split(",") if v.strip()}
