"""Pure parts of the ``cloudformation``/``sam`` plugin: templates, stack names, packaging,
parameters, settings and detection. No AWS, no sandbox."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mila_cloudformation import plugin
from mila_cloudformation.deployer import StackDeployer, StackSettings, stack_name
from mila_cloudformation.packaging import (
    ArtifactStore,
    deterministic_zip,
    local_artifacts,
    needs_packaging,
    package_template,
)
from mila_cloudformation.templates import (
    Template,
    dump_template,
    is_sam_template,
    load_template,
    parse_text,
)

from mila.config import ProjectConfig, StateConfig
from mila.errors import ConfigError, DeployError
from mila.model import Action, ActionKind, Environment, Workspace, frozen_mapping
from mila.protocols import DeployContext

# ----------------------------------------------------------------------------- stack names


def test_stack_name_is_project_service_env() -> None:
    assert stack_name("shop", "api", "dev") == "shop-api-dev"


def test_stack_name_is_sanitised() -> None:
    assert stack_name("shop", "orders_v2.api", "pr_12") == "shop-orders-v2-api-pr-12"
    assert stack_name("9lives", "api", "dev") == "m-9lives-api-dev"


def test_long_stack_names_are_cut_to_128_and_stay_distinct() -> None:
    a = stack_name("shop", "s" * 200, "dev")
    b = stack_name("shop", "s" * 199 + "t", "dev")
    assert len(a) <= 128 and len(b) <= 128
    assert a != b
    for name in (a, b):
        assert name[0].isalpha() and all(c.isalnum() or c == "-" for c in name)


# ----------------------------------------------------------------------------- templates


SHORT_FORMS = """\
AWSTemplateFormatVersion: 2010-09-09
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Condition: IsProd
    Properties:
      TopicName: !Sub "${AWS::StackName}-topic"
      DisplayName: !Join ["-", [!Ref Env, !Select [0, !GetAZs ""]]]
      Tags:
        - Key: arn
          Value: !GetAtt Queue.Arn
        - Key: nested
          Value: !GetAtt Api.RootResourceId.Extra
        - Key: imported
          Value: !ImportValue shared-Name
        - Key: b64
          Value: !Base64 {"Fn::Sub": "x"}
        - Key: cond
          Value: !If [IsProd, !Ref "AWS::NoValue", !Condition IsProd]
