"""The ``serverless`` deployer: Serverless Framework services, packaged by the framework and
deployed through mila's CloudFormation engine."""
