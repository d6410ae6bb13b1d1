"""The sandbox server: moto's WSGI app, serialised, with the fidelity fixes installed.

**Serialised requests.** moto does not make a condition check and its write atomic: 16
threads racing a conditional put got several winners in 7–13 rounds of 100 (see the notes).
AWS guarantees one. Here every request runs under one lock, so each API call is atomic as on
AWS; the request body is read before the lock is taken, so a slow client cannot hold it.

**Reset.** ``POST /moto-api/reset`` (or :meth:`SandboxServer.reset`) empties every backend and
the fixes' own bookkeeping, under the same lock.

Only loopback addresses are served: the sandbox answers any credentials.
"""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from mila.errors import MilaError

DEFAULT_PORT = 4566
DEFAULT_REGION = "eu-west-1"


def check_loopback(host: str) -> None:
    """Refuse any address but loopback: the sandbox accepts any credentials."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise MilaError(f"the sandbox only listens on loopback addresses, not '{host}': it answers "
                        "any credentials, so anyone who could reach it could use it",
                        hint="use --host 127.0.0.1 (the default)")


class SerialisedApp:
    """A WSGI app running ``app`` for one request at a time, and resetting on request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit():  # read the body before taking the lock
            body = environ["wsgi.input"].read(int(length))
            environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            self.reset()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        with self.lock:
            self.requests += 1
            result = self.app(environ, start_response)
            try:
                return list(result)  # the whole response is produced under the lock
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()


def build_app(*, fidelity: bool = True) -> SerialisedApp:
    """moto's app, serialised; with the fidelity fixes installed unless ``fidelity`` is false."""
    from mila_sandbox.versions import check_versions

    check_versions()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    if fidelity:
        from mila_sandbox import fidelity as fixes

        fixes.install()
    return SerialisedApp(DomainDispatcherApplication(create_backend_app))


class SandboxServer:
    """The sandbox on ``host:port`` (port 0: a free one), served by threads.

    ``start()`` serves in a background thread and returns once it listens; ``serve_forever()``
    serves in the calling thread (the ``mila sandbox`` command).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 fidelity: bool = True, quiet: bool = True) -> None:
        check_loopback(host)
        self.app = build_app(fidelity=fidelity)  # checks the versions before importing moto
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class Handler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                if not quiet:
                    super().log_request(*args, **kwargs)

        try:
            self._server = make_server(host, port, self.app, threaded=True, request_handler=Handler)
        except OSError as exc:
            raise MilaError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                            hint="is a sandbox already running? see `mila sandbox status`, or "
                                 "choose another --port") from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.host, self.port = str(self._server.server_address[0]), int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="mila-sandbox",
                                        daemon=True)
        self._thread.start()
        wait_until_answering(self.endpoint_url)
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def reset(self) -> None:
        self.app.reset()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return int(s.getsockname()[1])


def answers(endpoint_url: str, timeout: float = 1.0) -> bool:
    """Whether a moto server (the sandbox or plain moto) answers at ``endpoint_url``.

    Asks for moto's configuration, which every moto server answers cheaply (its
    ``data.json`` serialises every backend, and fails with HTTP 500 once a Lambda exists)."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/config", timeout=timeout) as r:
            return bool(200 <= r.status < 300)
    except OSError:
        return False


def wait_until_answering(endpoint_url: str, timeout: float = 30.0,
                         alive: Callable[[], bool] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not answers(endpoint_url):
        if alive is not None and not alive():
            raise MilaError(f"the sandbox at {endpoint_url} stopped before answering")
        if time.monotonic() > deadline:
            raise MilaError(f"the sandbox at {endpoint_url} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def post_json(endpoint_url: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"{endpoint_url}{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        text = r.read().decode()
    return json.loads(text) if text else None
