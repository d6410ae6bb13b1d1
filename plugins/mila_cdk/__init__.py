"""The ``cdk`` deployer: AWS CDK apps, synthesized by the CDK and deployed stack by stack
through mila's CloudFormation engine."""
