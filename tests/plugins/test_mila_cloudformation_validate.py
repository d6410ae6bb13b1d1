"""The cloudformation deployer's plan-time ``validate``: template syntax, template parameters,
cfn-lint errors (refuse, exit 2, file:line and rule) and warnings (shown, silenced per service
with ``lint_ignore``). No AWS call: `mila validate` and `mila deploy` refuse before any."""

from __future__ import annotations

import json

import pytest

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Topic:
    Type: String
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-${Topic}"
"""


@pytest.fixture
def web(project, run_mila):
    project.root_config(workspaces=["services/*"])
    project.service("web", 'deployer = "cloudformation"\nparameters = { Topic = "t" }\n',
                    files={"template.yaml": TEMPLATE})
    return project


def test_invalid_yaml_and_missing_parameters_are_refused(web, run_mila) -> None:
    web.write("services/web/template.yaml", TEMPLATE.replace("    Type: AWS::S3::Bucket",
                                                             "    Type: [AWS::S3::Bucket"))
    r = run_mila("validate")
    assert r.exit_code == 2, r.output
    assert "services/web/template.yaml, line 8: invalid YAML" in r.output
    web.write("services/web/template.yaml", TEMPLATE)
    web.write("services/web/mila.toml", '[service]\ndeployer = "cloudformation"\n')
    r = run_mila("validate")
    assert r.exit_code == 2, r.output
    assert "parameters Topic have no default and no value" in r.output
    web.write("services/web/mila.toml",
              '[service]\ndeployer = "cloudformation"\nparameters = { Topic = "t", X = "y" }\n')
    r = run_mila("validate")
    assert r.exit_code == 2 and "parameters X are set in services/web/mila.toml" in r.output


@pytest.mark.slow  # imports cfn-lint (seconds on a busy machine)
def test_cfn_lint_errors_refuse_and_warnings_can_be_silenced(web, run_mila) -> None:
    r = run_mila("validate", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["warnings"] == []

    web.write("services/web/template.yaml",
              TEMPLATE.replace("BucketName", "BucketNme").replace("${Topic}", "x"))
    r = run_mila("validate")
    assert r.exit_code == 2, r.output
    assert "services/web/template.yaml:9: [E3002]" in r.output and "BucketNme" in r.output
    # the deploy refuses too, before any lock or write (and before any AWS call)
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1").exit_code == 0
    r = run_mila("deploy", "-e", "dev", "--no-prompt")
    assert r.exit_code == 2 and "[E3002]" in r.output, r.output
    assert json.loads(run_mila("envs", "describe", "dev", "--json").stdout)["records"] == []
    assert json.loads(run_mila("history", "-e", "dev", "--json").stdout) == []

    web.write("services/web/template.yaml", TEMPLATE.replace("${Topic}", "x"))
    r = run_mila("validate")
    assert r.exit_code == 0, r.output
    assert "warning: web: services/web/template.yaml:3: [W2001]" in r.output
    r = run_mila("deploy", "-e", "dev", "--json", "--only-prompt")
    assert r.exit_code == 0, r.output
    (warning,) = json.loads(r.stdout)["warnings"]
    assert (warning["service"], warning["file"], warning["line"], warning["rule"]) == \
        ("web", "services/web/template.yaml", 3, "W2001")
    web.write("services/web/mila.toml", '[service]\ndeployer = "cloudformation"\n'
                                        'parameters = { Topic = "t" }\nlint_ignore = ["W2001"]\n')
    r = run_mila("validate", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["warnings"] == []
