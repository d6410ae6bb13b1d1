"""The live progress view on a real terminal (a pty): never wider than the terminal, never
broken by a log line; plain lines with CI or NO_COLOR even on a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
COLUMNS = 50


def run_on_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mila", *args], stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise AssertionError("mila did not finish: " + b"".join(chunks).decode()[-2000:])
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        proc.wait(timeout=timeout)
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def slow_shop(project, run_mila, monkeypatch):
    monkeypatch.setenv("MILA_PLUGINS", "mila_fake_deployer")
    project.root_config()
    long_name = "a-service-with-a-rather-long-name-for-the-view"
    project.service(long_name, 'deployer = "fake"\nsleep = 0.6\nwarn = "careful"\n')
    project.service("web", 'deployer = "fake"\nsleep = 0.6\n')
    assert run_mila("init").exit_code == 0
    assert run_mila("envs", "create", "dev", "--regions", "eu-west-1,ap-southeast-2").exit_code == 0
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "COLUMNS")}
    env.update(MILA_PLUGINS="mila_fake_deployer", TERM="xterm-256color",
               PYTHONPATH=str(ROOT / "tests" / "support"))
    return project, env


def test_live_view_fits_the_terminal_and_log_lines_do_not_break_it(slow_shop) -> None:
    project, env = slow_shop
    out = run_on_pty(["-C", str(project.root), "deploy", "-e", "dev", "--yes"], env)
    assert "\x1b[" in out, out  # the live view (cursor moves, colours) was used
    text = ANSI.sub("", out)
    segments = [s for s in re.split(r"[\r\n]", text) if s.strip()]
    too_wide = [s for s in segments if len(s) > COLUMNS]
    assert not too_wide, too_wide
    warning = [s for s in segments if "careful" in s]
    assert warning and all("[warning" in s for s in warning)  # a whole log line, not a piece
    assert "succeeded" in text and "total" in text


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["CI", "NO_COLOR"])
def test_plain_lines_on_a_terminal_with_ci_or_no_color(slow_shop, variable) -> None:
    project, env = slow_shop
    out = run_on_pty(["-C", str(project.root), "deploy", "-e", "dev", "--yes", "-c", "1"],
                     {**env, variable: "1"})
    assert re.search(r"^\d\d:\d\d:\d\d web eu-west-1 first_deploy: started\r?$", out, re.M), out
    assert "\x1b[?25l" not in out  # no live view (it hides the cursor)
