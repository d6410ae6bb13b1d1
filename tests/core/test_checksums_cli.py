"""``mila checksums`` and ``mila affected`` through the CLI (``run_mila``)."""

from __future__ import annotations

import json

import pytest

ENV = {"MILA_PLUGINS": "mila_hashtest"}


@pytest.fixture
def shop(project):
    config = project.root_config()
    config.write_text('src = ["uv.lock"]\n' + config.read_text())  # a root key: before [project]
    project.write("uv.lock", "lock 1\n")
    project.package("core", files={"core.py": "V = 1\n"})
    project.package("extra", files={"extra.py": "V = 1\n"}, deps=["core"])
    project.service("api", 'deployer = "hashtest"\n',
                    files={"handler.py": "A = 1\n",
                           "pyproject.toml": '[project]\nname = "api"\ndependencies = ["extra"]\n'})
    project.service("web", 'deployer = "hashtest"\ndepends_on = ["api"]\n')
    project.service("jobs", 'deployer = "hashtest"\n')
    project.commit_all()
    return project


def checksums(run_mila, *args: str) -> dict:
    r = run_mila("checksums", "--json", *args, env=ENV)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_json_contract(shop, run_mila) -> None:
    data = checksums(run_mila)
    assert set(data) == {"services", "packages"}
    assert set(data["services"]) == {"api", "web", "jobs"}
    assert set(data["packages"]) == {"core", "extra"}
    assert data["services"]["api"]["depends_on"] == ["extra"]  # direct only, sorted
    assert data["services"]["web"]["depends_on"] == ["api"]
    assert data["packages"]["extra"]["depends_on"] == ["core"]
    for section in data.values():
        for entry in section.values():
            assert set(entry) == {"checksum", "depends_on"}
            assert len(entry["checksum"]) == 64


def test_selection_and_unknown_names(shop, run_mila) -> None:
    full = checksums(run_mila)
    some = checksums(run_mila, "-s", "web,core")
    assert some == {"services": {"web": full["services"]["web"]},
                    "packages": {"core": full["packages"]["core"]}}
    r = run_mila("checksums", "-s", "web,nope", env=ENV)
    assert r.exit_code == 2 and "unknown workspace: nope" in r.output


def test_table_output(shop, run_mila) -> None:
    r = run_mila("checksums", env=ENV)
    assert r.exit_code == 0, r.output
    full = checksums(run_mila)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["workspace", "kind", "checksum", "depends", "on"]
    assert [line.split()[0] for line in lines[1:]] == ["api", "jobs", "web", "core", "extra"]
    assert full["services"]["api"]["checksum"] in r.stdout


def test_checksums_match_what_a_deploy_plans(shop, run_mila) -> None:
    """The printed checksum is the one the planner compares (no plugin inputs here)."""
    from mila.checksums import deploy_checksum, workspace_checksums
    from mila.project import load_project

    project = load_project(shop.root, environ=ENV)
    base = workspace_checksums(project)
    full = checksums(run_mila)
    for s in project.graph.services:
        assert deploy_checksum(project, base[s.name], s, "dev", "eu-west-1").checksum \
            == full["services"][s.name]["checksum"]


def test_root_src_change_changes_everything(shop, run_mila) -> None:
    before = checksums(run_mila)
    shop.write("uv.lock", "lock 2\n")
    after = checksums(run_mila)
    for section in ("services", "packages"):
        for name in before[section]:
            assert before[section][name]["checksum"] != after[section][name]["checksum"]


def affected(run_mila, *args: str) -> dict:
    r = run_mila("affected", "--json", *args, env=ENV)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_affected_lists_changed_workspaces_and_their_dependents(shop, run_mila) -> None:
    assert affected(run_mila, "--since", "HEAD")["services"] == []
    shop.write("packages/core/core.py", "V = 2\n")
    data = affected(run_mila, "--since", "HEAD")
    assert data["services"] == ["api", "web"] and data["packages"] == ["core", "extra"]
    assert data["reasons"]["core"] == ["modified packages/core/core.py"]
    assert data["reasons"]["web"] == ["dependency api changed", "dependency core changed",
                                      "dependency extra changed"]
    shop.commit_all("core 2")
    assert affected(run_mila, "--since", "HEAD")["services"] == []
    assert affected(run_mila, "--since", "HEAD~1")["services"] == ["api", "web"]
    r = run_mila("affected", "--since", "HEAD~1", "--why", env=ENV)
    assert r.stdout.splitlines()[0] == "api"
    assert "  dependency core changed" in r.stdout.splitlines()


def test_affected_reads_service_config_at_the_revision(shop, run_mila) -> None:
    text = (shop.root / "services/jobs/mila.toml").read_text()
    shop.write("services/jobs/mila.toml", text + "timeout = 5\n")
    data = affected(run_mila, "--since", "HEAD")
    assert data["services"] == ["jobs"]
    assert data["reasons"]["jobs"] == ["config changed: service.timeout"]
    shop.commit_all()
    shop.write("services/jobs/mila.toml", text)  # back to what HEAD~1 had
    assert affected(run_mila, "--since", "HEAD~1")["services"] == []


def test_affected_new_service_and_root_config(shop, run_mila) -> None:
    shop.service("fresh", 'deployer = "hashtest"\n')
    assert affected(run_mila, "--since", "HEAD")["services"] == ["fresh"]
    shop.commit_all()
    shop.write("uv.lock", "lock 2\n")
    assert affected(run_mila, "--since", "HEAD")["services"] == ["api", "fresh", "jobs", "web"]


def test_affected_errors(shop, run_mila, project) -> None:
    r = run_mila("affected", "--since", "nope", env=ENV)
    assert r.exit_code == 2 and "'nope' is not a commit" in r.output
    import shutil

    shutil.rmtree(project.root / ".git")
    r = run_mila("affected", "--since", "HEAD", env=ENV)
    assert r.exit_code == 2 and "needs a hasher that reads git revisions" in r.output