"""


def test_short_form_tags_become_long_forms() -> None:
    body = parse_text(SHORT_FORMS, "t.yaml")
    assert body["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    assert body["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}
    props = body["Resources"]["Topic"]["Properties"]
    assert props["TopicName"] == {"Fn::Sub": "${AWS::StackName}-topic"}
    assert props["DisplayName"] == {"Fn::Join": ["-", [{"Ref": "Env"}, {
        "Fn::Select": [0, {"Fn::GetAZs": ""}]}]]}
    tags = [t["Value"] for t in props["Tags"]]
    assert tags == [
        {"Fn::GetAtt": ["Queue", "Arn"]},
        {"Fn::GetAtt": ["Api", "RootResourceId.Extra"]},
        {"Fn::ImportValue": "shared-Name"},
        {"Fn::Base64": {"Fn::Sub": "x"}},
        {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, {"Condition": "IsProd"}]},
    ]


def test_dumped_template_parses_back_to_the_same_document() -> None:
    body = parse_text(SHORT_FORMS, "t.yaml")
    text = dump_template(body)
    assert "!" not in text  # long forms only
    assert parse_text(text, "again.yaml") == body
    assert dump_template(body) == text  # deterministic


def test_json_templates_parse() -> None:
    assert parse_text('{"Resources": {"A": {"Type": "AWS::SNS::Topic"}}}', "t.json") == {
        "Resources": {"A": {"Type": "AWS::SNS::Topic"}}}


@pytest.mark.parametrize(("text", "line", "words"), [
    ("Resources:\n  A:\n    Type: [unclosed\n", 4, "expected"),
    ("Resources:\n  A:\n    Type: x\n  A:\n    Type: y\n", 4, "duplicate key 'A' (first at line 2)"),
    ("Resources:\n  A:\n    Type: !NotATag x\n", 3, "!NotATag"),
    ("Resources:\n  A:\n   Type: x\n  B: y\n z: 1\n", 5, "expected"),
    ('{\n "Resources": {\n  "A": {,}\n }\n}\n', 3, "invalid JSON"),
])
def test_syntax_errors_name_the_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(DeployError) as failed:
        parse_text(text, "services/api/template.yaml")
    message = str(failed.value)
    assert message.startswith(f"services/api/template.yaml, line {line}:"), message
    assert words in message
    assert failed.value.exit_code == 1


@pytest.mark.parametrize("text", ["- a\n- b\n", "Description: x\n", "Resources: {}\n"])
def test_a_template_needs_resources(text: str) -> None:
    with pytest.raises(DeployError, match="t.yaml: "):
        parse_text(text, "t.yaml")


def test_load_template_shows_the_path_relative_to_the_root(tmp_path: Path) -> None:
    path = tmp_path / "services/api/template.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("Resources:\n  A:\n    Type: [\n")
    with pytest.raises(DeployError, match=r"^services/api/template.yaml, line 4"):
        load_template(path, tmp_path)


# ----------------------------------------------------------------------------- detection


def _write(folder: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return folder


def test_detection_sam_before_cloudformation(tmp_path: Path) -> None:
    sam = _write(tmp_path / "sam", {"template.yaml": "Transform: AWS::Serverless-2016-10-31\n"
                                                     "Resources:\n  F:\n    Type: X\n"})
    sam_list = _write(tmp_path / "saml", {"template.yml": "Transform: [AWS::Serverless-2016-10-31]\n"
                                                          "Resources: {F: {Type: X}}\n"})
    plain = _write(tmp_path / "plain", {"template.json": '{"Resources": {"A": {"Type": "X"}}}'})
    broken_sam = _write(tmp_path / "broken", {"template.yaml": "Transform: AWS::Serverless-2016-10-31\n"
                                                               "Resources: [\n"})
    nothing = _write(tmp_path / "nothing", {"handler.py": "x = 1\n"})
    types = {t.name: t for t in plugin.mila_deployers()}
    assert types["sam"].priority < types["cloudformation"].priority
    assert [types["sam"].detect(p) for p in (sam, sam_list, plain, broken_sam, nothing)] == \
        [True, True, False, True, False]
    assert [types["cloudformation"].detect(p) for p in (sam, plain, nothing)] == [True, True, False]
    assert types["sam"].config_keys == {"capabilities", "tags", "termination_protection",
                                        "lint_ignore"}
    assert not is_sam_template(tmp_path / "missing.yaml")


def test_deployer_types_create_deployers() -> None:
    config = ProjectConfig(root=Path("/x"), config_file="mila.toml", name="shop",
                           default_region="eu-west-1", workspaces=(), state=StateConfig("local"))
    for deployer_type in plugin.mila_deployers():
        deployer = deployer_type.create(config)
        assert deployer.name == deployer_type.name
        assert deployer.version == deployer_type.version


# ----------------------------------------------------------------------------- zips


def _sources(root: Path, order: list[str]) -> Path:
    files = {"app.py": "def handler(e, c):\n    return 1\n", "lib/util.py": "X = 1\n",
             "lib/data/config.json": "{}\n", "bootstrap": "#!/bin/sh\n"}
    for rel in order:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
    os.chmod(root / "bootstrap", 0o775)
    return root


def test_zips_are_deterministic(tmp_path: Path) -> None:
    a = _sources(tmp_path / "a", ["app.py", "lib/util.py", "lib/data/config.json", "bootstrap"])
    b = _sources(tmp_path / "b", ["bootstrap", "lib/data/config.json", "lib/util.py", "app.py"])
    os.utime(b / "app.py", (1_900_000_000, 1_900_000_000))
    os.chmod(b / "app.py", 0o600)
    (b / "lib/__pycache__").mkdir()
    (b / "lib/__pycache__/util.cpython-311.pyc").write_bytes(b"\0cache")
    (b / "stale.pyc").write_bytes(b"\0")

    first = deterministic_zip(a)
    assert deterministic_zip(a) == first  # twice: the same bytes
    assert deterministic_zip(b) == first  # another checkout: the same bytes

    archive = zipfile.ZipFile(io.BytesIO(first))
    assert archive.namelist() == sorted(archive.namelist()) == [
        "app.py", "bootstrap", "lib/data/config.json", "lib/util.py"]
    for info in archive.infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        mode = info.external_attr >> 16 & 0o777
        assert mode == (0o755 if info.filename == "bootstrap" else 0o644)
    assert archive.read("lib/util.py") == b"X = 1\n"


def test_a_changed_file_changes_the_zip(tmp_path: Path) -> None:
    a = _sources(tmp_path / "a", ["app.py", "lib/util.py", "lib/data/config.json", "bootstrap"])
    before = deterministic_zip(a)
    (a / "lib/util.py").write_text("X = 2\n")
    assert deterministic_zip(a) != before


# ----------------------------------------------------------------------------- packaging


class MemoryS3:
    """Just enough S3 for :class:`ArtifactStore` (owned=False: no bucket set-up)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def head_bucket(self, **kw: Any) -> dict[str, Any]:
        return {}

    def head_object(self, Bucket: str, Key: str, **kw: Any) -> dict[str, Any]:
        if Key not in self.objects:
            exc = Exception("404")
            exc.response = {"Error": {"Code": "404"}}  # type: ignore[attr-defined]
            raise exc
        return {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kw: Any) -> dict[str, Any]:
        self.objects[Key] = Body
        self.puts += 1
        return {}


