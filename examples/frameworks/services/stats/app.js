// A CDK app of two stacks: `cdk synth` writes the CloudFormation, mila deploys it.
// mila passes the environment and region as context (mila:env, mila:region) and each
// [service].parameters value of mila.toml as context too (here GREETER_FUNCTION, QUEUE_ARN).
const cdk = require('aws-cdk-lib');
const lambda = require('aws-cdk-lib/aws-lambda');
const ssm = require('aws-cdk-lib/aws-ssm');

const app = new cdk.App();
const env = app.node.getContext('mila:env');
const greeter = app.node.getContext('GREETER_FUNCTION');
const queueArn = app.node.getContext('QUEUE_ARN');

const settings = new cdk.Stack(app, 'Settings');
const limit = new ssm.StringParameter(settings, 'Limit', {
  parameterName: `/fw/${env}/stats/limit`,
  stringValue: '100',
});

const api = new cdk.Stack(app, 'Api');
const fn = new lambda.Function(api, 'Stats', {
  runtime: lambda.Runtime.PYTHON_3_12,
  handler: 'stats.handler',
  code: lambda.Code.fromAsset('lambda'),
  environment: {
    GREETER_FUNCTION: greeter,
    QUEUE_ARN: queueArn,
    LIMIT_PARAMETER: limit.parameterName, // a cross-stack reference: Settings deploys first
  },
});
new cdk.CfnOutput(api, 'StatsFunctionName', { value: fn.functionName });
new cdk.CfnOutput(api, 'StatsGreeter', { value: greeter });
