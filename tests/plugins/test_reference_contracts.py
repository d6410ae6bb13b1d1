"""The reference kinds keep the :class:`~mila.protocols.ReferenceResolver` contract: the aws
plugin's ``ssm`` (String and SecureString) and ``secret`` (whole and JSON key) against the
sandbox, and the tests' ``fake`` kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mila_aws.references import Secrets, SsmParameters
from mila_fake_references import FakeReferences
from mila_fake_references import put as fake_put

from mila.testing.reference_contract import ReferenceResolverContract


class TestFakeReferences(ReferenceResolverContract):
    @pytest.fixture
    def resolver(self, tmp_path: Path) -> FakeReferences:
        return FakeReferences(tmp_path)

    @pytest.fixture
    def put(self, tmp_path: Path) -> Any:
        versions: dict[tuple[str, str], int] = {}

        def put(target: str, region: str, value: str) -> None:
            versions[(target, region)] = versions.get((target, region), 0) + 1
            fake_put(tmp_path, region, target, value, str(versions[(target, region)]))

        return put


@pytest.mark.sandbox
class TestSsmString(ReferenceResolverContract):
    @pytest.fixture
    def resolver(self, sandbox: Any) -> SsmParameters:
        return SsmParameters()

    @pytest.fixture
    def target(self) -> str:
        return "/mila-contract/value"

    @pytest.fixture
    def put(self, sandbox: Any) -> Any:
        def put(target: str, region: str, value: str) -> None:
            sandbox.client("ssm", region).put_parameter(Name=target, Value=value,
                                                       Type=self.kind, Overwrite=True)
        return put

    kind = "String"


class TestSsmSecureString(TestSsmString):
    kind = "SecureString"


@pytest.mark.sandbox
class TestSecret(ReferenceResolverContract):
    @pytest.fixture
    def resolver(self, sandbox: Any) -> Secrets:
        return Secrets()

    @pytest.fixture
    def put(self, sandbox: Any) -> Any:
        def put(target: str, region: str, value: str) -> None:
            client = sandbox.client("secretsmanager", region)
            try:
                client.put_secret_value(SecretId=target, SecretString=value)
            except client.exceptions.ResourceNotFoundException:
                client.create_secret(Name=target, SecretString=value)
        return put


class TestSecretJsonKey(TestSecret):
    """``${secret:name:key}``: versions of the secret, values of one key."""

    @pytest.fixture
    def target(self) -> str:
        return "mila-contract/json:password"

    @pytest.fixture
    def put(self, sandbox: Any) -> Any:
        def put(target: str, region: str, value: str) -> None:
            name = target.split(":")[0]
            client = sandbox.client("secretsmanager", region)
            document = json.dumps({"password": value, "user": "app"})
            try:
                client.put_secret_value(SecretId=name, SecretString=document)
            except client.exceptions.ResourceNotFoundException:
                client.create_secret(Name=name, SecretString=document)
        return put
