"""`mila build` with the built-in SAM deployer, and `mila cache clear` (no AWS, no network)."""

from __future__ import annotations

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src, Handler: app.handler, Runtime: python3.12}
"""


def test_build_bundles_a_workspace_package_and_cache_clear_forgets_it(project, run_mila) -> None:
    project.root_config()
    project.package("common", files={"common/__init__.py": "V = 1\n"})
    project.service("api", files={"template.yaml": TEMPLATE, "src/app.py": "import common\n",
                                  "pyproject.toml": '[project]\nname = "api"\n'
                                                    'dependencies = ["common"]\n'})
    project.commit_all()
    r = run_mila("build")
    assert r.exit_code == 0, r.output
    assert "api: built" in r.output
    r = run_mila("build", "-s", "common")  # a package named as a service: said so, exit 2
    assert r.exit_code == 2 and "'common' is a package, not a service" in r.output
    r = run_mila("build", "-s", "apii")
    assert r.exit_code == 2 and "did you mean 'api'?" in r.output
    cache = project.root / ".mila/cache/build"
    built = [p for p in cache.glob("*/artifact/common/__init__.py")]
    assert [p.read_text() for p in built] == ["V = 1\n"]
    r = run_mila("cache", "clear")
    assert r.exit_code == 0 and "cleared the cache" in r.output
    assert not (project.root / ".mila/cache").exists()
    assert (project.root / "mila.toml").exists()  # nothing else goes
    assert run_mila("cache", "clear").exit_code == 0  # an empty cache is fine


def test_a_failing_build_exits_1_naming_the_function(project, run_mila) -> None:
    project.root_config()
    project.service("api", files={"template.yaml": TEMPLATE.replace(
        "Properties:", "Metadata: {BuildMethod: cobol}\n    Properties:"),
        "src/app.py": ""})
    project.commit_all()
    r = run_mila("build")
    assert r.exit_code == 1
    assert "api: failed: Fn: unsupported BuildMethod 'cobol'" in r.output
