"""Service parameters: ``${env}``, ``${region}`` and ``${service.OutputName}`` substitution.

Done once in the core so every deployer sees the same values in ``DeployContext.parameters``.
An unknown placeholder is an error naming the service, the parameter and what is available,
never a silently empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mila.errors import ConfigError

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def substitute(value: str, *, environment: str, region: str,
               outputs: Mapping[str, Mapping[str, str]], where: str = "") -> str:
    """Replace every ``${...}`` in ``value``."""

    def repl(m: re.Match[str]) -> str:
        token = m.group(1).strip()
        if token == "env":
            return environment
        if token == "region":
            return region
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
                          hint="use ${env}, ${region} or ${service.OutputName}")

    return _PLACEHOLDER.sub(repl, value)


def resolve_parameters(parameters: Mapping[str, str], *, service: str, environment: str,
                       region: str, outputs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {k: substitute(v, environment=environment, region=region, outputs=outputs,
                          where=f"service '{service}' parameter '{k}'")
            for k, v in parameters.items()}
