"""Resource types moto's CloudFormation skips, created as AWS creates them.

**AWS**: every resource of a template is created — among them ``AWS::ApiGateway::Stage`` (SAM
adds one, ``Prod``, for every implicit API: the URL a deploy reports points at it) and
``AWS::S3::BucketPolicy`` (how a template lets a service or another account use a bucket).
``Ref`` of an ``AWS::ApiGateway::Deployment`` is its id.

**plain moto**: "No Moto CloudFormation support for …": the resource is silently skipped, the
stack still reports ``CREATE_COMPLETE``, and the stage or policy does not exist.

**here**: CloudFormation models for these types, backed by moto's own API Gateway and S3
backends (created, updated, deleted with the stack). Other unsupported types are still
skipped (see the list in ``notes/moto-facts.md``).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

# this module is imported by ``fidelity.install`` only, in the sandbox's process
from moto.apigateway.models import Deployment, apigateway_backends
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition


class _Model:
    """What both models share (mixed in before ``CloudFormationModel``, whose direct subclasses
    are the models moto knows): the account and region, the type and name key, no
    ``Fn::GetAtt`` attributes, deletion through :meth:`delete`, and an update that deletes the
    old resource when :meth:`replaces` says so and creates the new one."""

    TYPE = ""
    NAME_TYPE = ""

    def __init__(self, account_id: str, region_name: str) -> None:
        self.account_id, self.region_name = account_id, region_name

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_TYPE

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Any:
        # create_from_cloudformation_json: the model's own
        if original_resource.replaces(cloudformation_json.get("Properties") or {}):
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> None:
        """Deleted through :meth:`delete`, which knows what to delete."""

    def replaces(self, properties: dict[str, Any]) -> bool:
        return True

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError


class ApiGatewayStage(_Model, CloudFormationModel):
    """``AWS::ApiGateway::Stage``: ``Ref`` is the stage name."""

    TYPE = "AWS::ApiGateway::Stage"
    NAME_TYPE = "StageName"

    def __init__(self, account_id: str, region_name: str, rest_api_id: str,
                 stage_name: str) -> None:
        super().__init__(account_id, region_name)
        self.rest_api_id = rest_api_id
        self.stage_name = stage_name

    @property
    def physical_resource_id(self) -> str:
        return self.stage_name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        backend = apigateway_backends[account_id][region_name]
        tags = {t["Key"]: t["Value"] for t in properties.get("Tags") or []} or None
        backend.create_stage(properties["RestApiId"], resource_name,
                             properties.get("DeploymentId"),
                             variables=properties.get("Variables"),
                             description=properties.get("Description", ""),
                             cacheClusterEnabled=properties.get("CacheClusterEnabled"),
                             cacheClusterSize=properties.get("CacheClusterSize"),
                             tags=tags, tracing_enabled=properties.get("TracingEnabled"))
        return cls(account_id, region_name, properties["RestApiId"], resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(Exception):  # the API may be gone already
            apigateway_backends[account_id][region_name].delete_stage(self.rest_api_id,
                                                                      self.stage_name)


class S3BucketPolicy(_Model, CloudFormationModel):
    """``AWS::S3::BucketPolicy``: ``Ref`` is the bucket name."""

    TYPE = "AWS::S3::BucketPolicy"

    def __init__(self, account_id: str, region_name: str, bucket: str) -> None:
        super().__init__(account_id, region_name)
        self.bucket = bucket

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        return s3_backends[account_id][get_partition(region_name)]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        document = properties["PolicyDocument"]
        policy = document if isinstance(document, str) else json.dumps(document)
        cls._backend(account_id, region_name).put_bucket_policy(properties["Bucket"],
                                                                policy.encode())
        return cls(account_id, region_name, properties["Bucket"])

    def replaces(self, properties: dict[str, Any]) -> bool:
        """A policy is replaced in place unless it moves to another bucket."""
        return bool(self.bucket != properties.get("Bucket"))

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(Exception):  # the bucket may be gone already
            self._backend(account_id, region_name).delete_bucket_policy(self.bucket)


def install() -> None:
    # ``Ref`` of a Deployment is its id on AWS; moto hands out the object (which then breaks
    # the Stage referring to it)
    Deployment.physical_resource_id = property(lambda self: self.id)
    # moto finds models through CloudFormationModel.__subclasses__(), cached on first use
    # (the classes above are kept alive by this module)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
