"""cfn-lint, the linter AWS ships for CloudFormation, run in-process at plan time.

One ``cfnlint.api.lint`` call per template (for every region it is planned in), never a
subprocess; cfn-lint is imported on first use (it takes about a second to import), so plans with
no CloudFormation service to deploy never pay for it. Its errors (``E`` rules) become
:class:`~mila.model.Finding` errors that refuse the plan, its warnings (``W``) warnings;
each names the template's ``file:line`` and the rule.

``W3002`` ("this code may only work with the package command") is always ignored: mila
packages local paths itself. ``[service] lint_ignore = ["W2001", "W3"]`` ignores more rules,
by id or prefix, for one service.

cfn-lint is a dependency of the extra ``mila[cloudformation]`` (and of the sandbox's moto):
without it the plan carries one warning saying templates were not linted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from mila.model import Finding

from .templates import Template

#: Rules mila always ignores, with why.
ALWAYS_IGNORED = ("W3002",)  # local paths: mila packages them (see packaging.py)
_cache: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Finding]] = {}
_lock = threading.Lock()


def lint_template(template: Template, regions: Sequence[str],
                  ignore: Sequence[str] = ()) -> list[Finding]:
    """cfn-lint's findings for ``template`` in ``regions``, ignoring rules in ``ignore``."""
    key = (template.text, tuple(sorted(set(regions))), tuple(sorted(set(ignore))))
    with _lock:  # cfn-lint is not known to be thread-safe; one template at a time
        if key not in _cache:
            _cache[key] = _lint(template, key[1], [*ALWAYS_IGNORED, *key[2]])
        return list(_cache[key])


def _lint(template: Template, regions: Sequence[str], ignore: list[str]) -> list[Finding]:
    try:
        from cfnlint.api import ManualArgs, lint
    except ImportError:
        return [Finding(f"{template.shown} was not linted: cfn-lint is not installed",
                        severity="warning", file=template.shown, rule="cfn-lint")]
    try:
        matches: list[Any] = lint(template.text, regions=list(regions) or None,
                                  config=ManualArgs(ignore_checks=ignore))
    except Exception as exc:  # a linter crash must not hide the plan
        return [Finding(f"cfn-lint could not check this template: {type(exc).__name__}: {exc}",
                        severity="warning", file=template.shown, rule="cfn-lint")]
    findings = []
    for m in matches:
        severity = "error" if str(m.rule.severity).lower() == "error" else "warning"
        findings.append(Finding(str(m.message), severity=severity, file=template.shown,
                                line=int(m.linenumber) if m.linenumber else None,
                                rule=str(m.rule.id)))
    return sorted(findings, key=lambda f: (f.severity, f.line or 0, f.rule or ""))
