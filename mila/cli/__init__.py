"""mila's command line: thin click commands that parse, call one core function and render.

One module per command or group; each registers itself on :data:`mila.cli.main.cli`.
"""

from mila.cli.main import cli, main

__all__ = ["cli", "main"]