PACKAGED = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Sam:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
  SamSame:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ./src/
  SamInline:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "def handler(e, c): pass"
  SamNoCode:
    Type: AWS::Serverless::Function
    Properties:
      Handler: x.handler
  SamS3:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://elsewhere/code.zip
  Layer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      Content: layer
  Plain:
    Type: AWS::Lambda::Function
    Properties:
      Code: src/app.py
  PlainInline:
    Type: AWS::Lambda::Function
    Properties:
      Code:
        ZipFile: "x = 1"
  Api:
    Type: AWS::Serverless::Api
    Properties:
      DefinitionUri: openapi.yaml
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      DefinitionS3Location: machine.json
  Nested:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: nested/child.yaml
  Glue:
    Type: AWS::Glue::Job
    Properties:
      Command:
        ScriptLocation: !Sub "s3://${Bucket}/x.py"
Outputs:
  Included:
    Value:
      Fn::Transform:
        Name: AWS::Include
        Parameters:
          Location: snippet.yaml
"""


def _package_project(tmp_path: Path) -> tuple[Template, Path]:
    folder = _write(tmp_path / "services/fn", {
        "template.yaml": PACKAGED, "src/app.py": "def handler(e, c):\n    return 1\n",
        "layer/python/lib.py": "Y = 1\n", "openapi.yaml": "openapi: 3.0.0\n",
        "machine.json": "{}\n", "snippet.yaml": "x: 1\n",
        "nested/child.yaml": "Resources:\n  F:\n    Type: AWS::Lambda::Function\n"
                             "    Properties:\n      Code: ../src\n",
    })
    return load_template(folder / "template.yaml", tmp_path), folder


def test_local_paths_are_found_and_remote_or_inline_ones_left_alone(tmp_path: Path) -> None:
    template, _ = _package_project(tmp_path)
    found = [(a.where, a.value) for a in local_artifacts(template.body)]
    assert found == [("Sam.CodeUri", "src"), ("SamSame.CodeUri", "./src/"),
                     ("SamNoCode.CodeUri", "."), ("Layer.Content", "layer"),
                     ("Plain.Code", "src/app.py"), ("Api.DefinitionUri", "openapi.yaml"),
                     ("Machine.DefinitionS3Location", "machine.json"),
                     ("Nested.TemplateURL", "nested/child.yaml")]
    assert needs_packaging(template.body)
    assert not needs_packaging(parse_text("Resources:\n  A:\n    Type: AWS::SNS::Topic\n", "t"))


def test_package_template_rewrites_every_local_path(tmp_path: Path) -> None:
    template, folder = _package_project(tmp_path)
    s3 = MemoryS3()
    store = ArtifactStore(s3, "bkt", "eu-west-1", prefix="shop", owned=False)
    packaged, changed = package_template(template.body, folder, tmp_path, store,
                                         shown=template.shown)
    assert changed
    assert template.body["Resources"]["Sam"]["Properties"]["CodeUri"] == "src"  # not modified
    res = packaged["Resources"]
    sam = res["Sam"]["Properties"]["CodeUri"]
    assert sam.startswith("s3://bkt/shop/") and sam.endswith(".zip")
    assert res["SamSame"]["Properties"]["CodeUri"] == sam  # the same folder, one zip
    assert "CodeUri" not in res["SamInline"]["Properties"]
    assert res["SamNoCode"]["Properties"]["CodeUri"].startswith("s3://bkt/shop/")
    assert res["SamS3"]["Properties"]["CodeUri"] == "s3://elsewhere/code.zip"
    assert set(res["Layer"]["Properties"]["Content"]) == {"S3Bucket", "S3Key"}
    plain = res["Plain"]["Properties"]["Code"]
    assert plain["S3Bucket"] == "bkt" and plain["S3Key"].endswith(".zip")  # a file, zipped
    assert zipfile.ZipFile(io.BytesIO(s3.objects[plain["S3Key"]])).namelist() == ["app.py"]
    assert res["PlainInline"]["Properties"]["Code"] == {"ZipFile": "x = 1"}
    api = res["Api"]["Properties"]["DefinitionUri"]
    assert api.endswith(".yaml") and s3.objects[api.removeprefix("s3://bkt/")] == b"openapi: 3.0.0\n"
    assert set(res["Machine"]["Properties"]["DefinitionS3Location"]) == {"Bucket", "Key"}
    assert res["Glue"]["Properties"]["Command"]["ScriptLocation"] == {"Fn::Sub": "s3://${Bucket}/x.py"}
    nested = res["Nested"]["Properties"]["TemplateURL"]
    assert nested.startswith("https://bkt.s3.eu-west-1.amazonaws.com/shop/")
    child = parse_text(s3.objects[nested.split(".amazonaws.com/")[1]].decode(), "child")
    assert child["Resources"]["F"]["Properties"]["Code"] == {"S3Bucket": "bkt",
                                                             "S3Key": sam.removeprefix("s3://bkt/")}
    include = packaged["Outputs"]["Included"]["Value"]["Fn::Transform"]["Parameters"]["Location"]
    assert include.startswith("s3://bkt/shop/") and include.endswith(".yaml")

    # again: the same keys, nothing uploaded twice
    puts = s3.puts
    again, _ = package_template(template.body, folder, tmp_path, store, shown=template.shown)
    assert again == packaged
    assert s3.puts == puts
    assert len(store.reused) >= 7


def test_sam_globals_code_uri_is_packaged(tmp_path: Path) -> None:
    folder = _write(tmp_path / "svc", {
        "template.yaml": "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n"
                         "    CodeUri: src/\nResources:\n  F:\n    Type: AWS::Serverless::Function\n"
                         "    Properties:\n      Handler: a.b\n",
        "src/a.py": "x = 1\n"})
    template = load_template(folder / "template.yaml", tmp_path)
    assert [a.where for a in local_artifacts(template.body)] == ["Globals.Function.CodeUri"]
    store = ArtifactStore(MemoryS3(), "bkt", "eu-west-1", prefix="shop", owned=False)
    packaged, _ = package_template(template.body, folder, tmp_path, store)
    assert packaged["Globals"]["Function"]["CodeUri"].startswith("s3://bkt/shop/")
    assert "CodeUri" not in packaged["Resources"]["F"]["Properties"]  # the global applies


def test_missing_local_path_names_resource_and_property(tmp_path: Path) -> None:
    folder = _write(tmp_path / "svc", {"template.yaml": "Resources:\n  F:\n    Type: "
                                                        "AWS::Lambda::Function\n    Properties:\n"
                                                        "      Code: nope/\n"})
    template = load_template(folder / "template.yaml", tmp_path)
    store = ArtifactStore(MemoryS3(), "bkt", "eu-west-1", prefix="shop", owned=False)
    with pytest.raises(DeployError, match=r"svc/template.yaml: F\.Code refers to 'nope/'"):
        package_template(template.body, folder, tmp_path, store, shown=template.shown)


# ----------------------------------------------------------------------------- parameters, settings


TEMPLATE = ("Parameters:\n  Name: {Type: String}\n  Url: {Type: String}\n"
            "Resources:\n  T:\n    Type: AWS::SNS::Topic\n")


def _context(tmp_path: Path, ws: Workspace, **fields: Any) -> DeployContext:
    return DeployContext(project="shop", environment=Environment("dev", ("eu-west-1",)),
                         region="eu-west-1", workspace=ws, root=tmp_path, **fields)


def test_parameters_are_the_cores_resolved_values_checked_against_the_template(
        tmp_path: Path) -> None:
    # the core resolves the parameters once (``context.parameters``, see
    # tests/core/test_parameters.py); the deployer takes them as they are
    ws = Workspace("api", "services/api", "service",
                   parameters=frozen_mapping({"Name": "${env}-${region}", "Url": "${db.Url}/x"}))
    template = Template(Path("t.yaml"), "t.yaml", TEMPLATE, parse_text(TEMPLATE, "t.yaml"))
    action = Action("dev", "api", "eu-west-1", ActionKind.DEPLOY, "c", None, "cloudformation")
    deployer = StackDeployer("cloudformation", None)
    resolved = {"Name": "dev-eu-west-1", "Url": "pg://h/x"}
    ctx = _context(tmp_path, ws, parameters=frozen_mapping(resolved))
    assert deployer.parameters(action, ctx, ws, template) == resolved
    extra = Workspace("api", "services/api", "service",
                      parameters=frozen_mapping({"Nope": "x"}), config_file="services/api/mila.toml")
    with pytest.raises(DeployError, match=r"Nope are set in services/api/mila.toml but not declared"):
        deployer.parameters(action, _context(tmp_path, extra, parameters=frozen_mapping(
            {**resolved, "Nope": "x"})), extra, template)
    lacking = Workspace("api", "services/api", "service", parameters=frozen_mapping({"Url": "u"}))
    with pytest.raises(DeployError, match=r"parameters Name have no default and no value") as failed:
        deployer.parameters(action, _context(tmp_path, lacking, parameters=frozen_mapping(
            {"Url": "u"})), lacking, template)
    assert "services/api/mila.toml" in str(failed.value.hint)


@pytest.mark.parametrize(("settings", "key"), [
    ({"capabilities": ["CAPABILITY_ROOT"]}, "service.capabilities"),
    ({"capabilities": "CAPABILITY_IAM"}, "service.capabilities"),
    ({"tags": {"team": 1}}, "service.tags"),
    ({"tags": {"mila:env": "x"}}, "service.tags"),
    ({"termination_protection": "yes"}, "service.termination_protection"),
])
def test_bad_settings_are_config_errors(settings: dict[str, Any], key: str) -> None:
    ws = Workspace("api", "services/api", "service", settings=frozen_mapping(settings),
                   config_file="services/api/mila.toml")
    with pytest.raises(ConfigError) as failed:
        StackSettings.from_workspace(ws)
    assert failed.value.key == key
    assert str(failed.value).startswith("services/api/mila.toml")


def test_settings_defaults() -> None:
    settings = StackSettings.from_workspace(Workspace("api", "services/api", "service"))
    assert settings.capabilities == ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM",
                                     "CAPABILITY_AUTO_EXPAND")
    assert settings.termination_protection is None


# ----------------------------------------------------------------------------- variables


def _variables_context(values: dict[str, str]) -> Any:
    from mila.variables import ResolvedVariable, VariableValues

    resolved = {k: ResolvedVariable(k, "envs/.env", i + 1, v, (v,))
                for i, (k, v) in enumerate(values.items())}
    return DeployContext(
        project="shop", environment=Environment("dev", ("eu-west-1",)), region="eu-west-1",
        workspace=None, root=Path("."), resolved_variables=resolved,
        variables=VariableValues(resolved, environment="dev", region="eu-west-1", outputs={},
                                 fetch=lambda ref: ""))


def test_variables_go_to_every_function_and_the_template_wins() -> None:
    from mila_cloudformation.templates import Template
    from mila_cloudformation.variables import deliver_variables

    body = {"Resources": {
        "A": {"Type": "AWS::Lambda::Function", "Properties": {
            "Environment": {"Variables": {"OWN": "template"}}}},
        "B": {"Type": "AWS::Serverless::Function", "Properties": {}},
        "T": {"Type": "AWS::SNS::Topic"}}}
    template = Template(Path("t.yaml"), "t.yaml", "", body)
    delivery = deliver_variables(template, _variables_context({"OWN": "file", "X": "1"}))
    resources = delivery.template.body["Resources"]
    assert resources["A"]["Properties"]["Environment"]["Variables"] == {"OWN": "template", "X": "1"}
    assert resources["B"]["Properties"]["Environment"]["Variables"] == {"OWN": "file", "X": "1"}
    assert "Properties" not in resources["T"]
    assert delivery.warnings == ["A: OWN is set by the template (A); its value wins over "
                                 "envs/.env:1"]
    assert body["Resources"]["B"]["Properties"] == {}  # the parsed template is not modified


def test_a_reserved_lambda_name_is_refused_before_any_call() -> None:
    from mila_cloudformation.templates import Template
    from mila_cloudformation.variables import deliver_variables

    body = {"Resources": {"A": {"Type": "AWS::Lambda::Function", "Properties": {}}}}
    with pytest.raises(DeployError, match=r"Lambda reserves TZ \(envs/.env:2\)"):
        deliver_variables(Template(Path("t.yaml"), "t.yaml", "", body),
                          _variables_context({"OK": "1", "TZ": "Europe/Paris"}))
