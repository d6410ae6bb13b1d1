"""What template validation (cfn-lint's schemas) costs the sandbox per stack operation.

    .venv/bin/python bench/bench_sandbox_validation.py [--templates 20]

Starts the sandbox in this process and creates stacks from ``--templates`` distinct small
templates (a queue, a table, an SSM parameter, a Lambda function with its role), then the same
templates again (cached), then with validation switched off. Prints medians per CreateStack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def template(i: int) -> str:
    return json.dumps({"Resources": {
        f"Queue{i}": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30 + i}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
        "Setting": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Type": "String", "Value": {"Fn::GetAtt": [f"Queue{i}", "Arn"]}}}}})


def run(cfn, templates: list[str], prefix: str) -> list[float]:
    times = []
    for n, body in enumerate(templates):
        start = time.perf_counter()
        cfn.create_stack(StackName=f"{prefix}{n}", TemplateBody=body)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", type=int, default=20)
    args = parser.parse_args()
    import boto3
    from mila_sandbox import cfn_validation
    from mila_sandbox.server import SandboxServer

    server = SandboxServer(port=0).start()
    cfn = boto3.client("cloudformation", endpoint_url=server.endpoint_url, region_name="eu-west-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    templates = [template(i) for i in range(args.templates)]
    first = run(cfn, templates[:1], "first")
    distinct = run(cfn, templates[1:], "distinct")
    cached = run(cfn, templates[1:], "cached")
    cfn_validation.matches = lambda template, region: ()  # validation off
    off = run(cfn, [template(1000 + i) for i in range(args.templates - 1)], "off")
    server.stop()
    print(f"first template (loads cfn-lint): {first[0]:.2f} s")
    for label, times in (("distinct templates", distinct), ("same templates again", cached),
                         ("validation off", off)):
        print(f"{label}: median {statistics.median(times) * 1000:.0f} ms per CreateStack")


if __name__ == "__main__":
    main()
