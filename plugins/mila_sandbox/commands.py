"""``mila sandbox`` / ``mila sandbox stop`` / ``mila sandbox status``.

``mila sandbox`` serves in the foreground until Ctrl-C, after printing the ``export`` lines that
point boto3 and mila at it. ``--background`` starts it as a detached process, writes
``<project>/.mila/sandbox.pid`` (``./.mila/`` outside a project; JSON: pid, endpoint, region) and
returns once the server answers; ``stop`` ends that process, ``status`` reports it (exit 0 when
it answers, 1 when it does not).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from mila.errors import EXIT_FAILED, MilaError

DEFAULT_PORT = 4566
DEFAULT_REGION = "eu-west-1"
PID_FILE = "sandbox.pid"
LOG_FILE = "sandbox.log"


def mila_dir(ctx: click.Context) -> Path:
    """``<project>/.mila`` inside a project (``-C`` honoured), else ``./.mila``."""
    from mila.config import find_root

    start = getattr(ctx.find_root().obj, "project_dir", None) or Path.cwd()
    try:
        return find_root(Path(start)) / ".mila"
    except MilaError:
        return Path(start).resolve() / ".mila"


def export_lines(endpoint_url: str, region: str) -> list[str]:
    return [f"export AWS_ENDPOINT_URL={endpoint_url}",
            "export AWS_ACCESS_KEY_ID=testing",
            "export AWS_SECRET_ACCESS_KEY=testing",
            f"export AWS_DEFAULT_REGION={region}",
            "export MILA_SANDBOX=1"]


def read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a recycled pid is not our sandbox
        try:
            return b"mila_sandbox" in cmdline.read_bytes()
        except OSError:
            return False
    return True


@click.group(invoke_without_command=True)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to listen on; any other address is refused.")
@click.option("--region", default=DEFAULT_REGION, show_default=True,
              help="The region printed in AWS_DEFAULT_REGION.")
@click.option("--background", is_flag=True,
              help="Start detached, write .mila/sandbox.pid, return once it answers.")
@click.pass_context
def sandbox(ctx: click.Context, port: int, host: str, region: str, background: bool) -> None:
    """Run the sandbox: an offline AWS (moto made faithful) on this machine.

    Prints the variables to export, then serves until Ctrl-C. Needs
    `pip install "mila[sandbox]"`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from mila_sandbox.server import check_loopback

    check_loopback(host)
    if background:
        start_background(mila_dir(ctx), host, port, region)
        return
    from mila_sandbox.server import SandboxServer

    server = SandboxServer(host, port, quiet=False)
    try:  # Ctrl-C from here on is the normal way to stop, whenever it comes
        click.echo(f"# mila sandbox on {server.endpoint_url} — Ctrl-C to stop. Run:", err=True)
        for line in export_lines(server.endpoint_url, region):
            click.echo(line)
        sys.stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("sandbox stopped", err=True)


def start_background(folder: Path, host: str, port: int, region: str) -> None:
    from mila.private import private_dirs, touch_private
    from mila_sandbox.versions import check_versions

    check_versions()  # a clear message now, not a dead child later
    pid_file = folder / PID_FILE
    running = read_pid_file(pid_file)
    if running and process_alive(running["pid"]):
        raise MilaError(f"a sandbox is already running (pid {running['pid']}, "
                        f"{running.get('endpoint_url')})", hint="stop it with `mila sandbox stop`")
    private_dirs(folder, folder)  # .mila/ 0700, its files 0600
    touch_private(folder / LOG_FILE)
    if port == 0:
        from mila_sandbox.server import free_port

        port = free_port()
    log = (folder / LOG_FILE).open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "mila_sandbox.serve", "--host", host,
                             "--port", str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, close_fds=True)
    log.close()
    host_part = f"[{host}]" if ":" in host else host
    endpoint_url = f"http://{host_part}:{port}"
    from mila_sandbox.server import wait_until_answering

    try:
        wait_until_answering(endpoint_url, alive=lambda: proc.poll() is None)
    except MilaError:
        if proc.poll() is None:
            proc.kill()
        tail = (folder / LOG_FILE).read_text(errors="replace").strip().splitlines()[-3:]
        raise MilaError("the sandbox did not start: " + (" / ".join(tail) or "no output"),
                        hint=f"see {folder / LOG_FILE}") from None
    touch_private(pid_file)
    pid_file.write_text(json.dumps({"pid": proc.pid, "endpoint_url": endpoint_url,
                                    "region": region, "started": time.time()}) + "\n")
    click.echo(f"# mila sandbox started in the background (pid {proc.pid}) on {endpoint_url}; "
               "stop it with `mila sandbox stop`. Run:", err=True)
    for line in export_lines(endpoint_url, region):
        click.echo(line)


@sandbox.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the sandbox started with --background."""
    pid_file = mila_dir(ctx) / PID_FILE
    info = read_pid_file(pid_file)
    if info is None:
        click.echo(f"no sandbox running (no {pid_file})")
        return
    pid = info["pid"]
    if process_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
        click.echo(f"sandbox stopped (pid {pid})")
    else:
        click.echo(f"the sandbox (pid {pid}) was no longer running")
    pid_file.unlink(missing_ok=True)


@sandbox.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Whether the background sandbox runs and answers (exit 0), or not (exit 1)."""
    from mila_sandbox.server import answers

    pid_file = mila_dir(ctx) / PID_FILE
    info = read_pid_file(pid_file)
    alive = info is not None and process_alive(info["pid"])
    answering = alive and info is not None and answers(str(info.get("endpoint_url")))
    state = {"running": bool(answering), "pid": info["pid"] if alive and info else None,
             "endpoint_url": info.get("endpoint_url") if alive and info else None,
             "pid_file": str(pid_file)}
    if as_json:
        click.echo(json.dumps(state))
    elif answering and info:
        click.echo(f"sandbox running (pid {info['pid']}) on {info['endpoint_url']}")
        for line in export_lines(str(info["endpoint_url"]), str(info.get("region", DEFAULT_REGION))):
            click.echo(line)
    elif alive:
        click.echo(f"sandbox process {info['pid'] if info else '?'} runs but does not answer")
    else:
        click.echo("no sandbox running" + (" (stale pid file removed)" if info else f" (no {pid_file})"))
        if info:
            pid_file.unlink(missing_ok=True)
    if not answering:
        ctx.exit(EXIT_FAILED)
