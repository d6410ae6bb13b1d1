"""The parse cache of workspace files (``.mila/cache/parsed-files.json``): used when a file is
unchanged, never when it changed (even within the same timestamp tick), and never in the way."""

from __future__ import annotations

import json
import os

import pytest

import mila.config
import mila.parsed_files
import mila.racy
from mila.config import load_config
from mila.errors import ConfigError
from mila.parsed_files import CACHE_FILE
from mila.protocols import DeployerType
from mila.workspace import discover

FAKE = DeployerType("fake", create=lambda c: None, detect=lambda p: False)


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The files parsed (TOML) in this test, by project-relative name."""
    seen: list[str] = []
    real = mila.config.parse_toml

    def counting(data: bytes, shown: str) -> dict:
        seen.append(shown)
        return real(data, shown)

    monkeypatch.setattr("mila.workspace.parse_toml", counting)
    return seen


def _project(project) -> None:
    project.root_config()
    project.package("core")
    project.service("api", 'deployer = "fake"\ndepends_on = ["core"]\n')


def graph(project):
    return discover(load_config(project.root), [FAKE])


def _trust_fresh_files(monkeypatch) -> None:
    """Files written by a test are seconds old at most: let the cache keep them."""
    monkeypatch.setattr(mila.racy, "RACY_SECONDS", -60.0)


def test_an_unchanged_file_is_parsed_once(project, parses, monkeypatch) -> None:
    _project(project)
    _trust_fresh_files(monkeypatch)
    first = graph(project)
    assert "services/api/mila.toml" in parses and "packages/core/pyproject.toml" in parses
    parses.clear()
    assert graph(project) == first
    assert parses == []


def test_a_changed_file_is_parsed_again_even_with_its_size_and_mtime_restored(
        project, parses, monkeypatch) -> None:
    _project(project)
    _trust_fresh_files(monkeypatch)
    graph(project)
    path = project.root / "services/api/mila.toml"
    st = os.stat(path)
    text = path.read_text().replace('"core"', '"xxxx"')  # same size
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime as it was: only ctime tells
    parses.clear()
    with pytest.raises(ConfigError, match="'api' depends on 'xxxx'"):
        graph(project)
    assert parses == ["services/api/mila.toml"]


def test_a_file_changed_just_before_the_run_is_not_cached(project, parses) -> None:
    _project(project)  # written now: within RACY_SECONDS of the run
    graph(project)
    parses.clear()
    graph(project)
    assert "services/api/mila.toml" in parses


def test_a_corrupt_or_foreign_cache_gives_the_same_graph(project, monkeypatch) -> None:
    _project(project)
    _trust_fresh_files(monkeypatch)
    first = graph(project)
    cache = project.root / ".mila" / "cache" / CACHE_FILE
    assert json.loads(cache.read_text())["files"]
    for text in ("{not json", '{"format": 999, "files": {}}', "[]",
                 '{"format": 1, "files": {"services/api/mila.toml": [1, 2, 3]}}'):
        cache.write_text(text)
        assert graph(project) == first


def test_errors_and_dates_are_never_cached(project, parses, monkeypatch) -> None:
    project.root_config()
    project.service("api", 'deployer = "fake"\nsince = 2024-01-01\n')
    _trust_fresh_files(monkeypatch)
    fake = DeployerType("fake", create=lambda c: None, config_keys=frozenset({"since"}))
    g = discover(load_config(project.root), [fake])
    assert str(g["api"].settings["since"]) == "2024-01-01"
    parses.clear()
    discover(load_config(project.root), [fake])
    assert parses == ["services/api/mila.toml"]  # a TOML date does not survive JSON
    project.write("services/api/mila.toml", "[service\n")
    for _ in range(2):
        with pytest.raises(ConfigError, match="invalid TOML"):
            graph(project)


def test_an_unwritable_cache_changes_nothing(project, monkeypatch) -> None:
    _project(project)
    _trust_fresh_files(monkeypatch)
    (project.root / ".mila").mkdir()
    (project.root / ".mila" / "cache").write_text("a file where a folder should be")
    assert graph(project) == graph(project)


def test_a_file_that_is_not_utf8_is_one_clear_error(project) -> None:
    project.root_config()
    project.package("core")
    (project.root / "packages/core/mila.toml").write_bytes(b"[package]\nname = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8") as exc:
        graph(project)
    assert "packages/core/mila.toml" in str(exc.value)
