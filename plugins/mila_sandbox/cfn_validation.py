"""Templates validated as CloudFormation validates them, with cfn-lint's copy of AWS's schemas.

**AWS**: a template that is not well formed is refused by the API call itself
(``CreateChangeSet``, ``CreateStack``, ``UpdateStack``): ``ValidationError: Template format
error: Unrecognized resource types: [AWS::Foo::Bar]``, ``Invalid template resource property
'Properties2'``, ``Unresolved resource dependencies [X] in the Resources block of the
template``, a top-level section that does not exist, circular dependencies. A resource whose
properties break its type's schema (a DynamoDB table with an empty ``KeySchema``, a property
that does not exist, a number out of range) is refused when CloudFormation provisions it: that
resource ends ``CREATE_FAILED`` / ``UPDATE_FAILED`` with "Properties validation failed for
resource … with message: …", and the stack rolls back.

**plain moto**: no validation — unknown types are skipped, unknown properties ignored, and
the stack ends ``CREATE_COMPLETE``; a test that passes there fails on AWS.

**here**: cfn-lint (loaded once per server, its results cached per template) checks the
processed template (after ``AWS::Include``, language extensions and SAM). Only the rules that
mirror what CloudFormation itself enforces are used — :data:`FORMAT_RULES` refuse the call,
:data:`PROPERTY_RULES` fail the resource when it is created or updated; cfn-lint's
best-practice warnings and service-specific advice are never applied. Parameter values are
those the template declares as defaults (a value given at deploy time is not re-checked).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

#: cfn-lint rules whose failures CloudFormation answers with a ValidationError at the call
FORMAT_RULES: dict[str, Callable[[list[Any], str], str]] = {
    "E1001": lambda path, _: "Template format error: Invalid template property or properties "
                             f"[{path[0] if path else ''}]",
    "E3001": lambda path, message: (
        f"Template format error: Invalid template resource property '{path[-1]}'"
        if len(path) == 3 else f"Template format error: {message}"),
    "E3006": lambda path, message: "Template format error: Unrecognized resource types: "
                                   f"[{message.split(chr(39))[1] if chr(39) in message else ''}]",
    "E3005": lambda path, message: "Template format error: Unresolved resource dependencies "
                                   f"[{message.split(chr(39))[1] if chr(39) in message else ''}] "
                                   "in the Resources block of the template",
    "E1020": lambda path, message: "Template format error: Unresolved resource dependencies "
                                   f"[{message.split(chr(39))[1] if chr(39) in message else ''}] "
                                   f"in the {path[0] if path else 'Resources'} block of the "
                                   "template",
    "E3004": lambda path, message: f"Template error: {message}",
}
#: cfn-lint rules checking a resource's properties against its type's schema
PROPERTY_RULES = frozenset({"E3002", "E3003", "E3012", "E3014", "E3017", "E3018", "E3020",
                            "E3021", "E3030", "E3031", "E3032", "E3033", "E3034", "E3058"})

_lock = threading.Lock()
_runner: dict[str, Any] = {}


def _rules(region: str) -> tuple[Any, Any]:
    """cfn-lint's configuration and rules for ``region``, loaded once."""
    with _lock:
        if region not in _runner:
            from cfnlint.config import ConfigMixIn
            from cfnlint.runner.cli import Runner

            config = ConfigMixIn(regions=[region], ignore_checks=["W", "I"])
            _runner[region] = (config, Runner(config).rules)
        return _runner[region]  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _lint(text: str, region: str) -> tuple[tuple[str, tuple[Any, ...], str], ...]:
    from cfnlint.runner.template.runner import run_template_by_data

    config, rules = _rules(region)
    found = []
    for match in run_template_by_data(json.loads(text), config, rules):
        rule = str(match.rule.id)
        if rule in FORMAT_RULES or rule in PROPERTY_RULES:
            path = tuple(getattr(match, "path", None) or ())
            found.append((rule, path, str(match.message)))
    return tuple(found)


def matches(template: dict[str, Any], region: str) -> tuple[tuple[str, tuple[Any, ...], str], ...]:
    return _lint(json.dumps(template, sort_keys=True, default=str), region)


def check_format(template: dict[str, Any], region: str) -> None:
    """Raise the ValidationError CloudFormation answers for a malformed template."""
    from moto.cloudformation.exceptions import ValidationError

    for rule, path, message in matches(template, region):
        if rule in FORMAT_RULES:
            raise ValidationError(message=FORMAT_RULES[rule](list(path), message))


def property_failures(template: dict[str, Any], region: str) -> dict[str, str]:
    """Each resource's schema failure, as CloudFormation words it."""
    found: dict[str, list[str]] = {}
    for rule, path, message in matches(template, region):
        if rule in PROPERTY_RULES and len(path) >= 3 and path[0] == "Resources":
            line = "#/" + "/".join(map(str, path[3:])) + f": {message}"
            lines = found.setdefault(str(path[1]), [])
            if line not in lines:
                lines.append(line)
    return {logical_id: f"Properties validation failed for resource {logical_id} with "
                        f"message: [{', '.join(lines)}]" for logical_id, lines in found.items()}


def install() -> None:
    """Install before :mod:`mila_sandbox.cfn_events` (which records the failure as an event);
    :mod:`mila_sandbox.cfn_stacks` calls :func:`check_format`."""
    from moto.cloudformation import parsing

    from mila_sandbox.cfn_events import ResourceFailed

    def validated(operation: str, original: Any) -> Any:
        def run(logical_id: str, resource_json: dict[str, Any], resources_map: Any,
                account_id: str, region_name: str) -> Any:
            template = getattr(resources_map, "_template", None)
            if isinstance(template, dict):
                # once per template: moto edits the template as it goes (a changed text)
                known = getattr(resources_map, "_mila_failures", None)
                if known is None or known[0] is not template:
                    known = (template, property_failures(template, region_name))
                    resources_map._mila_failures = known
                failure = known[1].get(logical_id)
                if failure:
                    raise ResourceFailed(logical_id, str(resource_json.get("Type")), operation,
                                         failure)
            return original(logical_id, resource_json, resources_map, account_id, region_name)

        return run

    parsing.parse_and_create_resource = validated("CREATE", parsing.parse_and_create_resource)
    parsing.parse_and_update_resource = validated("UPDATE", parsing.parse_and_update_resource)
