"""A loaded project: configuration, plugins and workspace graph, built once per command.

Commands call :func:`load_project`, then ask it for the state backend, a deployer or the
hasher; each is created on first use (a command that never touches the state never builds a
boto3 client).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mila.config import ProjectConfig, load_config
from mila.errors import ConfigError, PluginError
from mila.plugins import MilaPluginManager, build_plugin_manager
from mila.protocols import Deployer, Hasher, StateBackend, StateBackendType
from mila.workspace import WorkspaceGraph, discover


@dataclass
class Project:
    config: ProjectConfig
    pm: MilaPluginManager
    _deployers: dict[str, Deployer] = field(default_factory=dict)
    _selected: str | None = None

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def graph(self) -> WorkspaceGraph:
        return discover(self.config, list(self.pm.registry.deployers.values()))

    @cached_property
    def state(self) -> StateBackend:
        return self.state_type().create(self.config)

    def state_type(self) -> StateBackendType:
        """The configured backend's type, once ``[state]`` is checked against it (unknown
        backend or key: :class:`ConfigError`); creates nothing, reaches nothing."""
        backends = self.pm.registry.state_backends
        name = self.config.state.backend
        if name not in backends:
            raise ConfigError(f"unknown state backend '{name}'", file=self.config.config_file,
                              key="state.backend",
                              hint=f"installed backends: {', '.join(sorted(backends)) or 'none'}"
                                   " (see `mila plugins`)")
        backend_type = backends[name]
        allowed = set(backend_type.config_keys)
        for key in self.config.state.options:
            if key not in allowed:
                raise ConfigError(f"unknown key '{key}' for backend '{name}'",
                                  file=self.config.config_file, key=f"state.{key}",
                                  hint=f"allowed keys: backend, lock_lease_seconds, "
                                       f"{', '.join(sorted(allowed))}")
        return backend_type

    def deployer(self, name: str) -> Deployer:
        if name not in self._deployers:
            types = self.pm.registry.deployers
            if name not in types:
                raise PluginError(f"deployer '{name}' is not installed",
                                  hint="a record names it; install the plugin that provides it "
                                       "(see `mila plugins`)")
            self._deployers[name] = types[name].create(self.config)
        return self._deployers[name]

    def deployer_version(self, name: str) -> str:
        return str(self.pm.registry.deployers[name].version)

    @cached_property
    def hasher(self) -> Hasher:
        types = sorted(self.pm.registry.hashers.values(), key=lambda h: (h.priority, h.name))
        for hasher_type in types:
            if hasher_type.applies(self.root):
                return hasher_type.create(self.config)
        raise PluginError("no hasher applies to this project",
                          hint="the 'fs' hasher of the built-in 'git' plugin may be disabled")

    def acts_in_the_cloud(self, deployers: Iterable[str]) -> bool:
        """Whether running ``deployers`` needs the cloud identity: ``[accounts]`` is configured,
        or the state backend or one of the deployers declares IAM permissions (the state's
        ``iam_policy()``, ``DeployerType.iam_statements``) — one rule with ``--print-policy``.
        A local state with local deployers needs no identity, credentials or network."""
        if self.config.accounts or getattr(self.state, "iam_policy", None) is not None:
            return True
        types = self.pm.registry.deployers
        return any(types[d].iam_statements is not None for d in deployers if d in types)

    def select_environment(self, environment: str) -> None:
        """Tell the plugins which environment this command acts on
        (``mila_environment_selected``); once per environment and process."""
        if environment != self._selected:
            self._selected = environment
            self.pm.hook.mila_environment_selected(config=self.config, environment=environment)

    def identity(self, deployers: Iterable[str] | None = None) -> Any:
        """The cloud identity (``mila_identity``); ``None`` without asking any plugin when
        ``deployers`` are given and none of them, nor the state, acts in the cloud."""
        if deployers is not None and not self.acts_in_the_cloud(deployers):
            return None
        return self.pm.hook.mila_identity(config=self.config)


def load_project(start: Path | None = None, environ: dict[str, str] | None = None) -> Project:
    config = load_config(start)
    pm = build_plugin_manager(config.plugins, config.disable_plugins, environ,
                              cache_dir=config.cache_dir)
    return Project(config, pm)
