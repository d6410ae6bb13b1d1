"""`mila sandbox` through the real console script: foreground, --background, status, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from mila.cli import cli

pytestmark = pytest.mark.sandbox
MILA = str(Path(sys.executable).parent / "mila")


def mila(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MILA, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})


def exports(stdout: str) -> dict[str, str]:
    lines = [ln.removeprefix("export ") for ln in stdout.splitlines() if ln.startswith("export ")]
    return dict(ln.split("=", 1) for ln in lines)


def gone(pid: int) -> bool:
    """The process ended (a zombie whose reaper is not us counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_background_status_stop(tmp_path: Path, project) -> None:
    project.root_config()
    sub = project.root / "services"
    started = mila("sandbox", "--background", "--port", "0", cwd=sub)
    assert started.returncode == 0, started.stderr
    env = exports(started.stdout)
    assert set(env) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                        "AWS_DEFAULT_REGION", "MILA_SANDBOX"}
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    pid_file = project.root / ".mila" / "sandbox.pid"  # in the project, not the cwd
    info = json.loads(pid_file.read_text())
    assert {oct(p.stat().st_mode & 0o777) for p in (pid_file, pid_file.parent / "sandbox.log")} \
        == {"0o600"} and oct(pid_file.parent.stat().st_mode & 0o777) == "0o700"
    try:
        sts = boto3.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="eu-west-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        assert sts.get_caller_identity()["Account"] == "123456789012"
        iam = boto3.client("iam", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="eu-west-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="eu-west-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing"
                     ).create_function(FunctionName="f", Runtime="python3.12", Role=role,
                                       Handler="index.handler", Code={"ZipFile": b"PK\x05\x06"
                                                                      + b"\x00" * 18})
        from_sub = mila("sandbox", "status", cwd=sub)  # a Lambda exists; looked up from below
        assert from_sub.returncode == 0 and "sandbox running" in from_sub.stdout
        again = mila("sandbox", "--background", "--port", "0", cwd=project.root)
        assert again.returncode == 2 and "already running" in again.stderr
        status = mila("sandbox", "status", "--json", cwd=project.root)
        assert status.returncode == 0
        assert json.loads(status.stdout)["endpoint_url"] == env["AWS_ENDPOINT_URL"]
    finally:
        stopped = mila("sandbox", "stop", cwd=project.root)
    assert stopped.returncode == 0 and f"pid {info['pid']}" in stopped.stdout
    assert not pid_file.exists()
    assert gone(info["pid"])
    status = mila("sandbox", "status", cwd=project.root)
    assert status.returncode == 1 and f"no sandbox running (no {pid_file})" in status.stdout
    assert mila("sandbox", "stop", cwd=project.root).returncode == 0  # stopping twice is fine


def test_outside_a_project_the_pid_file_is_in_the_cwd(tmp_path: Path) -> None:
    status = mila("sandbox", "status", "--json", cwd=tmp_path)
    assert status.returncode == 1
    assert json.loads(status.stdout) == {"running": False, "pid": None, "endpoint_url": None,
                                         "pid_file": str(tmp_path / ".mila" / "sandbox.pid")}


def test_foreground_prints_the_exports_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen([MILA, "sandbox", "--port", "0", "--region", "us-east-1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(5)]  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    env = exports("\n".join(lines))
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["MILA_SANDBOX"] == "1" and env["AWS_ACCESS_KEY_ID"] == "testing"
    assert proc.returncode == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_non_loopback_hosts_are_refused(tmp_path: Path, host: str) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "sandbox", "--host", host,
                                      "--background"])
    assert result.exit_code == 2
    assert "only listens on loopback" in result.output
    assert not (tmp_path / ".mila").exists()


def test_without_moto_it_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    from mila_sandbox import versions

    monkeypatch.setattr(versions, "installed_versions",
                        lambda: {"moto": None, "aws-sam-translator": None})
    for args in (["sandbox", "--port", "0"], ["sandbox", "--background", "--port", "0"]):
        result = CliRunner().invoke(cli, ["-C", str(tmp_path), *args])
        assert result.exit_code == 2, result.output
        assert 'pip install "mila[sandbox]"' in result.output
        assert "moto" in result.output


def test_other_versions_are_refused(monkeypatch) -> None:
    from mila_sandbox import versions

    monkeypatch.setattr(versions, "installed_versions",
                        lambda: {"moto": "5.3.0", "aws-sam-translator": "1.115.0"})
    with pytest.raises(versions.SandboxUnavailable, match=r"moto 5\.3\.0 \(needs 5\.2\.5\)"):
        versions.check_versions()


def test_importing_the_plugin_does_not_import_moto() -> None:
    code = ("import sys, mila_sandbox.plugin, mila.testing.pytest_plugin, mila_sandbox.testing,"
            " mila_sandbox.pytest_plugin;"
            "from mila.plugins import build_plugin_manager; build_plugin_manager().registry;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('moto', 'samtranslator', 'boto3', 'flask', 'werkzeug')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fixtures_skip_without_moto_and_fail_on_other_versions(monkeypatch) -> None:
    from mila_sandbox import pytest_plugin, versions

    monkeypatch.setattr(versions, "installed_versions",
                        lambda: {"moto": None, "aws-sam-translator": None})
    with pytest.raises(pytest.skip.Exception, match='pip install "mila\\[sandbox\\]"'):
        pytest_plugin._require_sandbox()
    monkeypatch.setattr(versions, "installed_versions",
                        lambda: {"moto": "9.9.9", "aws-sam-translator": "1.115.0"})
    with pytest.raises(pytest.fail.Exception, match=r"moto 9\.9\.9"):
        pytest_plugin._require_sandbox()
