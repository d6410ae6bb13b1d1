"""The ``cdk`` deployer: AWS CDK apps, synthesized by the CDK and deployed stack by stack
through mila's CloudFormation engine."""

#: the deployer's name, and its version: it goes into every CDK service's checksum, so a new
#: version redeploys (here, light to import, for the plugin and the deployer alike)
NAME = "cdk"
VERSION = "1"
