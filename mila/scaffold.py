"""``mila new``: the files of a new project that deploys as created.

One SAM service (a Python Lambda function using the shared package), one shared package, the
root ``mila.toml`` and a ``.gitignore``. Every answer is checked before the first file is
written; an existing ``mila.toml`` is never overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mila.config import PROJECT_NAME_RE, check_region
from mila.errors import MilaError

STATE_BACKENDS = ("aws", "local")
STATE_NOTES = {"aws": "   # DynamoDB + S3, created by `mila init`", "local": "  # SQLite in .mila/"}
WORKSPACE_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class NewProject:
    name: str
    region: str
    state: str = "aws"
    service: str = "hello"
    package: str = "common"


def default_name(folder: Path) -> str:
    """A valid project name from a folder name (``My_App`` → ``my-app``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")[:40]
    return name if PROJECT_NAME_RE.match(name) else "app"


def check(answers: NewProject) -> None:
    if not PROJECT_NAME_RE.match(answers.name):
        raise MilaError(f"invalid project name '{answers.name}'",
                        hint="lowercase letters, digits and dashes, at most 40 characters")
    check_region(answers.region, key="--region")
    if answers.state not in STATE_BACKENDS:
        raise MilaError(f"unknown state backend '{answers.state}'",
                        hint=f"choose {' or '.join(STATE_BACKENDS)}")
    for what, value in (("service", answers.service), ("package", answers.package)):
        if not WORKSPACE_RE.match(value):
            raise MilaError(f"invalid {what} name '{value}'",
                            hint="lowercase letters, digits and dashes, starting with a letter")
    if answers.service == answers.package:
        raise MilaError("the service and the package need different names")


def files(answers: NewProject) -> dict[str, str]:
    """Relative path → content."""
    return {**_root_files(answers), **_service_files(answers), **_package_files(answers)}


def _root_files(answers: NewProject) -> dict[str, str]:
    return {
        "mila.toml": f'''# Created by `mila new`; every key is described in the docs (Configuration).
[project]
name = "{answers.name}"
default_region = "{answers.region}"
workspaces = ["packages/*", "services/*"]

[state]
backend = "{answers.state}"{STATE_NOTES[answers.state]}
''',
        ".gitignore": ".mila/\n__pycache__/\n.aws-sam/\n",
    }


def _service_files(answers: NewProject) -> dict[str, str]:
    svc, pkg = answers.service, answers.package
    svc_mod, pkg_mod = svc.replace("-", "_"), pkg.replace("-", "_")
    function = "".join(part.title() for part in svc.split("-")) + "Function"
    return {
        f"services/{svc}/mila.toml": f'''# A SAM service (detected from the Transform in template.yaml); it
# uses the package {pkg} (declared in pyproject.toml): changing {pkg} redeploys it.
[service]
parameters = {{ Env = "${{env}}" }}
''',
        f"services/{svc}/pyproject.toml": f'''[project]
name = "{svc}"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["{pkg}"]
''',
        f"services/{svc}/template.yaml": f'''AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: {svc} - created by `mila new`.

Parameters:
  Env:
    Type: String

Resources:
  {function}:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src/
      Handler: {svc_mod}.app.handler
      Environment:
        Variables:
          ENV: !Ref Env

Outputs:
  FunctionName:
    Value: !Ref {function}
''',
        f"services/{svc}/src/{svc_mod}/__init__.py": "",
        f"services/{svc}/src/{svc_mod}/app.py": f'''from {pkg_mod} import greeting


def handler(event, context):
    return {{"statusCode": 200, "body": greeting("{svc}")}}
''',
    }


def _package_files(answers: NewProject) -> dict[str, str]:
    pkg = answers.package
    pkg_mod = pkg.replace("-", "_")
    return {
        f"packages/{pkg}/pyproject.toml": f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{pkg}"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = []
''',
        f"packages/{pkg}/{pkg_mod}/__init__.py": '''def greeting(name: str) -> str:
    return f"hello from {name}"
''',
    }


def scaffold(folder: Path, answers: NewProject) -> list[Path]:
    """Write the project under ``folder``; returns the files written."""
    check(answers)
    if (folder / "mila.toml").exists():
        raise MilaError(f"{folder / 'mila.toml'} already exists",
                        hint="run `mila new` in an empty or new folder")
    content = files(answers)
    clashes = [rel for rel in content if (folder / rel).exists()]
    if clashes:
        raise MilaError(f"{folder / clashes[0]} already exists", hint="pick another folder")
    written = []
    for rel, text in content.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
