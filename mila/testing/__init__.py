"""Test helpers for mila and for plugin authors: contract suites and the pytester (the sandbox's
fixtures and helpers are the sandbox plugin's: :mod:`mila_sandbox.testing`)."""
