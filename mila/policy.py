"""The IAM policy a project needs (``mila init --print-policy``), merged from its plugins.

The state backend contributes its own statements (an ``iam_policy()`` method returning a
policy document, optional); each deployer the project's services use contributes
``DeployerType.iam_statements(config)``. Statements are kept in that order; two with the same
``Sid`` must be identical (a plugin shipping a conflicting one is named).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mila.errors import MilaError, PluginError
from mila.project import Project


def _state_statements(project: Project) -> list[Mapping[str, Any]]:
    policy = getattr(project.state, "iam_policy", None)
    return list(policy()["Statement"]) if policy is not None else []


def _deployers_in_use(project: Project) -> list[str]:
    return sorted({ws.deployer for ws in project.graph.services if ws.deployer})


def project_policy(project: Project) -> dict[str, Any]:
    """The policy document: state backend statements, then each used deployer's."""
    statements = _state_statements(project)
    sources = {str(s.get("Sid")): f"state backend '{project.state.name}'" for s in statements}
    types = project.pm.registry.deployers
    for name in _deployers_in_use(project):
        make = types[name].iam_statements if name in types else None
        for statement in make(project.config) if make is not None else ():
            sid = str(statement.get("Sid"))
            known = next((s for s in statements if str(s.get("Sid")) == sid), None)
            if known is None:
                statements.append(statement)
                sources[sid] = f"deployer '{name}'"
            elif dict(known) != dict(statement):
                raise PluginError(f"deployer '{name}' and {sources[sid]} give different IAM "
                                  f"statements with the Sid '{sid}'",
                                  hint="a statement's Sid must be unique to what it allows")
    if not statements:
        raise MilaError("no plugin of this project declares IAM permissions",
                        hint="the state backend and the deployers in use need no AWS access")
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}
