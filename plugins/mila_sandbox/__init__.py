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
  - :mod:`~mila_sandbox.server_errors` — a Python error answered as one ``InternalFailure``
    line naming operation, stack, resource and cause;
  - :mod:`~mila_sandbox.cfn_validation` — template format errors refused, schema-invalid
    properties fail their resource (cfn-lint's schemas);
  - :mod:`~mila_sandbox.cfn_transforms` — ``AWS::Include``, ``AWS::LanguageExtensions``;
  - :mod:`~mila_sandbox.cfn_template_urls` — ``TemplateURL`` path-style on a loopback endpoint;
  - :mod:`~mila_sandbox.cfn_lambda_layers` — layers of the same stack and public layers;
  - :mod:`~mila_sandbox.cfn_ssm_names` — generated ``AWS::SSM::Parameter`` names;
  - :mod:`~mila_sandbox.cfn_parameter_updates` — parameter changes through ``!Sub`` and
    conditions reach their resources;

* a version check (:mod:`mila_sandbox.versions`): the fixes patch moto's internals, so they are
  written for pinned moto and aws-sam-translator versions and refuse to run on others.

Importing this package (or :mod:`mila_sandbox.plugin`) never imports moto.
"""

#: the account id the sandbox (moto) answers with: defined here only, read by
#: ``mila_sandbox.server``, ``mila_sandbox.testing`` and ``mila_aws.session``
ACCOUNT_ID = "123456789012"
