"""The ``cloudformation`` and ``sam`` deployers' part of the IAM policy (``mila init
--print-policy``, merged by :mod:`mila.policy`).

CloudFormation on the project's stacks (``<project>-*``) with the change-set calls the deployers
use; the artifacts bucket; ``iam:PassRole`` only towards CloudFormation; reading the caller
identity (checked against ``[accounts]`` before any deploy). Resources a service's own template
creates (Lambda, API Gateway, queues…) are created by CloudFormation with the permissions of
the identity or role that runs it: add them for your templates, or give CloudFormation a
service role (``iam:PassRole`` below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mila.config import ProjectConfig


def iam_statements(config: ProjectConfig) -> list[dict[str, Any]]:
    project = config.name
    statements: list[dict[str, Any]] = [
        {"Sid": "MilaIdentity", "Effect": "Allow", "Action": ["sts:GetCallerIdentity"],
         "Resource": "*"},
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
    if config.artifacts_bucket:  # a bucket of the user's: mila only reads and writes objects
        arn = f"arn:aws:s3:::{config.artifacts_bucket.replace('${region}', '*')}"
        statements.append({"Sid": "MilaArtifacts", "Effect": "Allow", "Resource": [arn, f"{arn}/*"],
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                      "s3:GetBucketLocation"]})
    else:  # mila's own mila-artifacts-<account>-<region>, created and secured on first use
        arn = "arn:aws:s3:::mila-artifacts-*"
        statements.append({"Sid": "MilaArtifacts", "Effect": "Allow", "Resource": [arn, f"{arn}/*"],
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                      "s3:GetBucketLocation", "s3:CreateBucket",
                                      "s3:GetBucketVersioning", "s3:PutBucketVersioning",
                                      "s3:GetEncryptionConfiguration",
                                      "s3:PutEncryptionConfiguration",
                                      "s3:GetBucketPublicAccessBlock",
                                      "s3:PutBucketPublicAccessBlock", "s3:GetBucketPolicy",
                                      "s3:PutBucketPolicy"]})
    return statements
