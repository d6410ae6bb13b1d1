"""Built-in mila plugin ``sandbox``: moto's server made faithful to AWS.

mila talks to AWS with plain boto3 and one code path; the sandbox is what that path talks to
offline (the demo, mila's own tests, users' CI). It is moto's WSGI app with:

* every request handled under one lock (:mod:`mila_sandbox.server`), so a conditional write is
  atomic as on AWS;
* one module per fidelity fix (``cfn_*.py``, ``sam_transform.py``, ``lambda_invoke.py``), each
  documenting the AWS behaviour it reproduces, installed by :mod:`mila_sandbox.fidelity`;
* a version check (:mod:`mila_sandbox.versions`): the fixes patch moto's internals, so they are
  written for pinned moto and aws-sam-translator versions and refuse to run on others.

Importing this package (or :mod:`mila_sandbox.plugin`) never imports moto.
"""
