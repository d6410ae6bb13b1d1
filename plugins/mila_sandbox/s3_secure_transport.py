"""S3 bucket policies see every sandbox request as sent over TLS.

AWS: ``aws:SecureTransport`` is ``"true"`` for a request over HTTPS, so the usual TLS-only
statement (``Deny`` ``s3:*`` when ``aws:SecureTransport`` is ``"false"``) refuses plain-HTTP
clients and nobody else.

moto 5.2.5: bucket policies are enforced, but only ``StringEquals`` conditions are evaluated;
any other operator (``Bool`` included) counts as satisfied, so the TLS-only ``Deny`` matches
*every* request — a bucket with the policy AWS recommends, and mila sets, locks everyone out.

The sandbox stands in for AWS's HTTPS endpoints (on loopback only), so its requests are
evaluated as secure transport: a statement whose ``Bool``/``BoolIfExists`` condition on
``aws:SecureTransport`` does not hold for a TLS request does not apply; moto evaluates the rest
as before. mila then sets the same policy on the sandbox as on AWS: one code path, no "plain
HTTP" exception in product code.
"""

from __future__ import annotations

import json
from typing import Any

#: what every sandbox request is, as seen by a bucket policy
CONTEXT = {"aws:securetransport": "true"}


def applies(statement: dict[str, Any]) -> bool:
    """Whether the statement's Bool conditions on the keys of :data:`CONTEXT` hold."""
    conditions = statement.get("Condition") or {}
    for operator, pairs in conditions.items():
        if operator not in ("Bool", "BoolIfExists") or not isinstance(pairs, dict):
            continue
        for key, expected in pairs.items():
            actual = CONTEXT.get(key.lower())
            if actual is None:
                continue
            values = expected if isinstance(expected, list) else [expected]
            if actual not in [str(v).lower() for v in values]:
                return False
    return True


def install() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        kept = [s for s in statements if applies(s)]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**policy, "Statement": kept})).is_action_permitted(
            action, resource)

    FakeBucket.get_permission = get_permission
