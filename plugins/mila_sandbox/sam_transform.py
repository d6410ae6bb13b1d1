"""The SAM transform, applied server-side with aws-sam-translator, as AWS applies it.

**AWS**: a template declaring ``Transform: AWS::Serverless-2016-10-31`` is expanded by
CloudFormation itself when a change set is created (or a stack created or updated with
``CAPABILITY_AUTO_EXPAND``): ``AWS::Serverless::Function`` becomes a function, its role, its
permissions, event rules and an implicit REST API (``ServerlessRestApi``, named after the
stack, from its OpenAPI ``Body``) with deployment and ``Prod`` stage. ``GetTemplate`` returns
the template as sent (``TemplateStage=Original``, the default) or expanded (``Processed``).

**plain moto**: HTTP 500, or the ``AWS::Serverless::*`` resources silently skipped.

**here**: :func:`expand` translates with samtranslator under the server's lock (one request
at a time — the translator keeps the region in a class attribute,
``ArnGenerator.BOTO_SESSION_REGION_NAME``, which is set before every translation). Managed
policy names resolve from moto's copy of AWS's list, offline. The implicit ``RestApi`` it
produces is created by :mod:`mila_sandbox.cfn_restapi`.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def declares_transform(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in names


class _ManagedPolicies:
    """samtranslator's policy loader, answered from moto's bundled AWS managed policies."""

    _map: dict[str, str] | None = None

    def load(self) -> dict[str, str]:
        if _ManagedPolicies._map is None:
            from moto.iam.aws_managed_policies import aws_managed_policies_data

            data = json.loads(aws_managed_policies_data)
            _ManagedPolicies._map = {
                name: f"arn:aws:iam::aws:policy{policy.get('Path', '/')}{name}"
                for name, policy in data.items()}
        return _ManagedPolicies._map


def _validation_error(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    return ValidationError(message=message)


def expand(template: dict[str, Any], parameters: dict[str, Any], region: str,
           account_id: str, stack_name: str) -> dict[str, Any]:
    """``template`` with the SAM transform applied (other transforms are refused)."""
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    others = [n for n in names if n != SAM_TRANSFORM]
    if others:
        raise _validation_error(f"The sandbox only applies the {SAM_TRANSFORM} transform, not "
                                f"{', '.join(map(str, others))}")
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    values = {"AWS::Region": region, "AWS::AccountId": account_id, "AWS::StackName": stack_name,
              "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", **parameters}
    document = json.loads(json.dumps(template))
    ArnGenerator.BOTO_SESSION_REGION_NAME = region  # a class attribute: set before each use
    try:
        to_py27_compatible_template(document, values)
        # the translator asks a boto3 session for the region only; it gets no session at all
        translator = Translator(None, Parser(), boto_session=SimpleNamespace(region_name=region))
        ArnGenerator.BOTO_SESSION_REGION_NAME = region
        translated = translator.translate(document, parameter_values=values,
                                          get_managed_policy_map=_ManagedPolicies().load)
        return dict(undo_mark_unicode_str_in_template(translated))
    except InvalidDocumentException as exc:
        causes = " ".join(str(getattr(c, "message", c)) for c in exc.causes)
        raise _validation_error(f"Transform {SAM_TRANSFORM} failed with: {exc.message} "
                                f"{causes}".strip()) from None


def install() -> None:
    """Quiet samtranslator's metrics (it warns at every translation that nobody publishes
    them). Nothing else to patch: :mod:`mila_sandbox.cfn_stacks` calls :func:`expand`; the
    implicit API it produces is made creatable by :mod:`mila_sandbox.cfn_restapi`."""
    import logging

    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
