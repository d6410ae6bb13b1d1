"""The docs site builds with `mkdocs build --strict`, and its generated pages follow the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mila import config, hookspecs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def text(site: Path, page: str) -> str:
    return re.sub(r"<[^>]+>", "", (site / page / "index.html").read_text(encoding="utf-8"))


def test_generated_references_are_current() -> None:
    """The CLI, hook, exit-code and IAM references are written into the markdown (readable on
    GitHub and in an editor); they must match the code."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("references", ROOT / "docs/hooks/references.py")
    assert spec is not None and spec.loader is not None
    references = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(references)
    stale = sorted(str(p.relative_to(ROOT)) for p in references.stale_pages())
    assert stale == [], f"stale generated docs {stale}: run `python docs/hooks/references.py`"


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    for page in ("getting-started", "environments", "change-detection", "configuration", "cli",
                 "ci-cd", "plugins", "writing-a-deployer", "writing-a-state-backend", "sandbox",
                 "security", "exit-codes"):
        assert (site / page / "index.html").is_file(), page


def test_cli_page_is_generated_from_the_commands(site: Path) -> None:
    import click

    from mila.cli import cli
    from mila.cli.main import CliContext

    page = text(site, "cli")
    assert "<!-- mila:cli -->" not in page
    ctx = click.Context(cli, info_name="mila", obj=CliContext(), **cli.context_settings)
    for name in cli.list_commands(ctx):
        assert f"mila {name}" in page, name
    for option in ("--project-dir", "--log-format", "--no-prompt", "--only-prompt",
                   "--detailed-exitcode", "--plan-out", "--print-policy"):
        assert option in page, option
    for group in ("mila envs create-replicate", "mila envs destroy-replicate", "mila sandbox stop"):
        assert group in page


def test_every_hook_is_documented(site: Path) -> None:
    page = text(site, "plugins")
    hooks = [n for n in vars(hookspecs) if n.startswith("mila_")]
    assert len(hooks) >= 8
    examples = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8").split("## Hook reference")[0]
    for hook in hooks:
        assert f"def {hook}(" in page, hook  # the generated signature
        assert f"def {hook}(" in examples, f"no example for {hook}"
    assert "first result wins" in page


def test_every_config_key_is_documented(site: Path) -> None:
    page = text(site, "configuration")
    keys = config.ROOT_KEYS | config.PROJECT_KEYS | config.SERVICE_KEYS | {"table", "checksums"}
    from mila.plugins import build_plugin_manager

    for deployer in build_plugin_manager().registry.deployers.values():
        keys |= set(deployer.config_keys)
    for key in sorted(keys):
        assert f"{key}" in page and re.search(rf"\b{re.escape(key)}\b", page), key


def test_security_page_prints_the_policy_of_print_policy(site: Path) -> None:
    page = text(site, "security")
    for sid in ("MilaIdentity", "MilaStateTable", "MilaStateBucket", "MilaStacks"):
        assert sid in page
    assert "arn:aws:dynamodb:eu-west-1:*:table/shop-mila-state" in page


def test_exit_codes_come_from_mila_errors(site: Path) -> None:
    page = text(site, "exit-codes")
    from mila import errors

    for code in (errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_LOCKED,
                 errors.EXIT_CHANGES, errors.EXIT_INTERRUPTED):
        assert str(code) in page
