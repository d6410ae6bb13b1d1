"""A plugin for tests: answers ``mila_identity`` first and counts the calls in a file named by
``MILA_IDENTITY_PROBE`` (so a test can prove the hook was, or was not, asked)."""

from __future__ import annotations

import os
from pathlib import Path

from mila import hookimpl
from mila.model import Identity


@hookimpl(tryfirst=True)
def mila_identity(config):
    probe = Path(os.environ["MILA_IDENTITY_PROBE"])
    probe.write_text(probe.read_text() + "asked\n" if probe.exists() else "asked\n")
    return Identity(account="111122223333", arn="arn:aws:iam::111122223333:user/probe")
