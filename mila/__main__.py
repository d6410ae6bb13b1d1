"""``python -m mila``: the same command line as the ``mila`` script."""

from mila.cli import main

if __name__ == "__main__":
    main()
