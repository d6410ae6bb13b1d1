"""``AWS::ApiGateway::RestApi`` defined by an OpenAPI ``Body``, as SAM's implicit API is.

**AWS**: a ``RestApi`` with a ``Body`` (Swagger 2.0 or OpenAPI 3) imports it — its paths become
resources and methods, with their integrations — and takes its name from ``Name``, else from
the document's ``info.title`` (SAM's ``ServerlessRestApi`` has no ``Name``: it is named after
the stack). Its ``Deployment`` then succeeds.

**plain moto**: ``Name`` is required (KeyError → HTTP 500) and ``Body`` is ignored, so the
API has no methods and its ``Deployment`` fails ("The REST API doesn't contain any methods").

And deleting the stack leaves the API behind.

**here**: the name defaults as on AWS, and the paths and methods of ``Body`` are created, with
their integrations when moto accepts them; deleting the stack deletes the API (with its
resources, methods and stages).
"""

from __future__ import annotations

import contextlib
from typing import Any

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options",
                "x-amazon-apigateway-any-method"}


def import_paths(backend: Any, api: Any, body: dict[str, Any]) -> None:
    """Create the resources and methods of ``body``'s paths in ``api``."""
    for path, operations in sorted((body.get("paths") or {}).items()):
        parent = api.get_resource_for_path("/")
        current = ""
        for part in [p for p in str(path).split("/") if p]:
            current += "/" + part
            resource = api.get_resource_for_path(current)
            if resource is None:
                resource = backend.create_resource(function_id=api.id,
                                                   parent_resource_id=parent.id, path_part=part)
            parent = resource
        for method, operation in (operations or {}).items():
            if str(method).lower() not in HTTP_METHODS:
                continue
            method_type = "ANY" if method.startswith("x-amazon") else method.upper()
            backend.put_method(api.id, parent.id, method_type, "NONE")
            integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
            if integration.get("uri"):
                with contextlib.suppress(Exception):  # an integration moto cannot model
                    backend.put_integration(function_id=api.id, resource_id=parent.id,
                                            method_type=method_type,
                                            integration_type=str(integration.get("type", "aws_proxy")
                                                                 ).upper(),
                                            uri=integration["uri"],
                                            integration_method=integration.get("httpMethod",
                                                                               "POST"))


def install() -> None:
    from moto.apigateway.models import RestAPI, apigateway_backends

    original = RestAPI.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls: Any, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        body = properties.get("Body")
        if not properties.get("Name"):
            title = (body.get("info") or {}).get("title") if isinstance(body, dict) else None
            properties = {**properties, "Name": title if isinstance(title, str) and title
                          else resource_name}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        api = original(cls, resource_name, cloudformation_json, account_id, region_name,
                       **kwargs)
        if isinstance(body, dict):
            import_paths(apigateway_backends[account_id][region_name], api, body)
        return api

    RestAPI.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)

    def delete(self: Any, account_id: str, region_name: str) -> None:
        apigateway_backends[account_id][region_name].apis.pop(self.id, None)

    RestAPI.delete = delete
