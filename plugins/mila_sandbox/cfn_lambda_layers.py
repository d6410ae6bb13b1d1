"""Lambda layers in stacks, as AWS resolves them: one in the same stack, or a public one.

**AWS**: ``Ref`` of an ``AWS::Lambda::LayerVersion`` is the layer version's ARN, so a function
declares ``Layers: [!Ref MyLayer]`` (SAM writes the same for an
``AWS::Serverless::LayerVersion``); the function is created and updated with its layers. A
layer version another account shares publicly (Powertools, the Lambda Insights extension…) is
named by its ARN and works on create and on update alike.

**plain moto**: ``Ref`` of a layer version is the Python object itself; a function's
``Layers`` are ignored on create and looked up on update, where the object (a layer in the
same stack) or an ARN of another account (a public layer) fails the update with HTTP 500.

**here**: ``Ref`` is the ARN; ``Layers`` are applied on create and update; an ARN of another
account is accepted as it is (the sandbox cannot see that account: its code size shows 0).
A missing layer of the sandbox's own account is still refused, as on AWS.
"""

from __future__ import annotations

from typing import Any


def _arn(layer: Any) -> str:
    return str(getattr(layer, "arn", layer))


def install() -> None:
    from moto.awslambda.exceptions import UnknownLayerVersionException
    from moto.awslambda.models import LambdaFunction, LayerVersion, get_backend
    from moto.awslambda.utils import split_layer_arn

    LayerVersion.physical_resource_id = property(lambda self: self.arn)

    def layers_data(self: Any, layers: list[Any]) -> list[dict[str, Any]]:
        backend = get_backend(self.account_id, self.region)
        found = []
        for arn in map(_arn, layers or []):
            version = backend.layers_versions_by_arn(arn)
            if version is not None:
                found.append({"Arn": version.arn, "CodeSize": version.code_size})
            elif arn.startswith("arn:") and arn.split(":")[4:5] != [self.account_id]:
                split_layer_arn(arn)  # a malformed ARN fails as moto fails it
                found.append({"Arn": arn, "CodeSize": 0})  # another account's layer
            else:
                raise UnknownLayerVersionException([arn])
        return found

    LambdaFunction._get_layers_data = layers_data

    create = LambdaFunction.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls: Any, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        function = create(cls, resource_name, cloudformation_json, account_id, region_name,
                          **kwargs)
        layers = (cloudformation_json.get("Properties") or {}).get("Layers")
        if layers:
            function.layers = function._get_layers_data(layers)
        return function

    LambdaFunction.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
