"""Configuration: the contract keys, and one clear error for each kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mila.config import load_config
from mila.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "mila.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


GOOD = """
[project]
name = "shop"
default_region = "eu-west-1"
workspaces = ["services/*"]
[state]
backend = "aws"
table = "t"
checksums = "c"
[accounts.prod]
id = "123456789012"
environments = ["prod"]
"""


def test_contract_keys_are_read(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, GOOD))
    assert (c.name, c.default_region, c.workspaces) == ("shop", "eu-west-1", ("services/*",))
    assert c.state.backend == "aws" and dict(c.state.options) == {"table": "t", "checksums": "c"}
    assert c.account_for("prod").id == "123456789012" and c.account_for("dev") is None


def test_aws_backend_defaults_derive_from_the_project_name(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, '[project]\nname = "shop"\ndefault_region = "us-east-1"\n'))
    assert dict(c.state.options) == {"table": "shop-mila-state", "checksums": "shop-mila-checksums"}


def test_found_by_walking_up_and_in_pyproject(tmp_path: Path) -> None:
    write(tmp_path, '[tool.mila.project]\nname = "p"\ndefault_region = "eu-west-1"\n',
          "pyproject.toml")
    (tmp_path / "a" / "b").mkdir(parents=True)
    c = load_config(tmp_path / "a" / "b")
    assert c.root == tmp_path.resolve() and c.config_file == "pyproject.toml" and c.name == "p"


@pytest.mark.parametrize(("text", "expected"), [
    ('[project]\nname = "s"\ndefault_region = "eu-west-1"\nbogus = 1\n',
     "mila.toml: project.bogus: unknown key 'bogus'"),
    ('[project]\nname = "s"\ndefault_region = "eu-west-1"\n[extra]\n',
     "unknown key 'extra'"),
    ('[project]\nname = "s"\ndefault_region = "eu-westeros-1"\n',
     "'eu-westeros-1' is not an AWS region"),
    ('[project]\nname = "s"\ndefault_region = 3\n', "expected a non-empty string, got int 3"),
    ('[project]\nname = "s"\ndefault_region = "eu-west-1"\nworkspaces = "x/*"\n',
     "project.workspaces: expected a list of strings"),
    ('[project]\ndefault_region = "eu-west-1"\n', "missing required key 'name'"),
    ('[project]\nname = "Shop Name"\ndefault_region = "eu-west-1"\n', "invalid project name"),
    ('[project]\nname = "s"\ndefault_region = "eu-west-1"\n[accounts.x]\nid = "12"\n',
     "'12' is not an AWS account id"),
    ('[project\nname = "s"\n', "invalid TOML"),
    ('name = "s"\n', "unknown key 'name'"),
])
def test_invalid_configs_name_file_key_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert expected in str(info.value)
    assert "mila.toml" in str(info.value)


def test_missing_config_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no mila.toml found") as info:
        load_config(tmp_path)
    assert info.value.hint and "-C" in info.value.hint


def test_no_project_is_its_own_error_type(tmp_path) -> None:
    from mila.config import load_config
    from mila.errors import ConfigError, ExitCode, ProjectNotFound

    with pytest.raises(ProjectNotFound) as caught:
        load_config(tmp_path)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == ExitCode.USAGE == 2
    assert "pass -C DIR" in str(caught.value)
