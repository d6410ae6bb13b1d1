"""Built-in mila plugin ``sandbox``: moto's server made faithful to AWS.

mila talks to AWS with plain boto3 and one code path; the sandbox is what that path talks to
offline (the demo, mila's own tests, users' CI). It is moto's WSGI app with:

* every request handled under one lock (:mod:`mila_sandbox.server`), so a conditional write is
  atomic as on AWS;
* one module per fidelity fix, each documenting the AWS behaviour it reproduces and what plain
  moto does instead, installed in the server's process by :mod:`mila_sandbox.fidelity`:

  - :mod:`~mila_sandbox.cfn_changesets` — change sets scoped to their stack, executed once
    from ``AVAILABLE``, CREATE refused for an existing stack;
  - :mod:`~mila_sandbox.cfn_stacks` — create/update/delete/get-template; deleted stays deleted;
  - :mod:`~mila_sandbox.cfn_outputs` — outputs and exports after every operation;
  - :mod:`~mila_sandbox.cfn_failures` — rollback (``ROLLBACK_COMPLETE``,
    ``UPDATE_ROLLBACK_COMPLETE``), ``DisableRollback`` / ``OnFailure``;
  - :mod:`~mila_sandbox.cfn_events` — per-resource events with failure reasons;
  - :mod:`~mila_sandbox.cfn_capabilities` — ``InsufficientCapabilitiesException``;
  - :mod:`~mila_sandbox.cfn_updates` — types moto cannot update are replaced; inline Lambda code;
  - :mod:`~mila_sandbox.cfn_types` — ``ApiGateway::Stage``, ``S3::BucketPolicy``;
  - :mod:`~mila_sandbox.cfn_restapi` — ``RestApi`` from an OpenAPI ``Body`` (SAM's implicit API);
  - :mod:`~mila_sandbox.sam_transform` — ``AWS::Serverless-2016-10-31`` applied server-side;
  - :mod:`~mila_sandbox.lambda_invoke` — invocations answer "not executed", without Docker;

* a version check (:mod:`mila_sandbox.versions`): the fixes patch moto's internals, so they are
  written for pinned moto and aws-sam-translator versions and refuse to run on others.

Importing this package (or :mod:`mila_sandbox.plugin`) never imports moto.
"""
