"""The workspace graph: discovery, services vs packages, inferred edges, config errors, cycles."""

from __future__ import annotations

import pytest

from mila.config import load_config
from mila.errors import ConfigError
from mila.protocols import DeployerType
from mila.workspace import discover

FAKE = DeployerType("fake", create=lambda c: None, detect=lambda p: (p / "template.yaml").exists(),
                    config_keys=frozenset({"sleep"}))


def graph(project):
    return discover(load_config(project.root), [FAKE])


def test_services_packages_and_inferred_dependencies(project) -> None:
    project.root_config()
    project.package("shop-core")
    project.package("shop-events", deps=["Shop_Core>=1.0"])
    project.service("api", 'depends_on = ["shop-events"]\nregions = ["us-east-1"]\n'
                           'parameters = { Stage = "${env}" }\ndeployer = "fake"\n')
    project.write("services/web/template.yaml", "Resources: {}\n")
    project.write("services/web/package.json", '{"name": "web", "dependencies": {"shop-core": "*"}}')
    g = graph(project)
    assert [w.name for w in g.services] == ["api", "web"]
    assert [w.name for w in g.packages] == ["shop-core", "shop-events"]
    assert g["web"].deployer == "fake" and g["web"].config_file is None
    assert g["shop-events"].depends_on == ("shop-core",)  # inferred from pyproject
    assert g["web"].depends_on == ("shop-core",)  # inferred from package.json
    assert g.dependencies("api", transitive=True) == ["shop-core", "shop-events"]
    assert g.dependents("shop-core", transitive=True) == ["api", "shop-events", "web"]
    assert g["api"].regions == ("us-east-1",) and g["api"].parameters["Stage"] == "${env}"
    assert g.topological_order().index("shop-core") < g.topological_order().index("api")


def test_a_dependency_may_name_a_workspace_by_its_folder(project) -> None:
    """A custom ``name`` does not hide the folder name: ``core`` still finds packages/core."""
    project.root_config()
    project.write("packages/core/mila.toml", '[package]\nname = "shared"\n')
    project.write("packages/core/x.py", "")
    project.write("services/api/template.yaml", "Resources: {}\n")
    project.write("services/api/mila.toml", '[service]\nname = "orders-api"\n')
    project.write("services/api/package.json", '{"dependencies": {"Core": "*"}}')
    project.write("services/web/template.yaml", "Resources: {}\n")
    project.write("services/web/pyproject.toml",
                  '[project]\nname = "web"\ndependencies = ["api", "shared"]\n')
    g = graph(project)
    assert g["orders-api"].depends_on == ("shared",)  # folder name, PEP 503-normalised
    assert g["web"].depends_on == ("orders-api", "shared")  # folder name and custom name


def test_an_own_name_wins_over_another_workspace_folder_name(project) -> None:
    project.root_config()
    project.write("packages/a/mila.toml", '[package]\nname = "b"\n')
    project.write("packages/b/mila.toml", '[package]\nname = "c"\n')
    project.write("services/api/template.yaml", "Resources: {}\n")
    project.write("services/api/pyproject.toml", '[project]\nname = "api"\ndependencies = ["b"]\n')
    assert graph(project)["api"].depends_on == ("b",)  # the package named b, in folder a


def test_cycle_is_printed(project) -> None:
    project.root_config()
    project.service("a", 'deployer = "fake"\ndepends_on = ["b"]\n')
    project.service("b", 'deployer = "fake"\ndepends_on = ["c"]\n')
    project.service("c", 'deployer = "fake"\ndepends_on = ["a"]\n')
    with pytest.raises(ConfigError, match=r"dependency cycle: a -> b -> c -> a"):
        graph(project)


@pytest.mark.parametrize(("body", "expected"), [
    ('deployer = "fake"\ndepends_on = ["nothing"]\n', "depends on 'nothing', which is not a workspace"),
    ('deployer = "fake"\nregions = ["mars-1"]\n', "'mars-1' is not an AWS region"),
    ('deployer = "fake"\nfoo = 1\n', "unknown key 'foo'"),
    ('deployer = "fake"\ndepends_on = "x"\n', "expected a list of strings"),
    ('deployer = "fake"\nparameters = { A = 1 }\n', "parameters.A: expected a string"),
    ('deployer = "nope"\n', "unknown deployer 'nope'"),
    ('name = "x"\n', "no deployer detects this service"),
    ('deployer = "fake"\ntimeout = 0\n', "expected minutes from 1 to 1440"),
])
def test_service_config_errors_name_the_file_and_key(project, body: str, expected: str) -> None:
    project.root_config()
    project.service("api", body)
    with pytest.raises(ConfigError) as info:
        graph(project)
    assert expected in str(info.value)
    assert "services/api/mila.toml" in str(info.value)


def test_duplicate_names_and_missing_folders(project) -> None:
    project.root_config()
    project.service("api", 'deployer = "fake"\n')
    project.service("other", 'deployer = "fake"\nname = "api"\n')
    with pytest.raises(ConfigError, match="two workspaces are named 'api'"):
        graph(project)
    project.write("mila.toml", '[project]\nname = "s"\ndefault_region = "eu-west-1"\n'
                               'workspaces = ["nowhere/*"]\n')
    with pytest.raises(ConfigError, match="'nowhere/\\*' matches no folder"):
        graph(project)


def test_deployer_specific_keys_are_accepted(project) -> None:
    project.root_config()
    project.service("api", 'deployer = "fake"\nsleep = 2\n')
    assert graph(project)["api"].settings["sleep"] == 2
