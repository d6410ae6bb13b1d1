"""boto3 clients for every built-in AWS plugin: one code path for AWS and the sandbox.

* Clients use adaptive retries (throttling is retried with client-side rate limiting).
* ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, SSO and the rest of the standard credential chain work
  unchanged: mila only ever calls ``boto3.session.Session()``.
* boto3 sessions are not thread-safe but clients are: clients are created once per process
  (under a lock, from one session) and shared by all threads.
* **Sandbox safety**: when the sandbox is targeted (``MILA_SANDBOX`` is set, or
  ``AWS_ENDPOINT_URL`` points at a loopback address) :func:`verify_target` refuses to go on
  unless ``sts:GetCallerIdentity`` answers with the sandbox's account, and refuses a
  non-loopback endpoint while ``MILA_SANDBOX`` is set — ``AWS_ENDPOINT_URL`` and every
  ``AWS_ENDPOINT_URL_<SERVICE>``. Every built-in plugin calls it before its first write, so a
  mis-set variable can never touch a real account.
* **Fail fast**: a configured endpoint that refuses connections (or whose name does not
  resolve) is reported within seconds, naming it (:func:`probe_endpoint`; with
  ``MILA_SANDBOX``: the sandbox is not running, and how to start it), instead of after the
  retries meant for throttling.
* **Per-environment roles**: :func:`assume_role` (called when a command selects an
  environment with ``[environments.<name>] role_arn``) makes every client created afterwards
  use that role: ``sts:AssumeRole`` from the current credentials, or
  ``sts:AssumeRoleWithWebIdentity`` with the token of ``AWS_WEB_IDENTITY_TOKEN_FILE`` (GitHub
  Actions / GitLab CI OIDC). The credentials refresh themselves before they expire, so a long
  deploy never runs out of them. The identity (and the ``[accounts]`` check) is the role's.

boto3 is imported lazily: it costs 110–150 ms, and most commands never need it.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlparse

from mila_sandbox import ACCOUNT_ID

from mila.errors import MilaError, StateError
from mila.model import Identity

#: The account id moto (and so the sandbox) answers with.
SANDBOX_ACCOUNT = ACCOUNT_ID  # the sandbox's (moto's) account
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

_clients: dict[tuple[object, ...], Any] = {}
_sessions: dict[tuple[object, ...], Any] = {}
_clients_lock = threading.Lock()
_verified: dict[tuple[str | None, str | None, str | None], Identity] = {}
_verified_lock = threading.Lock()
#: the role every new client assumes (None: the standard credential chain's identity)
_role: dict[str, str | None] = {"arn": None, "session_name": None}


def assume_role(role_arn: str | None, session_name: str = "mila") -> None:
    """Make every client created from now on (in this process) act as ``role_arn``."""
    _role["arn"], _role["session_name"] = role_arn, session_name


def current_role() -> str | None:
    return _role["arn"]


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def configured_endpoints() -> dict[str, str]:
    """Every endpoint set in the environment: ``AWS_ENDPOINT_URL`` and the per-service
    ``AWS_ENDPOINT_URL_<SERVICE>`` variables, by variable name."""
    return {k: v for k, v in os.environ.items()
            if (k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")) and v}


PROBE_TIMEOUT = 3.0
_probed: set[str] = set()


def probe_endpoint(url: str) -> None:
    """Refuse at once (no retries) when nothing listens at ``url`` or its name does not
    resolve. Skipped behind an HTTP(S) proxy, which may reach what this machine cannot."""
    if url in _probed or os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if os.environ.get("MILA_SANDBOX"):
            raise StateError(f"the sandbox is not running: nothing answers at {url} ({reason})",
                             hint="start it with `mila sandbox --background` (or unset "
                                  "MILA_SANDBOX and AWS_ENDPOINT_URL to use AWS)") from None
        raise StateError(f"cannot reach the AWS endpoint {url}: {reason}",
                         hint="check AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) and "
                              "your network") from None
    _probed.add(url)


def sandbox_targeted() -> bool:
    url = endpoint_url()
    return bool(os.environ.get("MILA_SANDBOX")) or (url is not None and is_loopback(url))


def reset_caches(clients: bool = False) -> None:
    """Forget the verified identities (tests switch endpoints) and the assumed role; with
    ``clients``, the cached sessions and clients too.

    Clients are keyed by pid, endpoint, profile and access key, so a changed environment gets
    new ones anyway; keeping them saves 0.1-0.3 s of client creation per test.
    """
    with _clients_lock:
        if clients:
            _clients.clear()
            _sessions.clear()
        # sessions of an assumed role hold credentials the endpoint issued: never reused
        for cache in (_clients, _sessions):
            for key in [k for k in cache if k[4] is not None]:
                del cache[key]
    with _verified_lock:
        _verified.clear()
    _probed.clear()
    assume_role(None)


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region``, shared by every thread of the process.

    botocore clients are thread-safe; creating one costs 50-250 ms of CPU (more while other
    threads run), so a run with many worker threads creates each client once, not per thread.
    The cache key includes the pid (a forked child builds its own) and the credential-relevant
    environment (tests switch it).
    """
    if os.environ.get("MILA_SANDBOX"):
        check_sandbox_endpoints()  # before any request, whichever call comes first
    key = (os.getpid(), endpoint_url(), os.environ.get("AWS_PROFILE"),
           os.environ.get("AWS_ACCESS_KEY_ID"), _role["arn"], service, region)
    found = _clients.get(key)
    if found is not None:
        return found
    service_url = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    url = service_url or endpoint_url()
    if url:
        probe_endpoint(url)
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            session_key = key[:5]
            if session_key not in _sessions:
                _sessions[session_key] = boto3.session.Session() if _role["arn"] is None else \
                    _role_session(_role["arn"], _role["session_name"] or "mila")
            cfg = Config(retries={"mode": "adaptive", "max_attempts": 10},
                         connect_timeout=10, read_timeout=70, max_pool_connections=50)
            c = _sessions[session_key].client(service, region_name=region, config=cfg)
            c.exceptions  # noqa: B018 - built lazily without a lock in botocore; build it now
            _clients[key] = c
        return _clients[key]


