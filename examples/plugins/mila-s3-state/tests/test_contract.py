"""The core's state contract suite, run against the ``s3`` backend on the mila sandbox.

The ``sandbox`` fixture (from mila's pytest plugin) empties the sandbox and points boto3 at it
for each test; the sandbox serialises requests, so S3's conditional writes are as atomic there
as on AWS.
"""

from __future__ import annotations

import uuid

import pytest
from mila_s3_state.state import S3State

from mila.testing.contracts import StateBackendContract


class TestS3StateContract(StateBackendContract):
    # every conditional write is a round trip to the (serialised) sandbox: let waiters breathe
    retry_delay = 0.05
    race_threads = 8
    race_rounds = 3
    many_services = 30
    counter_workers = 6
    counter_increments = 4

    @pytest.fixture
    def fresh_backend(self, sandbox: object) -> S3State:
        return S3State(bucket=f"mila-s3-state-{uuid.uuid4().hex[:12]}", region="eu-west-1")
