"""Test helpers for mila and for plugin authors: the sandbox fixture and contract suites."""