def _role_session(role_arn: str, session_name: str) -> Any:
    """A boto3 session whose credentials come from assuming ``role_arn`` (refreshed by
    botocore before they expire)."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials
    from botocore.exceptions import BotoCoreError, ClientError

    sts = boto3.session.Session().client("sts", region_name=os.environ.get("AWS_DEFAULT_REGION")
                                         or os.environ.get("AWS_REGION") or "us-east-1")
    token_file = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")

    def fetch() -> dict[str, str]:
        try:
            if token_file:
                with open(token_file, encoding="utf-8") as f:
                    token = f.read().strip()
                answer = sts.assume_role_with_web_identity(
                    RoleArn=role_arn, RoleSessionName=session_name, WebIdentityToken=token)
            else:
                answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StateError(f"cannot assume the environment's role {role_arn}: {exc}",
                             hint="check [environments.<name>].role_arn in mila.toml and that "
                                  "the current identity may assume it (its trust policy)") from None
        creds = answer["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    core = botocore.session.get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(  # botocore's documented way
        metadata=fetch(), refresh_using=fetch,
        method="assume-role-with-web-identity" if token_file else "assume-role")
    return boto3.session.Session(botocore_session=core)


def caller_identity(region: str | None = None) -> Identity:
    """``sts:GetCallerIdentity`` as an :class:`Identity`; a clear error without credentials."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        answer = client("sts", region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1") \
            .get_caller_identity()
    except EndpointConnectionError as exc:
        raise StateError(f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url')}: {exc}",
                         hint="check your network (and AWS_ENDPOINT_URL)") from None
    except (BotoCoreError, ClientError) as exc:
        raise StateError(f"cannot find the AWS identity to use: {exc}",
                         hint="log in (aws sso login, AWS_PROFILE or access keys), or start the "
                              "sandbox with `mila sandbox` and export what it prints") from None
    url = endpoint_url()
    source = f"sandbox {url}" if url and sandbox_targeted() else \
        (f"profile {os.environ['AWS_PROFILE']}" if os.environ.get("AWS_PROFILE") else "default chain")
    if _role["arn"]:
        source += f", role {_role['arn']}"
    return Identity(account=answer["Account"], arn=answer["Arn"], source=source)


def check_sandbox_endpoints() -> None:
    """With ``MILA_SANDBOX``: every configured endpoint must be loopback (the sandbox), and
    ``AWS_ENDPOINT_URL`` must be set, before any request is sent."""
    url = endpoint_url()
    if url is None or not is_loopback(url):
        raise MilaError("MILA_SANDBOX is set but AWS_ENDPOINT_URL does not point at the sandbox "
                        f"({url or 'unset'}); refusing to touch what may be a real AWS account",
                        hint="export the lines `mila sandbox` prints, or unset MILA_SANDBOX")
    elsewhere = sorted(f"{k}={v}" for k, v in configured_endpoints().items() if not is_loopback(v))
    if elsewhere:
        raise MilaError(f"MILA_SANDBOX is set but {', '.join(elsewhere)} is not the sandbox (not "
                        "a loopback address); refusing to send requests there",
                        hint="unset that variable, or point it at the sandbox's address")


def verify_target(region: str | None = None) -> Identity:
    """The identity writes will use; refuses a sandbox run that would reach a real account.

    Cached per (endpoint, credentials) so it costs one STS call per process.
    """
    url = endpoint_url()
    key = (url, os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"),
           _role["arn"])
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    if os.environ.get("MILA_SANDBOX"):
        check_sandbox_endpoints()
    identity = caller_identity(region)
    if sandbox_targeted() and identity.account != SANDBOX_ACCOUNT:
        raise MilaError(f"the sandbox was targeted but AWS answered with account "
                        f"{identity.account}; refusing to write",
                        hint="check AWS_ENDPOINT_URL: it must be the sandbox's address")
    with _verified_lock:
        _verified[key] = identity
    return identity
