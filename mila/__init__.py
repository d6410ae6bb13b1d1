"""mila: deploy the serverless services of a monorepo to AWS, per environment and region,
redeploying only what changed.

Public API for plugin authors: :data:`hookimpl`, :mod:`mila.model`, :mod:`mila.protocols`,
:mod:`mila.errors`, and the contract test suites in :mod:`mila.testing`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Decorate hook implementations with ``@mila.hookimpl`` (see :mod:`mila.hookspecs`).
hookimpl = pluggy.HookimplMarker("mila")

__all__ = ["__version__", "hookimpl"]
