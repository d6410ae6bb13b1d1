"""The IAM policy document mila needs (``mila init --print-policy``).

Least privilege for one project: the state table and bucket; CloudFormation on the project's
stacks (``<project>-*``) with the change-set calls the deployers use; the artifacts bucket;
``iam:PassRole`` only towards CloudFormation; reading the caller identity. Resources a
service's own template creates (Lambda, API Gateway, queues…) are created by CloudFormation
with the permissions of the identity or role that runs it: add them for your templates, or
give CloudFormation a service role (``iam:PassRole`` below).
"""

from __future__ import annotations

from typing import Any


def iam_policy(*, project: str, table: str, bucket: str, region: str,
               artifacts_bucket: str | None = None) -> dict[str, Any]:
    table_arn = f"arn:aws:dynamodb:{region}:*:table/{table}"
    bucket_arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        {"Sid": "MilaIdentity", "Effect": "Allow", "Action": ["sts:GetCallerIdentity"],
         "Resource": "*"},
        {"Sid": "MilaStateTable", "Effect": "Allow", "Resource": table_arn, "Action": [
            "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:TagResource",
            "dynamodb:DescribeContinuousBackups", "dynamodb:UpdateContinuousBackups",
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
            "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]},
        {"Sid": "MilaStateBucket", "Effect": "Allow", "Resource": bucket_arn, "Action": [
            "s3:CreateBucket", "s3:ListBucket", "s3:GetBucketVersioning",
            "s3:PutBucketVersioning", "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock", "s3:GetBucketPolicy", "s3:PutBucketPolicy"]},
        {"Sid": "MilaStateObjects", "Effect": "Allow", "Resource": f"{bucket_arn}/checksums/*",
         "Action": ["s3:GetObject", "s3:PutObject"]},
        {"Sid": "MilaStacks", "Effect": "Allow",
         "Resource": [f"arn:aws:cloudformation:*:*:stack/{project}-*/*",
                      f"arn:aws:cloudformation:*:*:changeSet/{project}-*/*",
                      "arn:aws:cloudformation:*:aws:transform/Serverless-2016-10-31"],
         "Action": [
             "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
             "cloudformation:ExecuteChangeSet", "cloudformation:DeleteChangeSet",
             "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
             "cloudformation:DescribeStackResources", "cloudformation:GetTemplate",
             "cloudformation:DeleteStack", "cloudformation:ListStackResources"]},
        {"Sid": "MilaTemplates", "Effect": "Allow", "Resource": "*",
         "Action": ["cloudformation:ValidateTemplate", "cloudformation:ListExports"]},
        {"Sid": "MilaPassRoleToCloudFormation", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": "*",
         "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}},
    ]
    if artifacts_bucket:
        arn = f"arn:aws:s3:::{artifacts_bucket}"
        statements.append({"Sid": "MilaArtifacts", "Effect": "Allow", "Resource": [arn, f"{arn}/*"],
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                      "s3:GetBucketLocation"]})
    return {"Version": "2012-10-17", "Statement": statements}
