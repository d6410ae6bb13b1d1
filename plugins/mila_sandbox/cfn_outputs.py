"""Outputs and exports as AWS reports them, computed once when an operation completes.

**AWS**: once a stack reaches ``CREATE_COMPLETE`` or ``UPDATE_COMPLETE`` — whether by
``CreateStack``, ``UpdateStack`` or a CREATE or UPDATE change set — ``DescribeStacks`` shows its
outputs as the template now declares them, and ``ListExports`` / ``Fn::ImportValue`` see its
exports (an export name taken by another stack fails the operation). A stack that rolled back
after a failed create, or was deleted, has no outputs and no exports.

**plain moto**: outputs are evaluated lazily from the stack's template at describe time; a
CREATE change set leaves that template empty (no outputs, no exports), an UPDATE change set
leaves the old one (stale outputs), and describing a deleted stack evaluates its outputs again
— which re-creates its deleted resources.

**here**: :func:`settle` evaluates outputs and exports once, at the end of every successful
operation, and ``Stack.outputs`` / ``Stack.exports`` return that snapshot — also to a parent
stack's ``Fn::GetAtt [Child, Outputs.Name]``, which plain moto cannot resolve.
"""

from __future__ import annotations

from typing import Any

from mila_sandbox.cfn_events import ResourceFailed


def settle(backend: Any, stack: Any) -> None:
    """Evaluate ``stack``'s outputs and exports from its current template; publish its exports.

    Raises :class:`ResourceFailed` when an export name is already exported by another stack.
    """
    from moto.cloudformation.parsing import OutputMap

    stack._parse_template()
    stack.output_map = OutputMap(stack.resource_map, stack.template_dict, stack.stack_id)
    exports = list(stack.output_map.exports)
    for export in exports:
        owner = backend.exports.get(export.name)
        if owner is not None and owner.exporting_stack_id != stack.stack_id:
            raise ResourceFailed(stack.name, "AWS::CloudFormation::Stack", "EXPORT",
                                 f"Export with name {export.name} is already exported by stack "
                                 f"{owner.exporting_stack_id.split('/')[1]}")
    outputs = []
    for key in stack.output_map.outputs:
        output = stack.output_map[key]
        if not output:
            continue
        declared = (stack.template_dict.get("Outputs") or {}).get(key) or {}
        export_name = None
        if declared.get("Export"):
            export_name = next((e.name for e in exports if e.value == output.value), None)
        outputs.append({"OutputKey": output.key, "OutputValue": output.value,
                        "Description": output.description, "ExportName": export_name})
    withdraw_exports(backend, stack)
    for export in exports:
        backend.exports[export.name] = export
    stack._mila_outputs = outputs or None
    stack._mila_exports = exports


def clear(backend: Any, stack: Any) -> None:
    """No outputs, no exports (a stack rolled back after a failed create, or deleted)."""
    withdraw_exports(backend, stack)
    stack._mila_outputs = None
    stack._mila_exports = []


def withdraw_exports(backend: Any, stack: Any) -> None:
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]


def install() -> None:
    from moto.cloudformation.models import Stack

    Stack.outputs = property(lambda self: getattr(self, "_mila_outputs", None))
    Stack.exports = property(lambda self: getattr(self, "_mila_exports", []))

    def get_cfn_attribute(self: Any, attribute: str) -> Any:
        """``Fn::GetAtt [NestedStack, Outputs.Name]`` (moto has no attributes for stacks)."""
        from moto.cloudformation.parsing import UnformattedGetAttTemplateException

        if attribute.startswith("Outputs."):
            for output in self.outputs or []:
                if output["OutputKey"] == attribute.split(".", 1)[1]:
                    return output["OutputValue"]
        raise UnformattedGetAttTemplateException()

    Stack.get_cfn_attribute = get_cfn_attribute
