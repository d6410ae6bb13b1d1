"""Installs every fidelity fix into moto, once per process.

Each fix lives in its own module, documents the AWS behaviour it reproduces, and exposes
``install()``. They patch moto's classes, so they affect the process that runs the sandbox
(the ``mila sandbox`` server, or a test session's sandbox thread) — never product code, which
talks to the sandbox over HTTP like to AWS.
"""

from __future__ import annotations

import importlib
import threading

#: the fixes, in the order they are installed
FIXES: tuple[str, ...] = (
    "server_errors",
    "moto_dispatch",
    "ddb_transactions",
    "ddb_item_json",
    "ddb_query",
    "s3_secure_transport",
    "lambda_invoke",
    "cfn_template_urls",
    "cfn_lambda_layers",
    "cfn_ssm_names",
    "cfn_parameter_updates",
    "cfn_updates",       # before cfn_events, which wraps what it installs
    "cfn_validation",    # the same
    "cfn_events",
    "cfn_outputs",
    "cfn_capabilities",
    "cfn_transforms",
    "sam_transform",
    "cfn_restapi",
    "cfn_types",
    "cfn_stacks",
    "cfn_changesets",
    "cfn_change_details",
    "cfn_dynamic_refs",
)

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in FIXES:
            importlib.import_module(f"mila_sandbox.{name}").install()
        _installed = True
