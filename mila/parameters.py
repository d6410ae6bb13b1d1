"""Service parameters: ``${env}``, ``${region}``, ``${env:NAME}`` and ``${service.OutputName}``
substitution.

``${env:NAME}`` reads the service's environment variable ``NAME`` (its ``envs/.env*`` files,
:mod:`mila.variables`), else the shell's; the plan folds a shell value into the checksum
(:func:`mila.variables.parameter_digests`).

Done once in the core so every deployer sees the same values in ``DeployContext.parameters``.
An unknown placeholder is an error naming the service, the parameter and what is available,
never a silently empty string.

At plan time the outputs of a dependency deployed in the same plan are not known yet: its name
is in ``pending`` and a reference to it resolves to :data:`KNOWN_AFTER_APPLY`.
:func:`consumed_outputs` lists the ``${service.Output}`` references of a service's parameters
(what it consumes from its dependencies: an input of its checksum).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping

from mila.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
#: The value of an output reference to a dependency deployed in the same plan (plan time only).
KNOWN_AFTER_APPLY = "(known after apply)"


def consumed_outputs(parameters: Mapping[str, str]) -> set[tuple[str, str]]:
    """Every ``(service, output)`` that ``${service.Output}`` placeholders refer to."""
    found: set[tuple[str, str]] = set()
    for value in parameters.values():
        for m in _PLACEHOLDER.finditer(str(value)):
            token = m.group(1).strip()
            if "." in token and ":" not in token:
                service, name = token.split(".", 1)
                found.add((service, name))
    return found


def env_lookup(name: str, variables: Mapping[str, str] | None, where: str) -> str:
    """``${env:NAME}``: the service's variable, else the shell's; an error when neither."""
    if variables is not None and name in variables:
        return variables[name]
    if name in os.environ:
        return os.environ[name]
    raise ConfigError(f"{where}: '${{env:{name}}}' is neither a variable of the service's "
                      "environment files nor set in the shell",
                      hint=f"add {name}=... to an envs/.env file, or export {name}")


def substitute(value: str, *, environment: str, region: str,
               outputs: Mapping[str, Mapping[str, str]], where: str = "",
               variables: Mapping[str, str] | None = None,
               pending: Collection[str] = ()) -> str:
    """Replace every ``${...}`` in ``value``; a reference to a service in ``pending`` (deployed
    in the same plan, outputs not known yet) becomes :data:`KNOWN_AFTER_APPLY`."""

    def repl(m: re.Match[str]) -> str:
        token = m.group(1).strip()
        if token == "env":
            return environment
        if token == "region":
            return region
        if token.startswith("env:"):
            return env_lookup(token[4:], variables, where)
        if "." in token:
            service, name = token.split(".", 1)
            if service in pending:
                return KNOWN_AFTER_APPLY
            if service in outputs and name in outputs[service]:
                return str(outputs[service][name])
            if service in outputs:
                known = ", ".join(sorted(outputs[service])) or "none"
                raise ConfigError(f"{where}: '{service}' has no output '{name}' in {region}",
                                  hint=f"its outputs are: {known}")
            raise ConfigError(f"{where}: '${{{token}}}' refers to '{service}', which is not a "
                              f"deployed dependency in {region}",
                              hint=f"add '{service}' to depends_on and deploy it first")
        raise ConfigError(f"{where}: unknown placeholder '${{{token}}}'",
                          hint="use ${env}, ${region}, ${env:NAME} or ${service.OutputName}")

    return _PLACEHOLDER.sub(repl, value)


def resolve_parameters(parameters: Mapping[str, str], *, service: str, environment: str,
                       region: str, outputs: Mapping[str, Mapping[str, str]],
                       variables: Mapping[str, str] | None = None,
                       pending: Collection[str] = ()) -> dict[str, str]:
    """``variables``: the service's environment variables (``DeployContext.variables``), read
    by ``${env:NAME}``; ``pending``: dependencies deployed in the same plan (plan time)."""
    return {k: substitute(v, environment=environment, region=region, outputs=outputs,
                          where=f"service '{service}' parameter '{k}'", variables=variables,
                          pending=pending)
            for k, v in parameters.items()}
