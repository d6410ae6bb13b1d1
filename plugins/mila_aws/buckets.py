"""Bucket security shared by every bucket mila creates (the state bucket, artifacts buckets).

AWS recommends, and mila sets, a bucket policy refusing any request not sent over TLS. The
sandbox evaluates its requests as secure transport (``mila_sandbox.s3_secure_transport``), so
the same policy is set there too: one code path.
"""

from __future__ import annotations

import json
from typing import Any

TLS_STATEMENT_ID = "MilaDenyInsecureTransport"


def tls_only_statement(bucket: str) -> dict[str, Any]:
    """Deny every S3 action on ``bucket`` and its objects over plain HTTP."""
    arn = f"arn:aws:s3:::{bucket}"
    return {"Sid": TLS_STATEMENT_ID, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def ensure_tls_only_policy(s3: Any, bucket: str, **owner: Any) -> bool:
    """Add the TLS-only statement to ``bucket``'s policy, keeping its other statements.

    ``owner`` is passed to every call (``ExpectedBucketOwner=...``). Returns whether the policy
    was changed.
    """
    from botocore.exceptions import ClientError

    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket, **owner)["Policy"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    statements = policy.setdefault("Statement", [])
    if isinstance(statements, dict):
        statements = policy["Statement"] = [statements]
    if any(s.get("Sid") == TLS_STATEMENT_ID for s in statements):
        return False
    statements.append(tls_only_statement(bucket))
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy), **owner)
    return True
