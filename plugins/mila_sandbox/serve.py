"""``python -m mila_sandbox.serve --host H --port P``: the process ``mila sandbox --background``
starts. Serves until SIGTERM (``mila sandbox stop``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from types import FrameType

from mila.errors import MilaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mila_sandbox.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    from mila_sandbox.server import SandboxServer

    try:
        server = SandboxServer(args.host, args.port, quiet=False)
    except MilaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    print(f"mila sandbox serving on {server.endpoint_url}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
