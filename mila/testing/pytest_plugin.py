"""pytest plugin (entry point ``pytest11``): fixtures for mila and third-party plugin tests.

Imports nothing heavy at import time, so installing mila never slows an unrelated test suite.
"""

from __future__ import annotations
