"""The ``aws`` state backend's part of the IAM policy (``mila init --print-policy``).

Least privilege for one project: the state table and bucket, and reading the caller identity.
The deployers add their own statements (``DeployerType.iam_statements``; the CloudFormation
ones are in ``mila_cloudformation.policy``); :mod:`mila.policy` merges them.
"""

from __future__ import annotations

from typing import Any


def iam_policy(*, table: str, bucket: str, region: str) -> dict[str, Any]:
    table_arn = f"arn:aws:dynamodb:{region}:*:table/{table}"
    bucket_arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        {"Sid": "MilaIdentity", "Effect": "Allow", "Action": ["sts:GetCallerIdentity"],
         "Resource": "*"},
        {"Sid": "MilaStateTable", "Effect": "Allow", "Resource": table_arn, "Action": [
            "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:TagResource",
            "dynamodb:DescribeContinuousBackups", "dynamodb:UpdateContinuousBackups",
            "dynamodb:UpdateTable",
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
            "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]},
        {"Sid": "MilaStateBucket", "Effect": "Allow", "Resource": bucket_arn, "Action": [
            "s3:CreateBucket", "s3:ListBucket", "s3:GetBucketVersioning",
            "s3:PutBucketVersioning", "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock", "s3:GetBucketPolicy", "s3:PutBucketPolicy"]},
        {"Sid": "MilaStateObjects", "Effect": "Allow", "Resource": f"{bucket_arn}/checksums/*",
         "Action": ["s3:GetObject", "s3:PutObject"]},
    ]
    return {"Version": "2012-10-17", "Statement": statements}
