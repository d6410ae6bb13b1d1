"""Checks of the names a user types (services, environments), with "did you mean" hints.

One place for the rule "an unknown name is bad input (exit 2), answered with the closest known
names; a package named where a service is expected is said to be a package, with the services
that use it".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from mila.errors import EnvironmentNotFound, MilaError
from mila.suggest import did_you_mean


def check_services(graph: Any, names: Iterable[str], known: Collection[str] = ()) -> None:
    """Refuse names that are neither a service of ``graph`` nor in ``known`` (e.g. the
    services recorded in the state, which may have left the code)."""
    services = {s.name for s in graph.services} | set(known)
    for name in names:
        if name in services:
            continue
        if name in graph:
            users = [u for u in graph.dependents(name, transitive=True)
                     if graph[u].is_service]
            raise MilaError(f"'{name}' is a package, not a service",
                            hint=f"services that use it: {', '.join(users)}" if users else
                            "no service uses it")
        raise MilaError(f"unknown service '{name}'",
                        hint=did_you_mean(name, services, "services") or "no services")


def check_deployed(graph: Any, names: Iterable[str], deployed: Collection[str],
                   environment: str) -> None:
    """Refuse names with no record in ``environment`` (packages said to be packages)."""
    unknown = [n for n in names if n not in deployed]
    if not unknown:
        return
    packages = [n for n in unknown if n in graph and not graph[n].is_service]
    if packages:
        check_services(graph, packages)
    hint = did_you_mean(unknown[0], deployed, "deployed services") if deployed else None
    raise MilaError(f"not deployed in '{environment}': {', '.join(unknown)}",
                    hint=hint or f"deployed services: {', '.join(sorted(deployed)) or 'none'}")


def environment_not_found(exc: EnvironmentNotFound, known: Iterable[str]) -> MilaError:
    """``exc`` with the closest existing environments in its message."""
    names = sorted(set(known))
    close = did_you_mean(exc.name, names, "environments") if names else "no environment exists yet"
    error = EnvironmentNotFound(exc.name)
    if close:
        error.message = f"environment '{exc.name}' does not exist ({close})"
        error.hint = f"create it with `mila envs create {exc.name}`"
    return error
