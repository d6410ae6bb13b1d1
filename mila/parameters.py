"""Service parameters: ``${env}``, ``${region}``, ``${env:NAME}`` and ``${service.OutputName}``
substitution.

``${env:NAME}`` reads the service's environment variable ``NAME`` (its ``envs/.env*`` files,
:mod:`mila.variables`), else the shell's; the plan folds a shell value into the checksum
(:func:`mila.variables.parameter_digests`).

Done once in the core so every deployer sees the same values in ``DeployContext.parameters``.
An unknown placeholder is an error naming the service, the parameter and what is available,
never a silently empty string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from mila.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


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
               variables: Mapping[str, str] | None = None) -> str:
    """Replace every ``${...}`` in ``value``."""

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
                       variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """``variables``: the service's environment variables (``DeployContext.variables``), read
    by ``${env:NAME}``."""
    return {k: substitute(v, environment=environment, region=region, outputs=outputs,
                          where=f"service '{service}' parameter '{k}'", variables=variables)
            for k, v in parameters.items()}
