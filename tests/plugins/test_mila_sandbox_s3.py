"""S3 bucket policies in the sandbox: requests count as TLS (mila_sandbox.s3_secure_transport)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mila_aws.buckets import tls_only_statement


def bucket_with(server: Any, *statements: dict[str, Any]) -> Any:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="policy-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_policy(Bucket="policy-test", Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))
    return s3


def test_tls_only_policy_locks_everyone_out_of_plain_moto(plain_moto_server: Any) -> None:
    plain_moto_server.reset()
    s3 = bucket_with(plain_moto_server, tls_only_statement("policy-test"))
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="policy-test", Key="k", Body=b"x")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tls_only_policy_lets_sandbox_requests_in(sandbox: Any) -> None:
    s3 = bucket_with(sandbox, tls_only_statement("policy-test"))
    s3.put_object(Bucket="policy-test", Key="k", Body=b"x")
    assert s3.get_object(Bucket="policy-test", Key="k")["Body"].read() == b"x"


def test_other_statements_are_still_enforced(sandbox: Any) -> None:
    arn = "arn:aws:s3:::policy-test"
    s3 = bucket_with(sandbox, tls_only_statement("policy-test"),
                     {"Sid": "NoReads", "Effect": "Deny", "Principal": "*",
                      "Action": "s3:GetObject", "Resource": f"{arn}/*"})
    s3.put_object(Bucket="policy-test", Key="k", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="policy-test", Key="k")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
